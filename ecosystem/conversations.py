"""The bot's conversations as the stores keep them (migration 0010): one per session and
contact, its messages in order, and what the bot last did there (a reply, an error)."""

from __future__ import annotations

from dataclasses import field
from datetime import datetime
from typing import Literal

from ecosystem.record import Record, RecordError, record, utcnow

Role = Literal["user", "assistant"]
MAX_BODY = 65_536
MAX_ERROR = 500


@record
class ChatMessage(Record):
    """One message of a conversation: the contact's (`user`) or the bot's (`assistant`)."""

    role: Role
    body: str
    created_at: datetime = field(default_factory=utcnow)
    wa_id: str | None = None
    """The WhatsApp message id, when known."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.body) > MAX_BODY:
            raise RecordError(f"a message body is at most {MAX_BODY} characters")


@record
class Conversation(Record):
    """A session's conversation with one contact (a chat id, `…@c.us` or `…@g.us`)."""

    session_name: str
    contact: str
    created_at: datetime
    last_message_at: datetime
    last_reply_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    messages: int = 0


@record
class BotActivity(Record):
    """What `show` says of a session's bot: its last reply and its last failure."""

    last_reply_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


ConversationRows = tuple[Conversation, list[ChatMessage]]
"""A conversation and its messages, oldest first, as `zapvisor db copy` moves them."""


def short_error(error: str) -> str:
    """An error as the store keeps it: one line, bounded."""
    line = " ".join(error.split())
    return line if len(line) <= MAX_ERROR else line[: MAX_ERROR - 1] + "…"
