"""Many `/health` checks at once on one thread: non-blocking sockets and a selector.

At 200 sessions per tick, a thread per check (or an HTTP client per check) costs more
CPU than the checks themselves; this opens every connection at once, sends one small
request each and reads the answers as they come, all bounded by one deadline.
"""

from __future__ import annotations

import errno
import json
import logging
import selectors
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h11

from ecosystem.runner_client import api_host

MAX_RESPONSE = 16 * 1024
MAX_OPEN = 256
"""Connections open at once (a ceiling on file descriptors; more targets take turns)."""


OK = "ok"
REFUSED = "refused"
"""Nothing listens: a runner that is starting or exiting (or lost its server)."""
FAILED = "failed"
"""Connected but no (good) answer in time: what a hung runner looks like."""
BUSY = "busy"
"""Alive but its port is saturated: it answered 503 there (over its connection cap), or
its port did not answer while its private health socket did (see ``second_opinion``)."""

log = logging.getLogger("health")


class Answer:
    """One `/health` exchange, the answer parsed by h11 as its bytes arrive."""

    def __init__(self, host: str) -> None:
        self.conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_RESPONSE)
        headers = [("Host", host), ("Connection", "close")]
        request = self.conn.send(h11.Request(method="GET", target="/health", headers=headers))
        self.request = (request or b"") + (self.conn.send(h11.EndOfMessage()) or b"")
        self.status: int | None = None
        self.body = bytearray()
        self.complete = False

    def feed(self, data: bytes) -> bool:
        """Take what the runner sent (b"" at its EOF); True once the answer is complete,
        broken or too big (nothing more is read)."""
        self.conn.receive_data(data)
        try:
            while (event := self.conn.next_event()) is not h11.NEED_DATA:
                if isinstance(event, h11.Response):
                    self.status = event.status_code
                elif isinstance(event, h11.Data):
                    self.body += event.data
                    if len(self.body) > MAX_RESPONSE:
                        return True
                elif isinstance(event, h11.EndOfMessage):
                    self.complete = True
                    return True
                elif isinstance(event, h11.ConnectionClosed):
                    return True
        except h11.RemoteProtocolError:
            return True
        return False

    def healthy(self, session: str) -> bool:
        """A whole 200 whose JSON says ok, from the right session (a port taken over by
        another process must not pass)."""
        if not self.complete or self.status != 200:
            return False
        try:
            data = json.loads(self.body)
        except ValueError:
            return False
        return isinstance(data, dict) and data.get("ok") is True and data.get("session") == session


def healthy_response(raw: bytes, session: str) -> bool:
    """Whether ``raw``, a whole answer to `GET /health`, says ``session`` is healthy."""
    answer = Answer("localhost")
    if not answer.feed(raw):
        answer.feed(b"")
    return answer.healthy(session)


@dataclass
class _Probe:
    name: str
    sock: socket.socket
    answer: Answer
    sent: int = 0
    connected: bool = False
    refused: bool = False


Target = tuple[str, socket.AddressFamily, Any]
"""(session name, address family, socket address)"""


def probe_many(
    bind: str, ports: Mapping[str, int], timeout: float, *, max_open: int = MAX_OPEN
) -> dict[str, str]:
    """Check ``/health`` of every session in ``ports`` (name → port): OK, REFUSED,
    BUSY or FAILED each. Each batch of at most ``max_open`` checks is bounded by
    ``timeout``."""
    host = api_host(bind).strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    targets = [(name, family, (host, port)) for name, port in ports.items()]
    return _probe_all(host, targets, timeout, max_open)


def probe_sockets(
    paths: Mapping[str, Path], timeout: float, *, max_open: int = MAX_OPEN
) -> dict[str, str]:
    """The same check on runners' private health sockets (name → unix socket path)."""
    targets = [(name, socket.AF_UNIX, str(path)) for name, path in paths.items()]
    return _probe_all("localhost", targets, timeout, max_open)


