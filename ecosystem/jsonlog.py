"""One JSON object per log line: what runners and the health monitor write, and what
`zapvisor logs` reads back (ecosystem/logfiles.py `pretty`)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

# LogRecord attributes that are plumbing, not fields worth printing.
_SKIP = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


class JsonFormatter(logging.Formatter):
    """``ts``, ``level``, ``session`` (when the process serves one), ``logger``,
    ``msg``, then every field passed with ``extra=``, then ``exc``."""

    def __init__(self, session: str | None = None) -> None:
        super().__init__()
        self.session = session

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
        }
        if self.session is not None:
            out["session"] = self.session
        out["logger"] = record.name
        out["msg"] = record.getMessage()
        for key, value in record.__dict__.items():
            if key not in _SKIP and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)
