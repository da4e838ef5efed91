"""The bot's conversations in the postgres and supabase stores
(migrations/postgres/0010): each method is one call of a SQL function, the same for
both stores."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ecosystem.conversations import (
    BotActivity,
    ChatMessage,
    Conversation,
    ConversationRows,
    short_error,
)
from ecosystem.store.pgfunctions import FunctionCaller, in_utc, ms


class PgConversations(FunctionCaller):
    def add_message(self, session_name: str, contact: str, message: ChatMessage) -> None:
        self.call_function(
            "zapvisor_add_message",
            {
                "p_session": session_name,
                "p_contact": contact,
                "p_role": message.role,
                "p_body": message.body,
                "p_at": ms(message.created_at),
                "p_wa_id": message.wa_id,
            },
            returns="nothing",
            write=True,
            name=session_name,
        )

    def recent_messages(self, session_name: str, contact: str, limit: int) -> list[ChatMessage]:
        rows = self.call_function(
            "zapvisor_recent_messages",
            {"p_session": session_name, "p_contact": contact, "p_limit": limit},
            returns="rows",
            write=False,
        )
        return [in_utc(ChatMessage.model_validate(dict(r))) for r in rows]

    def record_bot_error(self, session_name: str, contact: str, error: str, at: datetime) -> None:
        self.call_function(
            "zapvisor_record_bot_error",
            {
                "p_session": session_name,
                "p_contact": contact,
                "p_error": short_error(error),
                "p_at": ms(at),
            },
            returns="nothing",
            write=True,
            name=session_name,
        )

    def list_conversations(self, session_name: str, limit: int = 100) -> list[Conversation]:
        rows = self.call_function(
            "zapvisor_list_conversations",
            {"p_session": session_name, "p_limit": limit},
            returns="rows",
            write=False,
        )
        return [in_utc(Conversation.model_validate(dict(r))) for r in rows]

    def bot_activity(self, session_name: str) -> BotActivity:
        rows = self.call_function(
            "zapvisor_bot_activity", {"p_session": session_name}, returns="rows", write=False
        )
        return in_utc(BotActivity.model_validate(dict(rows[0]))) if rows else BotActivity()

    def import_conversations(self, rows: Sequence[ConversationRows]) -> int:
        document = [
            {
                **conversation.model_dump(mode="json", exclude={"messages"}),
                "messages": [m.model_dump(mode="json") for m in messages],
            }
            for conversation, messages in rows
        ]
        count = self.call_function(
            "zapvisor_import_conversations", {"p_rows": document}, returns="value", write=True
        )
        return int(count or 0)
