"""Messages the app's workers post when their work is done (named for what happened)."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message

from ecosystem.liveview import Snapshot


@dataclass
class SnapshotTaken(Message, bubble=False):
    snapshot: Snapshot


@dataclass
class RefreshFailed(Message, bubble=False):
    error: str


@dataclass
class BootFinished(Message, bubble=False):
    error: str | None = None


@dataclass
class ActionsFinished(Message, bubble=False):
    """One operator request done: what succeeded (name → a short result) and what
    failed (name → the error, one line)."""

    verb: str
    done: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
