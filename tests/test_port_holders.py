"""Who holds the ports of sessions whose runner is down (`list`'s PORT TAKEN): every
taken port found in one read of the socket table, each named as when it was read one
port at a time. Real sockets on loopback, held by this test's own process."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator

import psutil

from ecosystem.ports import port_is_free, who_hold, who_holds
from ecosystem.views import port_holders

BIND = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """``count`` ports below 32768 nothing binds now."""
    found = [p for p in range(23400, 23800) if port_is_free(p, BIND)][:count]
    assert len(found) == count, "no free test ports in 23400-23800"
    return found


@contextlib.contextmanager
def held(listening: list[int], bound: list[int]) -> Iterator[None]:
    socks = []
    try:
        for port in listening + bound:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.bind((BIND, port))
            if port in listening:
                sock.listen()
        yield
    finally:
        for sock in socks:
            sock.close()


def test_port_holders_names_each_taken_port() -> None:
    a, b, quiet, free = free_ports(4)
    me = f"held by {psutil.Process().name()} (pid {os.getpid()})"
    with held([a, b], [quiet]):
        got = port_holders([free, b, quiet, a], BIND)
        assert got == {b: me, quiet: "in use by another process", a: me}
        assert list(got) == [b, quiet, a]  # in the order asked
        many = who_hold([a, b, quiet])
        assert many == {p: who_holds(p) for p in (a, b, quiet)}
        assert many[a].pid == os.getpid() and many[quiet].pid is None
    assert port_holders([a, b, quiet], BIND) == {}


def test_who_hold_of_nothing_reads_nothing() -> None:
    assert who_hold([]) == {}