def second_opinion(
    results: dict[str, str], sockets: Mapping[str, Path], timeout: float
) -> dict[str, str]:
    """Ask the private socket of every runner whose port did not answer well: one that
    answers there is alive (BUSY: its port is saturated, by clients holding idle
    connections for instance), not hung. A refused port stays refused (the runner is
    starting or gone), and a runner with no socket keeps its port's answer."""
    doubtful = {
        name: path
        for name, path in sockets.items()
        if results.get(name) in (FAILED, BUSY) and path.exists()
    }
    if not doubtful:
        return results
    out = dict(results)
    for name, result in probe_sockets(doubtful, timeout).items():
        out[name] = BUSY if result == OK else FAILED
    return out


def _probe_all(host: str, targets: list[Target], timeout: float, max_open: int) -> dict[str, str]:
    results = {name: FAILED for name, _, _ in targets}
    for start in range(0, len(targets), max_open):
        _probe_batch(host, targets[start : start + max_open], timeout, results)
    return results


def _probe_batch(host: str, targets: list[Target], timeout: float, results: dict[str, str]) -> None:
    sel = selectors.DefaultSelector()
    try:
        for name, family, address in targets:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            err = sock.connect_ex(address)
            if err not in (0, errno.EINPROGRESS, errno.EAGAIN):
                sock.close()
                refused = err in (errno.ECONNREFUSED, errno.ENOENT)
                results[name] = REFUSED if refused else FAILED
                continue
            sel.register(sock, selectors.EVENT_WRITE, _Probe(name, sock, Answer(host)))
        deadline = time.monotonic() + timeout
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for key, mask in sel.select(remaining):
                probe: _Probe = key.data
                if _step(sel, probe, mask):
                    if probe.refused:
                        results[probe.name] = REFUSED
                    elif probe.answer.healthy(probe.name):
                        results[probe.name] = OK
                    elif probe.answer.status == 503:  # alive, over its connection cap
                        results[probe.name] = BUSY
                    sel.unregister(probe.sock)
                    probe.sock.close()
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        sel.close()


def _step(sel: selectors.BaseSelector, probe: _Probe, mask: int) -> bool:
    """Advance one probe; True when it is finished (answered, refused or broken)."""
    sock = probe.sock
    try:
        if mask & selectors.EVENT_WRITE:
            if not probe.connected:
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err or _self_connected(sock):
                    probe.refused = not err or err == errno.ECONNREFUSED
                    return True
                probe.connected = True
            request = probe.answer.request
            probe.sent += sock.send(request[probe.sent :])
            if probe.sent >= len(request):
                sel.modify(sock, selectors.EVENT_READ, probe)
            return False
        chunk = sock.recv(4096)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True
    return probe.answer.feed(chunk)


def _self_connected(sock: socket.socket) -> bool:
    """A connect to a loopback port nobody listens on can pick that same port as its
    own source port and connect to itself (ports in the ephemeral range): that is a
    refusal, and the socket must go at once, since it holds the runner's port."""
    try:
        return bool(sock.getsockname() == sock.getpeername())
    except OSError:
        return False


class Saturated:
    """The sessions whose port is saturated: it turned the last check away while the
    runner answered on its health socket, or the runner's heartbeat said its port was
    full (not asked at all then). Said once when it starts, once when it ends."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def note(self, names: set[str], held: Mapping[str, int] | None = None) -> None:
        """``held``: the connections the runner held, when its heartbeat said so."""
        held = held or {}
        for name in sorted(names - self.names):
            how = (
                f"port full: {held[name]} connections held"
                if held.get(name)
                else "too many connections at once"
            )
            log.warning(
                "%s: its port turns the health check away (%s); its health socket or "
                "heartbeat says it is alive, so it is not restarted",
                name,
                how,
                extra={"session": name},
            )
        for name in sorted(self.names - names):
            log.info("%s: its port answers the health check again", name, extra={"session": name})
        self.names = names
