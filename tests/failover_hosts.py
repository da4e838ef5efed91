"""Several zapvisor hosts on this machine, for the failover tests and bench: each its own
ZAPVISOR_HOME, ZAPVISOR_HOST_ID, port range, supervisord and health monitor (real
processes), all sharing one real PostgreSQL; and the ways a host dies in them: every
process killed at once, every process frozen, or its database link cut (through a TCP
proxy the test controls) while the rest of it keeps running."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from ecosystem.lease import SimLink
from ecosystem.models import Session
from ecosystem.states import Status
from ecosystem.store.postgres import PostgresStore
from tests.conftest import Env

LEASE_SECONDS = 6.0
"""Short enough for quick tests, long enough that a runner starved of CPU on this busy
machine still renews in time (it lets go of WhatsApp after 4.8 s without a renewal)."""


def host_vars(dsn: str, host: str, **extra: str) -> dict[str, str]:
    return {
        "ZAPVISOR_DATABASE_URL": dsn,
        "ZAPVISOR_HOST_ID": host,
        "ZAPVISOR_LEASE_SECONDS": str(LEASE_SECONDS),
        "ZAPVISOR_HEALTH_INTERVAL": "0.5",
        "ZAPVISOR_HEALTH_TIMEOUT": "1",
        "ZAPVISOR_SIM_QR_SECONDS": "60",
        "ZAPVISOR_FAILOVER_RAM_FLOOR_MB": "0",
        **extra,
    }


def process_tree(supervisord_pid: int | None) -> list[psutil.Process]:
    """A host's supervisord and everything under it (monitor, runners)."""
    if supervisord_pid is None:
        return []
    try:
        top = psutil.Process(supervisord_pid)
        return [top, *top.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def signal_all(procs: list[psutil.Process], sig: signal.Signals) -> None:
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.send_signal(sig)


def kill_all(procs: list[psutil.Process]) -> None:
    """kill -9 every process at once (stopped first, so none of them sees the others
    die and reacts: a runner's parent-death signal, the listener's EOF)."""
    signal_all(procs, signal.SIGSTOP)
    signal_all(procs, signal.SIGKILL)
    psutil.wait_procs(procs, timeout=10)


def gone_or_zombie(pid: int) -> bool:
    """The process ended (its parent may not have reaped it yet)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def thaw_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


@dataclass
class Host:
    name: str
    env: Env
    frozen: list[int] = field(default_factory=list)

    def processes(self) -> list[psutil.Process]:
        return process_tree(self.env.supervisord_pid())

    def kill(self) -> None:
        kill_all(self.processes())

    def freeze(self) -> None:
        procs = self.processes()
        signal_all(procs, signal.SIGSTOP)
        self.frozen = [p.pid for p in procs]

    def thaw(self) -> None:
        thaw_all(self.frozen)
        self.frozen = []


class Proxy:
    """A TCP proxy to the database that the test can cut like a network link: once cut,
    bytes stop flowing both ways and new connections hang (a black hole, as a cable
    pulled or a firewall dropping packets, not a refusal the client hears at once)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.cut = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._socks.append(client)
            if self.cut.is_set():
                continue  # accepted, never answered
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                return
            if self.cut.is_set():
                continue  # swallowed
            try:
                dst.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for s in self._socks:
                with contextlib.suppress(OSError):
                    s.close()


def dsn_through(dsn: str, proxy: Proxy) -> str:
    """``dsn`` with its host:port replaced by the proxy's."""
    head, _, tail = dsn.partition("@")
    _hostport, _, rest = tail.partition("/")
    return f"{head}@127.0.0.1:{proxy.port}/{rest}"


def target_of(dsn: str) -> tuple[str, int]:
    hostport = dsn.partition("@")[2].partition("/")[0]
    host, _, port = hostport.rpartition(":")
    return host, int(port)


# -- looking at the fleet from the store --------------------------------------------------


def connected_on(store: PostgresStore, name: str, hosts: set[str]) -> Session | None:
    s = store.get_session(name)
    if s.host in hosts and s.status == Status.CONNECTED:
        return s
    return None


def overlaps(store: PostgresStore, name: str | None = None) -> list[SimLink]:
    """Links the simulated server replaced while still in use: two hosts on one device."""
    return [link for link in store.sim_links(name) if link.overlap]


def statuses_since(store: PostgresStore, name: str, since: Any) -> list[str]:
    return [
        str(e.to_status)
        for e in store.list_events(name, limit=500)
        if e.action == "status" and e.ts >= since
    ]


def wait_quietly(predicate: Callable[[], Any], timeout: float) -> Any:
    from tests.conftest import wait_for

    return wait_for(predicate, timeout=timeout, interval=0.2)
