"""An exclusive lock on a file (flock), with a deadline: one process at a time in a
critical section, across processes on this host. The kernel drops the lock when its
holder dies, so a killed zapvisor never leaves it held."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path, timeout: float, poll: float = 0.02) -> Iterator[bool]:
    """Hold ``path`` locked for the block; yields False when another process held it for
    ``timeout`` seconds (the caller decides whether to go ahead or give up)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    held = False
                    break
                time.sleep(poll)
        yield held
    finally:
        os.close(fd)
