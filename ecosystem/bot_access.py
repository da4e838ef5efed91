"""The door's bot actions: a session's provider keys (where its runner reads them)."""

from __future__ import annotations

from ecosystem import aikeys
from ecosystem.conversations import BotActivity
from ecosystem.errors import StoreUnsupported
from ecosystem.fleet.routing import routed
from ecosystem.names import PROVIDERS, validate_name
from ecosystem.plumbing import Plumbing
from ecosystem.session import Session


def bot_facts(door: Plumbing, session: Session) -> tuple[BotActivity | None, str | None]:
    """What `show` says of a session's bot: its last reply and error (None when the store
    keeps no conversations), and where its key comes from (None: nowhere)."""
    try:
        activity = door.store.bot_activity(session.name)
    except StoreUnsupported:
        activity = None
    provider = session.ai_config.get("provider", "openai")
    if provider not in PROVIDERS:
        return activity, None
    return activity, aikeys.key_source(door.paths, door.settings, session.name, provider)


class BotAccess(Plumbing):
    def bot_activity(self, name: str) -> BotActivity | None:
        """The session's bot: its last reply and last error (one store read, whichever
        host it runs on); None when the store keeps no conversations."""
        try:
            return self.store.bot_activity(validate_name(name))
        except StoreUnsupported:
            return None

    @routed
    def ai_key_sources(self, name: str) -> dict[str, str | None]:
        """Where the session's bot would take each provider's key from, looked up on the
        session's host (its secrets and its settings): ``secrets/NAME.openai-key``,
        ``OPENAI_KEY``, or None. Never the key itself."""
        self.store.get_session(validate_name(name))
        return {p: aikeys.key_source(self.paths, self.settings, name, p) for p in PROVIDERS}

    @routed
    def set_ai_key(self, name: str, provider: str, key: str | None) -> str | None:
        """Keep ``key`` as the session's own ``provider`` key (0600, on the session's
        host), or remove it with None. Returns where the bot's key now comes from (None:
        nowhere, the bot cannot answer). The audit trail records the change, never the
        key."""
        self.store.get_session(validate_name(name))
        aikeys.check_provider(provider)
        if key is None:
            aikeys.delete_key(self.paths, name, provider)
            self.store.add_event(name, "ai_key", actor=self.actor, detail={provider: "removed"})
        else:
            self.paths.ensure()
            aikeys.save_key(self.paths, name, provider, key)
            self.store.add_event(name, "ai_key", actor=self.actor, detail={provider: "set"})
        return aikeys.key_source(self.paths, self.settings, name, provider)
