"""Records made from rows, kept while their row stays as it was.

A live view reads every session row each second and the health monitor at each check;
at rest only a few of them changed since (a waiting runner's QR rotation, a status),
yet making a record of a row (times parsed, JSON decoded, every field fitted) was most
of such a read: ~40 µs a row, 8 ms for 200. A cache keyed by the row's own values
makes only the rows that changed again: a row equal to one read before gives the very
record made then. Exact by construction: any change in any column is a new key, so no
writer (another process, another host) has to say what it changed.

Records are shared between the reads of an unchanged row: a caller never mutates one
in place (none does; ``model_copy`` makes a changed one).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

Row = TypeVar("Row")
Made = TypeVar("Made")


class RowCache(Generic[Row, Made]):
    """One cache per kind of read (``shape``: e.g. one host's rows, or all of them), each
    holding the records of that read's rows only: bounded by the rows there are."""

    def __init__(self, make: Callable[[Row], Made], key: Callable[[Row], Hashable]) -> None:
        self.make = make
        self.key = key
        self.made = 0
        """Records made (not found in the cache) since start: what tests look at."""
        self._lock = threading.Lock()
        self._by_shape: dict[Hashable, dict[Hashable, Made]] = {}

    def records(self, shape: Hashable, rows: Iterable[Row]) -> list[Made]:
        with self._lock:
            before = self._by_shape.get(shape, {})
            now: dict[Hashable, Made] = {}
            out = []
            for row in rows:
                key = self.key(row)
                found = before.get(key)
                if found is None:
                    found = self.make(row)
                    self.made += 1
                now[key] = found
                out.append(found)
            self._by_shape[shape] = now
            return out

    def clear(self) -> None:
        with self._lock:
            self._by_shape.clear()
