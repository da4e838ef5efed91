"""Hand-written HTTP requests on a raw socket, for what no client library would send."""

from __future__ import annotations

import contextlib
import socket


def exchange(port: int, raw: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` (then ``body``) to 127.0.0.1:``port`` and read the answer to its end:
    (status, headers with lower-case names, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        if body:
            with contextlib.suppress(OSError):  # refused mid-body: the answer is there
                sock.sendall(body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, payload
