"""The port ledger's rules: which port a new session gets, and what holds a port."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from ecosystem.errors import CapacityError, PortsExhausted


@dataclass(frozen=True)
class PortHolder:
    port: int
    pid: int | None
    process: str | None

    def __str__(self) -> str:
        if self.pid is None:
            return f"{self.port} (in use by another process)"
        return f"{self.port} held by {self.process or '?'} (pid {self.pid})"


def pick_port(
    ports: range, held: set[int], excluded: set[int], max_sessions: int, host: str
) -> int:
    """The lowest port of ``ports`` neither held by a session nor excluded."""
    if len(held) >= max_sessions:
        raise capacity_error(max_sessions, host)
    for port in ports:
        if port not in held and port not in excluded:
            return port
    raise ports_exhausted(ports, sorted(p for p in excluded if p in ports and p not in held), host)


def capacity_error(max_sessions: int, host: str) -> CapacityError:
    """The error every store raises when ``host`` already has MAX_SESSIONS sessions."""
    return CapacityError(
        f"MAX_SESSIONS ({max_sessions}) reached on host {host}: delete a session or "
        "raise MAX_SESSIONS"
    )


def ports_exhausted(ports: range, busy: list[int], host: str) -> PortsExhausted:
    """The error every store raises when no port of ``ports`` is free; ``busy`` are the
    ports other processes bind."""
    why = f"; bound by other processes: {', '.join(map(str, busy))}" if busy else ""
    return PortsExhausted(
        f"no free port in {ports.start}-{ports.stop - 1} on host {host}{why}: free a port, "
        "or raise MAX_SESSIONS or move BASE_PORT",
        busy,
    )


def port_is_free(port: int, bind: str) -> bool:
    """Whether a runner could listen on ``bind:port`` now.

    SO_REUSEADDR matches what the runner itself sets, so connections lingering in
    TIME_WAIT from a deleted session do not make a port look taken.
    """
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def busy_ports(ports: Iterable[int], bind: str) -> set[int]:
    """The ports some process already binds (one bind attempt each, no scanning of
    the system's socket table)."""
    return {p for p in ports if not port_is_free(p, bind)}


def who_holds(port: int) -> PortHolder:
    """Which process listens on ``port``, as far as this user may see."""
    return who_hold([port])[port]


def who_hold(ports: Iterable[int]) -> dict[int, PortHolder]:
    """Which process listens on each of ``ports``, from one read of the system's socket
    table (a read costs ~25 ms on a busy host: `list` paid it once a taken port)."""
    found = {port: PortHolder(port, None, None) for port in ports}
    if not found:
        return found
    import psutil  # only needed to explain a port conflict

    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, OSError):
        return found
    seen: set[int] = set()
    for conn in conns:
        port = conn.laddr.port if conn.laddr else None
        if port not in found or port in seen or conn.status != psutil.CONN_LISTEN:
            continue
        seen.add(port)  # the first listener of a port answers, as it did one port a read
        if conn.pid is None:
            continue
        try:
            name = psutil.Process(conn.pid).name()
        except psutil.Error:
            name = None
        found[port] = PortHolder(port, conn.pid, name)
    return found
