"""Free loopback port blocks for the benchmarks, below the kernel's ephemeral range.

Ports from 32768 up can be held at any moment by an outgoing connection (and polling a
port nobody listens on yet there can connect a socket to itself), so every bench keeps
below it: from 12000, under the tests' blocks (20000 up, tests/conftest.py).
"""

from __future__ import annotations

import socket

EPHEMERAL_START = 32768


def free_block(size: int, start: int = 12000, stop: int = EPHEMERAL_START) -> int:
    """The first ``size`` consecutive ports from ``start`` that bind on loopback."""
    port = start
    while port + size <= stop:
        for p in range(port, port + size):
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    port = p + 1
                    break
        else:
            return port
    raise SystemExit(f"no {size} free ports between {start} and {stop}")
