"""A runner's logging: one JSON object per line on stdout, each carrying the session's
name (supervisord writes it to `logs/wa-<name>.log`)."""

from __future__ import annotations

import logging
import os
from typing import TextIO

from ecosystem.jsonlog import JsonFormatter


def private_stdout() -> TextIO:
    """A stream on a copy of stdout for our JSON lines; stdout itself (fd 1) is pointed
    at stderr, so whatever native code prints (neonize's Go side does) lands in the
    runner's stderr log instead of between JSON lines."""
    fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(fd, "w", buffering=1, encoding="utf-8", errors="replace")


def configure(session: str, level: int = logging.INFO) -> None:
    """Route every logger to stdout as JSON lines (supervisord captures stdout into
    `logs/wa-<name>.log`). Done before any library can call ``basicConfig``."""
    handler = logging.StreamHandler(private_stdout())
    handler.setFormatter(JsonFormatter(session))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
