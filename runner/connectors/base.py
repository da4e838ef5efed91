"""The interface between a runner and its link to WhatsApp."""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ecosystem.errors import InvalidValue, ZapvisorError
from ecosystem.session import utcnow
from ecosystem.settings import Settings
from ecosystem.states import Status

if TYPE_CHECKING:
    from runner.connectors.context import ConnectorContext


class NotConnected(ZapvisorError):
    """The session cannot do that now (not connected, or not waiting for a pairing)."""

    exit_code = 69


class NotSupported(ZapvisorError):
    """This connector has no such operation."""


class UpstreamError(ZapvisorError):
    """WhatsApp (or a media URL) refused or failed the operation."""

    exit_code = 69


class RestartRunner(ZapvisorError):
    """Raised by :meth:`Connector.run` to have the runner flush and exit with
    ``RUNNER_RECYCLE_EXIT``, so supervisord starts a fresh process (what the connector
    cannot undo in this one: a native call it cannot cancel, descriptors it cannot
    close)."""


_DIGITS = re.compile(r"[0-9]{6,20}")
_GROUP = re.compile(r"[0-9]{6,20}(-[0-9]{6,20})?")


@dataclass(frozen=True)
class Recipient:
    """A chat to send to: a phone number (digits only) or a group id."""

    user: str
    group: bool = False

    @property
    def jid(self) -> str:
        """The chat id in the form the seed's API uses (`…@c.us`, `…@g.us`)."""
        return f"{self.user}@{'g.us' if self.group else 'c.us'}"

    @classmethod
    def parse(cls, phone: Any, is_group: Any = False) -> Recipient:
        """``5511999999999``, ``+55 (11) 99999-9999``, ``5511999999999@c.us`` or
        ``…@s.whatsapp.net``; a group as ``<id>@g.us`` or with ``isGroup``."""
        if not isinstance(phone, str) or not phone.strip():
            raise InvalidValue("phone must be a phone number such as 5511999999999")
        if not isinstance(is_group, bool):
            raise InvalidValue("isGroup must be true or false")
        text = phone.strip()
        user, at, server = text.partition("@")
        if at:
            if server not in ("c.us", "s.whatsapp.net", "g.us"):
                raise InvalidValue(f"unknown chat server {server!r} (use @c.us or @g.us)")
            is_group = is_group or server == "g.us"
        else:
            user = re.sub(r"[\s()+.-]", "", text)
        pattern = _GROUP if is_group else _DIGITS
        if not pattern.fullmatch(user):
            what = "a group id" if is_group else "6 to 20 digits with the country code"
            raise InvalidValue(f"phone {phone!r} is not {what}")
        return cls(user, is_group)


@dataclass(frozen=True)
class Media:
    """An image or a file to send, by URL (the runner downloads it)."""

    kind: str  # "image" or "file"
    url: str
    caption: str = ""
    file_name: str = ""


@dataclass(frozen=True)
class Sent:
    id: str
    to: str
    timestamp: datetime = field(default_factory=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {
            "success": True,
            "id": self.id,
            "to": self.to,
            "status": "sent",
            "timestamp": self.timestamp.isoformat(timespec="seconds").replace("+00:00", "Z"),
        }


@dataclass(frozen=True)
class Inbound:
    """A message received, shaped as the seed's `message_received` payload."""

    id: str
    sender: str  # digits, or a group participant's number
    chat: str  # jid of the chat (@c.us or @g.us)
    to: str  # our own jid
    body: str
    type: str = "chat"
    timestamp: int = 0  # unix seconds
    is_group: bool = False
    sender_name: str = ""
    target_id: str = ""
    """For a ``reaction``, an ``edited`` or a ``revoked`` message: the id of the message
    it is about."""
    media: dict[str, Any] | None = None
    """What an image, video, audio, sticker or document carried (see the README)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "from": self.chat,
            "to": self.to,
            "body": self.body,
            "type": self.type,
            "timestamp": self.timestamp,
            "isGroupMsg": self.is_group,
            "sender": {"name": self.sender_name, "phone": self.sender},
        }
        if self.target_id:
            out["targetId"] = self.target_id
        if self.media is not None:
            out["media"] = self.media
        return out


class ConnectorEvents(Protocol):
    """What a connector tells its runner; the runner turns each into store writes and
    webhook events."""

    async def qr(self, payload: str, expires_at: datetime) -> None: ...

    async def connected(self, phone: str, device_jid: str | None = None) -> None: ...

    async def device_linked(self, device_jid: str) -> None: ...

    async def disconnected(self, status: Status, reason: str) -> None: ...

    async def failed(self, message: str) -> None: ...

    async def logged_out(self) -> None: ...

    async def message_received(self, message: Inbound) -> None: ...

    async def message_ack(self, message_id: str, status: str, chat: str) -> None: ...

    async def error(self, code: str, message: str, *, recoverable: bool) -> None: ...


class Connector(abc.ABC):
    """One session's link. ``run`` lasts for the runner's life; ``auth_dir`` is
    `tokens/<name>/`, the only place it keeps authentication."""

    kind = "?"
    context: ConnectorContext | None = None
    """Set by make_connector (runner/connectors/context.py)."""
    pair_code_seconds = 180.0
    """How long a code from :meth:`pair_phone` can be typed on the phone."""

    def __init__(
        self, session: str, auth_dir: Path, events: ConnectorEvents, settings: Settings
    ) -> None:
        self.session = session
        self.auth_dir = auth_dir
        self.events = events
        self.settings = settings

    @property
    def leaves_thread(self) -> bool:
        """True once :meth:`close` returned with a native call still blocking a thread
        that nothing can end: the runner then leaves the process without joining it."""
        return False

    @abc.abstractmethod
    async def run(self) -> None:
        """Connect (or pair) and keep the link up until cancelled."""

    @abc.abstractmethod
    async def logout(self) -> None:
        """Unlink the device and remove the auth in ``auth_dir``; pairing starts again."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Disconnect, keeping the auth (a restart reconnects without a new QR)."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect again after the link stopped (QR not scanned in time, replaced)."""

    async def send_text(self, to: Recipient, text: str) -> Sent:
        raise NotSupported(f"the {self.kind} connector cannot send messages")

    async def send_media(self, to: Recipient, media: Media) -> Sent:
        raise NotSupported(f"the {self.kind} connector cannot send media")

    async def check_number(self, phone: str) -> dict[str, Any]:
        raise NotSupported(f"the {self.kind} connector cannot check numbers")

    async def contacts(self) -> list[dict[str, Any]]:
        raise NotSupported(f"the {self.kind} connector has no contacts")

    async def pair_phone(self, phone: str) -> str:
        raise NotSupported(f"the {self.kind} connector cannot pair by phone number")

    def pair_code_expires_at(self) -> datetime:
        """Until when the code :meth:`pair_phone` just gave can be typed."""
        return utcnow() + timedelta(seconds=self.pair_code_seconds)

    async def typing(self, chat: str, on: bool) -> None:  # noqa: B027 - optional hook
        """Show (or stop showing) "typing…" in ``chat``; a connector without it shows
        nothing."""

    async def mark_read(self, message: Inbound) -> None:  # noqa: B027 - optional hook
        """Mark ``message`` read (blue ticks); a connector without it leaves it unread."""
