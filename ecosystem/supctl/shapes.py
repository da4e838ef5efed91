"""Which rendered config parts supervisor's parser has passed, by shape.

Every program section is the template rendered for one session: two differ only in the
session's name and port (and the paths made of them). A section whose shape (name and
port put back to placeholders) is one the parser passed, after the same header, parses
the same way: names are lowercase letters, digits, `-` and `_` (names.py) and ports are
digits, nothing supervisor's parser reads as syntax (no `%`, `;`, `#`, `=`, newline).
So a create parses nothing new, and does not import supervisor's parser (~35 ms),
unless the template, a setting in the header or the section's shape changed. What
passed is kept in ``checked-shapes`` in the state dir, so the first create after every
session was deleted skips it too.
"""

from __future__ import annotations

import contextlib
import hashlib
import re

from ecosystem.names import session_from_program
from ecosystem.paths import StatePaths, write_private

KEEP = 64
"""Digests kept: one per header and template version an operator went through."""
_PORT = re.compile(r"--port[ =](\d+)")


def digest(text: str) -> str:
    return hashlib.sha256(text.rstrip().encode("utf-8")).hexdigest()


def shape(section: str, program: str) -> str:
    """``section`` with its session's name and port as placeholders; the section as it
    is when it is not a session's (the monitor's) or holds no port."""
    name = session_from_program(program)
    port = _PORT.search(section)
    if not name or port is None:
        return section.rstrip()
    text = re.sub(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", "\0name\0", section)
    return re.sub(rf"(?<![0-9]){port.group(1)}(?![0-9])", "\0port\0", text).rstrip()


def section_digest(header: str, section: str, program: str) -> str:
    """A section's shape after ``header`` (a header digest): what a check passed."""
    return digest(header + "\0" + shape(section, program))


def _file(paths: StatePaths) -> str:
    return str(paths.home / "checked-shapes")


def load(paths: StatePaths) -> list[str]:
    """The digests kept, oldest first (none when the file is missing or unreadable)."""
    try:
        with open(_file(paths), encoding="ascii") as f:
            return [line for line in f.read().split() if len(line) == 64]
    except (OSError, ValueError):
        return []


def save(paths: StatePaths, kept: list[str], known: set[str]) -> None:
    """Add what ``known`` holds beyond ``kept`` (the file is only a shortcut: a failure
    to write it costs the next create a parse, nothing else)."""
    new = sorted(known.difference(kept))
    if not new:
        return
    with contextlib.suppress(OSError):
        write_private(paths.home / "checked-shapes", "\n".join([*kept, *new][-KEEP:]) + "\n")
