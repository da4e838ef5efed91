"""The session's bot: an inbound text message → the conversation's recent history → the
provider → the reply, sent after the configured delay (typing meanwhile), recorded in
the conversation and counted.

Its config is the session's, re-read from the store with every inbound message (and
for the API's sends at most every ``REFRESH`` seconds), so `zapvisor config` takes
effect without a restart. Nothing here may take the session
down: every failure (no key, a 401, a 429, a timeout, the outbound limit) means no
reply, its reason in the conversation (`show`), the audit trail and the log, and after
``ALERT_AFTER`` in a row an alert; the session stays connected.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from ecosystem import aikeys
from ecosystem.conversations import ChatMessage
from ecosystem.errors import ZapvisorError
from ecosystem.health.model import BOT_KEY, AlertKind, NewAlert
from ecosystem.session import Session, utcnow
from runner.bot import pacing
from runner.bot.providers import ProviderError, complete
from runner.connectors.base import Inbound, Recipient

if TYPE_CHECKING:
    import httpx

    from ecosystem.botconfig import AiConfig, TimingConfig
    from runner.core import Runner

log = logging.getLogger("runner.bot")
ACTOR = "bot"
REFRESH = 2.0
"""Seconds a read of the session's config is reused."""
AUDIT_REPEAT = 600.0
"""Seconds after which the same failure is written to the audit trail again."""
ALERT_AFTER = 3
"""Failures in a row that raise the session's bot alert (cleared by the next reply)."""


