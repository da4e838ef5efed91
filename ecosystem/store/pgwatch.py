"""A client-side bound on each call to PostgreSQL, for a server that is frozen rather
than down.

A stopped (SIGSTOP), wedged or swapped-to-death server, or a stuck pooler, keeps its TCP
connections up and its kernel ACKs everything we send: TCP keepalives are answered,
``tcp_user_timeout`` never fires (nothing stays unacknowledged), and a server-side
``statement_timeout`` is the frozen server's own to enforce. So one watchdog thread per
store shuts the connection's socket down when a call overruns: the call blocked on it
fails at once ("server closed the connection") and the store reports the timeout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg

AnyConn = psycopg.Connection[Any]


def shut(conn: AnyConn) -> None:
    """Shut the connection's socket down (both ways) without closing its descriptor,
    which stays libpq's to close: a call blocked reading it wakes up with an error."""
    with contextlib.suppress(psycopg.Error, OSError, ValueError):
        sock = socket.socket(fileno=conn.pgconn.socket)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.detach()


class Watchdog:
    """Bounds one call at a time (the store's lock serialises them)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: tuple[float, AnyConn] | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.fired = False
        """Whether the last bounded call was cut short (by its deadline or by abort)."""

    @contextlib.contextmanager
    def bound(self, conn: AnyConn, seconds: float) -> Iterator[None]:
        with self._cond:
            self.fired = False
            self._armed = (time.monotonic() + seconds, conn)
            if self._thread is None or self._stopped:
                self._stopped = False
                self._thread = threading.Thread(
                    target=self._loop, name="zapvisor-pg-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        try:
            yield
        finally:
            # Disarmed under the lock before the caller may close the connection, so
            # the watchdog never touches a descriptor that libpq has let go of.
            with self._cond:
                self._armed = None

    @property
    def armed(self) -> bool:
        """Whether a bounded call is in progress."""
        return self._armed is not None

    def abort(self) -> bool:
        """Cut the call in progress short now (the store is closing); whether one was."""
        with self._cond:
            if self._armed is None:
                return False
            self._fire(self._armed[1])
            return True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._thread = None
            self._cond.notify()

    def _fire(self, conn: AnyConn) -> None:
        self.fired = True
        self._armed = None
        shut(conn)

    def _loop(self) -> None:
        me = threading.current_thread()
        with self._cond:
            while not self._stopped and self._thread is me:
                if self._armed is None:
                    self._cond.wait()
                    continue
                deadline, conn = self._armed
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self._fire(conn)
