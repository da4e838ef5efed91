"""What scripts/bench/vs_pm2.py measures with: /health by raw socket, CPU seconds and PSS
from /proc."""

from __future__ import annotations

import json
import os
import socket
import statistics
import time
from collections.abc import Callable, Iterable

import psutil

_REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
_TICK = os.sysconf("SC_CLK_TCK")


def health_pid(port: int, timeout: float = 1.0) -> int | None:
    """The pid /health reports on ``port``, None when nothing (healthy) answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(_REQUEST)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    except OSError:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return None
    try:
        answer = json.loads(body)
        return int(answer["pid"]) if answer.get("ok", True) else None
    except (ValueError, KeyError, TypeError):
        return None


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], deadline: float, poll: float) -> bool:
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(poll)
    return check()


def wait_health(port: int, deadline: float, *, not_pid: int | None = None) -> int:
    """Poll /health every 2 ms until it answers (with a pid other than ``not_pid``)."""
    while time.monotonic() < deadline:
        pid = health_pid(port, timeout=0.5)
        if pid is not None and pid != not_pid:
            return pid
        time.sleep(0.002)
    raise TimeoutError(f"nothing healthy on port {port}")


def wait_all_healthy(ports: Iterable[int], deadline: float) -> None:
    """Every port answers /health; swept every 50 ms (a tighter sweep of hundreds of
    ports would itself load the machine the boot runs on)."""
    waiting = set(ports)
    while waiting and time.monotonic() < deadline:
        waiting = {p for p in waiting if health_pid(p, timeout=0.5) is None}
        if waiting:
            time.sleep(0.05)
    if waiting:
        raise TimeoutError(f"{len(waiting)} port(s) not healthy, e.g. {min(waiting)}")


def wait_all_closed(ports: Iterable[int], deadline: float) -> int:
    """Wait until nothing listens on ``ports``; returns how many still listen."""
    left = set(ports)
    while left and time.monotonic() < deadline:
        left = {p for p in left if listening(p)}
        if left:
            time.sleep(0.02)
    return len(left)


def cpu_seconds(pids: Iterable[int]) -> float:
    """user + system CPU of ``pids`` so far (processes gone meanwhile count 0)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / _TICK


def pss_mb(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).memory_full_info().pss) / 1024**2
    except psutil.Error:
        return None


def median_pss(pids: Iterable[int]) -> float | None:
    found = [v for p in pids if (v := pss_mb(p)) is not None]
    return statistics.median(found) if found else None