class Bot:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.name = runner.name
        self.outbound = pacing.OutboundLimit()
        self.cooldown = pacing.Cooldown()
        self._session = runner.session
        self._read_at = runner.session_read_at  # made when first needed: as old as the row
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._failures = 0
        self._alerted = False
        self._last_reason = ""
        self._last_event = 0.0

    # -- config -------------------------------------------------------------------------

    async def _current(self, *, fresh: bool = False) -> Session:
        if fresh or time.monotonic() - self._read_at > REFRESH:
            self._read_at = time.monotonic()
            try:
                self._session = await self.runner.reporter.call(
                    self.runner.store.get_session, self.name
                )
            except ZapvisorError as exc:  # the store is down: keep the last config
                log.warning("cannot re-read the config: %s", exc, extra={"event": "bot_config"})
        return self._session

    async def timing(self) -> TimingConfig:
        # loaded here, not with the runner: an idle session never builds its models
        from ecosystem.botconfig import TimingConfig, parse_timing_config

        try:
            return parse_timing_config((await self._current()).timing_config)
        except ValueError:
            return TimingConfig.model_validate({})  # saved before the rules: defaults (no limit)

    async def outbound_wait(self) -> float:
        """0 when the session may send one more message now (it is counted), else the
        seconds until it may: the API's sends and the bot's replies share this."""
        self.outbound.configure((await self.timing()).outbound_per_minute)
        return self.outbound.take()

    # -- inbound ------------------------------------------------------------------------

    def on_message(self, message: Inbound) -> None:
        """Called for every inbound message; the reply runs on its own task."""
        task = asyncio.create_task(self._handle(message), name="bot-reply")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("bot reply failed: %r", exc, exc_info=exc, extra={"event": "bot_crash"})

    async def _handle(self, message: Inbound) -> None:
        from ecosystem.botconfig import TimingConfig, parse_ai_config, parse_timing_config

        arrived = time.monotonic()
        # read at every message (one indexed row): a config just saved applies to the next
        session = await self._current(fresh=True)
        try:
            ai = parse_ai_config(session.ai_config)
        except ValueError as exc:
            if session.ai_config.get("enabled") is True:
                await self._failed(message.chat, f"{exc}; fix it with `zapvisor config`")
            return
        if not ai.enabled or not self._wanted(message, ai):
            return
        try:
            timing = parse_timing_config(session.timing_config)
        except ValueError:
            timing = TimingConfig.model_validate({})
        lock = self._locks.setdefault(message.chat, asyncio.Lock())
        async with lock:  # one reply at a time per chat, so the history stays in order
            await self._reply(message, ai, timing, arrived)
        if not lock.locked() and len(self._locks) > 1000:
            self._locks.pop(message.chat, None)

    def _wanted(self, message: Inbound, ai: AiConfig) -> bool:
        if message.is_group and not ai.groups:
            return False
        if message.sender and message.sender == self.runner.live.phone:
            return False  # our own message, seen from another device
        return message.type == "chat" and bool(message.body.strip())

    async def _reply(
        self, message: Inbound, ai: AiConfig, timing: TimingConfig, arrived: float
    ) -> None:
        chat = message.chat
        history = await self._store(self.runner.store.recent_messages, self.name, chat, ai.history)
        await self._store(
            self.runner.store.add_message,
            self.name,
            chat,
            ChatMessage(role="user", body=message.body, wa_id=message.id or None),
        )
        if pacing.in_quiet_hours(timing.quiet_hours):
            log.info("no reply: quiet hours", extra={"event": "bot_skip", "reason": "quiet"})
            return
        cooling = self.cooldown.remaining(chat, timing.cooldown_seconds)
        if cooling:
            log.info(
                "no reply: cooldown, %.0f s left",
                cooling,
                extra={"event": "bot_skip", "reason": "cooldown"},
            )
            return
        key = aikeys.resolve_key(self.runner.paths, self.runner.settings, self.name, ai.provider)
        if key is None:
            env = aikeys.ENV_NAMES[ai.provider]
            await self._failed(
                chat,
                f"no {ai.provider} key: set {env} on this host or "
                f"`zapvisor secret {self.name} {ai.provider}`",
            )
            return
        connector = self.runner.connector
        if timing.mark_read:
            await self._quietly(connector.mark_read(message))
        if timing.typing:
            await self._quietly(connector.typing(chat, True))
        try:
            started = time.monotonic()
            text = await complete(self._http(), ai, key, history or [], message.body)
            log.info(
                "reply ready",
                extra={"event": "bot_answer", "ms": round((time.monotonic() - started) * 1000)},
            )
        except ProviderError as exc:
            if timing.typing:
                await self._quietly(connector.typing(chat, False))
            await self._failed(chat, str(exc))
            return
        left = pacing.draw_delay(timing) - (time.monotonic() - arrived)
        if left > 0:
            await asyncio.sleep(left)
        self.outbound.configure(timing.outbound_per_minute)
        if self.outbound.take():
            if timing.typing:
                await self._quietly(connector.typing(chat, False))
            await self._failed(
                chat, f"over the outbound limit of {timing.outbound_per_minute} per minute"
            )
            return
        try:
            sent = await connector.send_text(Recipient.parse(chat), text)
        except ZapvisorError as exc:
            await self._failed(chat, f"sending the reply failed: {exc}")
            return
        self.cooldown.replied(chat)
        await self.runner.events.message_sent()
        await self._store(
            self.runner.store.add_message,
            self.name,
            chat,
            ChatMessage(role="assistant", body=text, created_at=sent.timestamp, wa_id=sent.id),
        )
        log.info("replied", extra={"event": "bot_reply", "message_id": sent.id})
        await self._succeeded()

    # -- outcomes -----------------------------------------------------------------------

    async def _failed(self, chat: str, reason: str) -> None:
        log.warning("no reply: %s", reason, extra={"event": "bot_error"})
        store = self.runner.store
        await self._store(store.record_bot_error, self.name, chat, reason, utcnow())
        # the audit trail gets each new reason, and the same one again after a while, so a
        # contact writing all day to a session without a key does not flood it
        now = time.monotonic()
        if reason != self._last_reason or now - self._last_event > AUDIT_REPEAT:
            self._last_reason, self._last_event = reason, now
            await self._store(
                lambda: store.add_event(
                    self.name, "ai_error", actor=ACTOR, detail={"error": reason}
                )
            )
        self._failures += 1
        if self._failures >= ALERT_AFTER and not self._alerted:
            alert = NewAlert(
                host=self.runner.settings.host_id,
                key=BOT_KEY + self.name,
                kind=AlertKind.BOT_FAILING,
                message=f"{self.name}: the bot failed {self._failures} times in a row: {reason}",
                session_name=self.name,
            )
            self._alerted = await self._store(store.raise_alert, alert) is not None

    async def _succeeded(self) -> None:
        self._failures = 0
        if self._alerted:
            host = self.runner.settings.host_id
            await self._store(self.runner.store.clear_alert, host, BOT_KEY + self.name)
            self._alerted = False

    async def _store(self, fn: Any, *args: Any) -> Any:
        """A store call on the runner's store thread; a store that is down costs the
        history or the record, never the reply."""
        try:
            return await self.runner.reporter.call(fn, *args)
        except ZapvisorError as exc:
            log.warning("store: %s", exc, extra={"event": "bot_store"})
            return None

    async def _quietly(self, step: Any) -> None:
        try:
            await step
        except ZapvisorError as exc:
            log.info("%s", exc, extra={"event": "bot_presence"})

    def _http(self) -> httpx.AsyncClient:
        import httpx  # only sessions with a bot pay for it

        if self._client is None:
            # httpx logs every request's URL at INFO: not the runner's log's business
            logging.getLogger("httpx").setLevel(logging.WARNING)
            self._client = httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,  # no proxy or netrc from supervisord's environment
                limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
            )
        return self._client

    async def close(self) -> None:
        """Cancel the replies under way (a stop does not wait on a provider)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if self._client is not None:
            await self._client.aclose()
