"""The bot's conversations, part of the store contract (migration 0010): what a store
without them says (StoreUnsupported), overridden by each store's own mixin."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ecosystem.conversations import BotActivity, ChatMessage, Conversation, ConversationRows
from ecosystem.errors import StoreUnsupported

NO_CONVERSATIONS = "does not keep the bot's conversations"


class ConversationMethods:
    kind: str = "?"

    def add_message(self, session_name: str, contact: str, message: ChatMessage) -> None:
        """Append ``message`` to the session's conversation with ``contact`` (created on
        its first message); an `assistant` message is also the conversation's last
        reply. Raises SessionNotFound when the session is gone."""
        raise StoreUnsupported(self.kind, NO_CONVERSATIONS)

    def recent_messages(self, session_name: str, contact: str, limit: int) -> list[ChatMessage]:
        """The last ``limit`` messages of that conversation, oldest first ([] if none)."""
        raise StoreUnsupported(self.kind, NO_CONVERSATIONS)

    def record_bot_error(self, session_name: str, contact: str, error: str, at: datetime) -> None:
        """Keep why the bot did not answer ``contact`` (one line, cut at 500 characters)."""
        raise StoreUnsupported(self.kind, NO_CONVERSATIONS)

    def list_conversations(self, session_name: str, limit: int = 100) -> list[Conversation]:
        """The session's conversations, the most recently active first."""
        raise StoreUnsupported(self.kind, NO_CONVERSATIONS)

    def bot_activity(self, session_name: str) -> BotActivity:
        """The session's last reply and last error over all its conversations."""
        raise StoreUnsupported(self.kind, NO_CONVERSATIONS)

    def import_conversations(self, rows: Sequence[ConversationRows]) -> int:
        """Insert conversations copied from another store (`zapvisor db copy`), each with
        its messages, in one transaction; their sessions must be here, the
        conversations not. Returns how many."""
        raise StoreUnsupported(self.kind, NO_CONVERSATIONS)
