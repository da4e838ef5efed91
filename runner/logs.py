"""One JSON object per log line, each carrying the session's name."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any, TextIO

# LogRecord attributes that are plumbing, not fields worth printing.
_SKIP = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


class JsonFormatter(logging.Formatter):
    def __init__(self, session: str) -> None:
        super().__init__()
        self.session = session

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "session": self.session,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _SKIP and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


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
