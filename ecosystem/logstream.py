"""Every session's log lines in one stream, in time order, each with its session
(`zapvisor logs --all`, the app's all-logs view): the files of one host, tailed or
followed; merging several hosts' streams is the door's (``logs_all.py``).

Runner lines are JSON objects whose first field is ``ts`` (ecosystem/jsonlog.py), so the
order is that of the timestamps, not of the files. A line without one (stderr, anything
native code prints) takes the timestamp of the line before it in its own file.

Followed lines are held back ``HOLD`` seconds before they are handed out: supervisord
copies each runner's output into its file when it gets to it, so a line written a
moment earlier by one runner may reach its file after a later line of another; within
that window the order is put right.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ecosystem import logfiles
from ecosystem.errors import InvalidValue

HOLD = 0.4
"""Seconds a followed line waits for earlier lines of other files before it is sent."""
POLL = 0.2
"""Seconds between two looks at the files while nothing is written."""
RELIST = 5.0
"""Seconds between two looks for sessions created since the stream started."""

_TS = re.compile(r'^\{"ts": "([^"]{19,40})"')


@dataclass(frozen=True)
class LogEntry:
    """One line of one session's log."""

    session: str
    ts: str
    """ISO 8601 (UTC) as the runner wrote it; "" when neither it nor a line before it
    in its file had one."""
    text: str
    """The line as written (a JSON object for runner lines)."""
    stderr: bool = False
    host: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "session": self.session,
            "host": self.host,
            "ts": self.ts or None,
            "stream": "stderr" if self.stderr else "stdout",
            "line": self.text,
        }


@dataclass(frozen=True)
class Source:
    """One log file of one session."""

    session: str
    path: Path
    stderr: bool


def stamp(line: str) -> str | None:
    """The line's ``ts`` when it is a runner's JSON line."""
    found = _TS.match(line)
    return found.group(1) if found else None


def matcher(grep: str | None) -> Callable[[str], bool]:
    """Whether a line is wanted: ``grep`` (a Python regular expression) found in the line
    as written or as `zapvisor logs` shows it."""
    if not grep:
        return lambda _line: True
    try:
        pattern = re.compile(grep)
    except re.error as exc:
        raise InvalidValue(f"--grep {grep!r} is not a valid regular expression: {exc}") from None
    return lambda line: bool(pattern.search(line) or pattern.search(logfiles.pretty(line)))


STDERR_MARK = "err│ "


def labelled(
    entries: Iterable[LogEntry], width: int, *, hosts: bool, raw: bool = False
) -> tuple[list[tuple[str, str]], int]:
    """Each entry as (its session's name, or `host/name` with ``hosts``, padded to the
    widest seen so far; a line of text), readable unless ``raw``; a traceback's lines
    each with a blank name so they stay under it. Also the new width."""
    out: list[tuple[str, str]] = []
    for e in entries:
        label = f"{e.host}/{e.session}" if hosts else e.session
        width = max(width, len(label))
        text = e.text if raw else logfiles.pretty(e.text)
        if e.stderr:
            text = STDERR_MARK + e.text
        for i, part in enumerate(text.split("\n")):
            out.append((label.ljust(width) if i == 0 else " " * width, part))
    return out, width


def order(entries: list[LogEntry]) -> list[LogEntry]:
    """By timestamp; lines with the same one keep their order (stable sort)."""
    return sorted(entries, key=lambda e: e.ts)


def tail(sources: list[Source], lines: int, wanted: Callable[[str], bool]) -> list[LogEntry]:
    """The last ``lines`` wanted lines of each file, merged in time order."""
    out: list[LogEntry] = []
    for src in sources:
        found: list[LogEntry] = []
        last = ""
        # read more than asked when filtering, so a grep still finds up to `lines`
        for text in logfiles.tail(src.path, lines if wanted("") else lines * 20):
            last = stamp(text) or last
            if text and wanted(text):
                found.append(LogEntry(src.session, last, text, src.stderr))
        out.extend(found[-lines:])
    return order(out)


class Stream:
    """Follows the log files of a changing set of sessions; ``read`` hands out the lines
    whose hold-back time passed, in time order."""

    def __init__(
        self,
        wanted: Callable[[str], bool],
        *,
        hold: float = HOLD,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.wanted = wanted
        self.hold = hold
        self.clock = clock
        self._followers: dict[Path, tuple[Source, logfiles.Follower]] = {}
        self._last: dict[Path, str] = {}
        self._held: list[tuple[float, LogEntry]] = []

    def add(self, sources: list[Source], *, from_start: bool = False) -> None:
        """Follow these files too (from their end, or from their start for a session
        created after the stream began: its first lines are part of the story)."""
        for src in sources:
            if src.path in self._followers:
                continue
            follower = logfiles.Follower([src.path])
            if from_start:
                follower.rewind()
            self._followers[src.path] = (src, follower)
            tail_ts = [stamp(t) for t in logfiles.tail(src.path, 5)]
            self._last[src.path] = next((t for t in reversed(tail_ts) if t), "")

    @property
    def sessions(self) -> set[str]:
        return {src.session for src, _f in self._followers.values()}

    def read(self, *, flush: bool = False) -> list[LogEntry]:
        now = self.clock()
        for path, (src, follower) in self._followers.items():
            for _path, text in follower.read():
                ts = stamp(text)
                self._last[path] = ts or self._last[path]
                if text and self.wanted(text):
                    entry = LogEntry(src.session, self._last[path], text, src.stderr)
                    self._held.append((now, entry))
        if flush:
            ready, self._held = self._held, []
        else:
            # a line is ready once its own time (or its arrival, for a clock that is
            # off) is more than `hold` ago: nothing written before it can still come
            cutoff = now - self.hold
            edge = _iso(cutoff)
            ready = [h for h in self._held if h[1].ts <= edge or h[0] <= cutoff]
            self._held = [h for h in self._held if not (h[1].ts <= edge or h[0] <= cutoff)]
        return order([entry for _at, entry in ready])


def follow(
    stream: Stream,
    sources: Callable[[], list[Source]],
    *,
    backlog: int = 0,
    poll: float = POLL,
    relist: float = RELIST,
) -> Iterator[list[LogEntry]]:
    """The last ``backlog`` lines of every file as a first batch, then new lines, a
    batch at every look (empty when there were none, so a caller can stop between two):
    never ends by itself. ``sources`` is asked again every ``relist`` seconds, so a
    session created meanwhile joins the stream."""
    first = sources()
    stream.add(first)  # before the tail: no line falls between the two
    yield tail(first, backlog, stream.wanted) if backlog else []
    listed = time.monotonic()
    while True:
        if time.monotonic() - listed >= relist:
            listed = time.monotonic()
            known = stream.sessions
            stream.add([s for s in sources() if s.session not in known], from_start=True)
        batch = stream.read()
        yield batch
        if not batch:
            time.sleep(poll)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
