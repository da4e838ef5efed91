"""A session's log files: the last lines, following new ones, made readable."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

_CORE = ("ts", "level", "session", "logger", "msg")


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of ``path`` (reads backwards; cheap on big files)."""
    if lines <= 0:
        return []
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            block = 8192
            data = b""
            while size > 0 and data.count(b"\n") <= lines:
                step = min(block, size)
                size -= step
                fh.seek(size)
                data = fh.read(step) + data
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", "replace").splitlines()
    return text[-lines:]


class Follower:
    """Reads the lines appended to some files since the previous ``read``; survives
    rotation (the file shrinking or being replaced). Starts at the files' ends."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = list(paths)
        self._state: dict[Path, tuple[int, int]] = {}
        for path in self.paths:
            try:
                st = path.stat()
                self._state[path] = (st.st_ino, st.st_size)
            except FileNotFoundError:
                self._state[path] = (0, 0)
        self._partial: dict[Path, bytes] = {p: b"" for p in self.paths}

    def rewind(self) -> None:
        """Read the files from their start instead (a file that appeared after the
        caller began watching)."""
        self._state = {path: (ino, 0) for path, (ino, _size) in self._state.items()}

    def read(self, max_bytes: int = 1 << 20) -> list[tuple[Path, str]]:
        """Complete new lines, in file order; at most ``max_bytes`` per file per call so
        a burst cannot stall the caller (the rest comes on the next call)."""
        out: list[tuple[Path, str]] = []
        for path in self.paths:
            inode, offset = self._state[path]
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if st.st_ino != inode or st.st_size < offset:
                inode, offset = st.st_ino, 0
                self._partial[path] = b""
            if st.st_size == offset:
                self._state[path] = (inode, offset)
                continue
            with path.open("rb") as fh:
                fh.seek(offset)
                chunk = fh.read(max_bytes)
            self._state[path] = (inode, offset + len(chunk))
            data = self._partial[path] + chunk
            *complete, self._partial[path] = data.split(b"\n")
            out.extend((path, raw.decode("utf-8", "replace")) for raw in complete)
        return out


def follow(
    paths: list[Path], *, poll: float = 0.2, stop: Callable[[], bool] = lambda: False
) -> Iterator[tuple[Path, str]]:
    """Yield (file, line) as lines are appended to any of ``paths``; survives rotation
    (the file shrinking or being replaced)."""
    follower = Follower(paths)
    while not stop():
        lines = follower.read()
        yield from lines
        if not lines:
            time.sleep(poll)


def pretty(line: str) -> str:
    """A runner's JSON line as `HH:MM:SS LEVEL message key=value…`; other lines as-is."""
    if not line.startswith("{"):
        return line
    try:
        data = json.loads(line)
    except ValueError:
        return line
    if not isinstance(data, dict) or "msg" not in data:
        return line
    ts = str(data.get("ts", ""))
    clock = ts[11:19] if len(ts) >= 19 else ts
    extras = " ".join(f"{k}={v}" for k, v in data.items() if k not in _CORE and k != "exc")
    out = f"{clock} {str(data.get('level', '')).upper():<7} {data['msg']}"
    if extras:
        out += f"  {extras}"
    if data.get("exc"):
        out += "\n" + str(data["exc"])
    return out
