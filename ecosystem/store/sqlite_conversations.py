"""The bot's conversations in the embedded SQLite store (migration 0010)."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING

from ecosystem.conversations import BotActivity, ChatMessage, Conversation, short_error
from ecosystem.errors import SessionNotFound
from ecosystem.store.sqlite_lease import fence_error


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds")


_UPSERT = (
    "INSERT INTO conversations (session_name, contact, created_at, last_message_at)"
    " VALUES (?, ?, ?, ?) ON CONFLICT (session_name, contact) DO UPDATE SET"
    " last_message_at = max(last_message_at, excluded.last_message_at)"
    " RETURNING id"
)


class SQLiteConversations:
    """Mixed into SQLiteStore; every method is one short transaction."""

    if TYPE_CHECKING:

        def _cursor(self, write: bool = False) -> AbstractContextManager[sqlite3.Connection]: ...

    def _conversation(self, db: sqlite3.Connection, session: str, contact: str, at: str) -> int:
        try:
            row = db.execute(_UPSERT, (session, contact, at, at)).fetchone()
        except sqlite3.IntegrityError as exc:
            raise fence_error(exc, session) or SessionNotFound(
                f"no session named {session!r}"
            ) from None
        return int(row[0])

    def add_message(self, session_name: str, contact: str, message: ChatMessage) -> None:
        at = _ts(message.created_at)
        with self._cursor(write=True) as db:
            conversation = self._conversation(db, session_name, contact, at or "")
            db.execute(
                "INSERT INTO messages (conversation_id, role, body, created_at, wa_id)"
                " VALUES (?, ?, ?, ?, ?)",
                (conversation, message.role, message.body, at, message.wa_id),
            )
            if message.role == "assistant":
                db.execute(
                    "UPDATE conversations SET last_reply_at = ? WHERE id = ?", (at, conversation)
                )

    def recent_messages(self, session_name: str, contact: str, limit: int) -> list[ChatMessage]:
        with self._cursor() as db:
            rows = db.execute(
                "SELECT role, body, created_at, wa_id FROM ("
                " SELECT m.* FROM messages m JOIN conversations c ON c.id = m.conversation_id"
                " WHERE c.session_name = ? AND c.contact = ? ORDER BY m.id DESC LIMIT ?"
                ") ORDER BY id",
                (session_name, contact, max(0, limit)),
            ).fetchall()
        return [ChatMessage.model_validate(dict(r)) for r in rows]

    def record_bot_error(self, session_name: str, contact: str, error: str, at: datetime) -> None:
        when = _ts(at) or ""
        with self._cursor(write=True) as db:
            conversation = self._conversation(db, session_name, contact, when)
            db.execute(
                "UPDATE conversations SET last_error = ?, last_error_at = ? WHERE id = ?",
                (short_error(error), when, conversation),
            )

    def list_conversations(self, session_name: str, limit: int = 100) -> list[Conversation]:
        with self._cursor() as db:
            rows = db.execute(
                "SELECT c.*, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)"
                " AS messages FROM conversations c WHERE c.session_name = ?"
                " ORDER BY c.last_message_at DESC, c.id DESC LIMIT ?",
                (session_name, limit),
            ).fetchall()
        return [Conversation.model_validate(dict(r)) for r in rows]

    def bot_activity(self, session_name: str) -> BotActivity:
        with self._cursor() as db:
            reply = db.execute(
                "SELECT max(last_reply_at) FROM conversations WHERE session_name = ?",
                (session_name,),
            ).fetchone()
            error = db.execute(
                "SELECT last_error, last_error_at FROM conversations WHERE session_name = ?"
                " AND last_error_at IS NOT NULL ORDER BY last_error_at DESC LIMIT 1",
                (session_name,),
            ).fetchone()
        return BotActivity(
            last_reply_at=reply[0] if reply else None,
            last_error=error[0] if error else None,
            last_error_at=error[1] if error else None,
        )
