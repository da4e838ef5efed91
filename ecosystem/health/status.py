"""`monitor.json` in the state dir: the monitor's proof of life (pid, checks, the time
and cost of the last one), read by `zapvisor doctor`, the TUI and the tests."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from ecosystem.paths import StatePaths

log = logging.getLogger("health")


def status_path(paths: StatePaths) -> str:
    return str(paths.home / "monitor.json")


def write(paths: StatePaths, data: dict[str, Any]) -> None:
    """Replace the file atomically; no fsync: it is rewritten every check and a lost
    one costs nothing."""
    path = status_path(paths)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot write %s: %s", path, exc)


def read(paths: StatePaths) -> dict[str, Any] | None:
    try:
        with open(status_path(paths), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
