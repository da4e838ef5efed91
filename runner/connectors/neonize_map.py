"""What the neonize connector decides, without a client: whatsmeow events → the seed's
seven states, the first-connect backoff and the QR watchdog. Pure and clock-injectable,
so it is tested with real neonize event objects and a fake clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ecosystem.states import Status
from runner.connectors.base import Inbound, Recipient

FIRST_QR_SECONDS = 60.0
NEXT_QR_SECONDS = 20.0
QR_CODES = 6
"""whatsmeow shows a first code for 60 s, then five more for 20 s each, then gives up
without a usable signal while ``connect()`` keeps blocking."""
QR_GRACE = 10.0
PAIR_CODE_SECONDS = 180.0


@dataclass(frozen=True)
class Transition:
    """What one event means for the session."""

    status: Status | None
    """The new status; None leaves it as it is."""
    reason: str = ""
    code: str | None = None
    """When set, an `error` webhook with this code is sent."""
    recoverable: bool = True
    forget_auth: bool = False
    """The device was unlinked: the saved auth is useless and is removed."""
    stop: bool = False
    """whatsmeow will not reconnect by itself: the connector stops this client and waits
    for POST /start (or a restart) when ``forget_auth``/replaced, else retries."""


_LOGGED_OUT_REASONS = frozenset({"LOGGED_OUT", "MAIN_DEVICE_GONE", "UNKNOWN_LOGOUT"})
_FATAL_REASONS = frozenset({"CLIENT_OUTDATED", "BAD_USER_AGENT"})
_UNLINKED = "the phone unlinked this device; POST /start or `zapvisor restart` shows a new QR"


def transition_for(event: Any) -> Transition | None:
    """The state change a neonize event (``neonize.proto.Neonize_pb2``) means; None for
    events that change nothing."""
    from neonize.proto import Neonize_pb2 as pb

    if isinstance(event, pb.Connected | pb.KeepAliveRestored):
        return Transition(Status.CONNECTED)
    if isinstance(event, pb.Disconnected):
        return Transition(Status.RECONNECTING, "connection to WhatsApp lost; reconnecting")
    if isinstance(event, pb.KeepAliveTimeout):
        return Transition(
            Status.RECONNECTING,
            f"WhatsApp stopped answering keepalives ({event.ErrorCount} missed)",
        )
    if isinstance(event, pb.LoggedOut):
        reason = (
            pb.ConnectFailureReason.Name(event.Reason) if event.HasField("Reason") else "LOGGED_OUT"
        )
        return Transition(
            Status.PHONE_DISCONNECTED,
            _UNLINKED,
            code=reason,
            recoverable=False,
            forget_auth=True,
            stop=True,
        )
    if isinstance(event, pb.ConnectFailure):
        reason = pb.ConnectFailureReason.Name(event.Reason)
        detail = f"WhatsApp refused the connection: {reason}" + (
            f" ({event.Message})" if event.Message else ""
        )
        if reason in _LOGGED_OUT_REASONS:
            return Transition(
                Status.PHONE_DISCONNECTED,
                _UNLINKED,
                code=reason,
                recoverable=False,
                forget_auth=True,
                stop=True,
            )
        if reason == "TEMP_BANNED":
            return Transition(Status.ERROR, detail, code=reason, stop=True)
        if reason in _FATAL_REASONS:
            return Transition(
                Status.ERROR,
                detail + "; upgrade zapvisor (neonize)",
                code=reason,
                recoverable=False,
                stop=True,
            )
        return Transition(Status.RECONNECTING, detail, code="CONNECT_FAILURE")
    if isinstance(event, pb.StreamReplaced):
        return Transition(
            Status.DISCONNECTED,
            "another client connected with this session's credentials; POST /start "
            "or `zapvisor restart` takes it back",
            code="STREAM_REPLACED",
            stop=True,
        )
    if isinstance(event, pb.TemporaryBan):
        why = pb.TemporaryBan.TempBanReason.Name(event.Code)
        return Transition(
            Status.ERROR,
            f"WhatsApp banned this number temporarily ({why}, {event.Expire} s left)",
            code="TEMP_BANNED",
            stop=True,
        )
    if isinstance(event, pb.ClientOutdated):
        return Transition(
            Status.ERROR,
            "WhatsApp says this client is outdated; upgrade zapvisor (neonize)",
            code="CLIENT_OUTDATED",
            recoverable=False,
            stop=True,
        )
    if isinstance(event, pb.StreamError):
        return Transition(Status.RECONNECTING, f"stream error {event.Code or '?'}")
    if isinstance(event, pb.PairStatus) and event.Status == pb.PairStatus.ERROR:
        return Transition(None, f"pairing failed: {event.Error}", code="PAIR_FAILED")
    return None


ACKS = {"DELIVERED": "delivered", "READ": "read", "PLAYED": "played", "SERVER_ERROR": "failed"}


def ack_status(receipt: Any) -> str | None:
    """The `message_ack` status of a neonize Receipt (None: not an ack we report)."""
    from neonize.proto import Neonize_pb2 as pb

    if receipt.MessageSource.IsFromMe:
        return None  # our own other devices reading the chat
    return ACKS.get(pb.Receipt.ReceiptType.Name(receipt.Type))


_TYPES = {"text": "chat"}


def inbound_from(event: Any, own_phone: str) -> Inbound | None:
    """A neonize MessageEv as the seed's `message_received` message; None for our own
    messages, status updates, newsletters and broadcasts."""
    from neonize.utils.message import extract_text

    info = event.Info
    source = info.MessageSource
    chat = source.Chat
    if source.IsFromMe or chat.Server in ("broadcast", "newsletter"):
        return None
    sender = source.Sender
    if sender.Server == "lid" and source.SenderAlt.User:
        sender = source.SenderAlt  # the phone number behind a hidden (LID) sender
    kind = info.MediaType or _TYPES.get(info.Type, info.Type or "chat")
    return Inbound(
        id=info.ID,
        sender=sender.User,
        chat=Recipient(chat.User, source.IsGroup).jid,
        to=Recipient(own_phone).jid if own_phone else "",
        body=extract_text(event.Message),
        type=kind,
        timestamp=int(info.Timestamp),
        is_group=source.IsGroup,
        sender_name=info.Pushname,
    )


class Backoff:
    """Capped exponential delays: 1, 2, 4 … ``cap`` seconds."""

    def __init__(self, initial: float = 1.0, cap: float = 60.0) -> None:
        self.initial = initial
        self.cap = cap
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self.cap, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self.initial


class QrWatchdog:
    """Notices that whatsmeow stopped showing QR codes (or that a pairing code was not
    typed in time): armed by each code shown, disarmed by a pairing."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, grace: float = QR_GRACE
    ) -> None:
        self.clock = clock
        self.grace = grace
        self.shown = 0
        self.deadline: float | None = None

    def qr_shown(self) -> float:
        """A new code is on show; returns how long it is valid."""
        valid = FIRST_QR_SECONDS if self.shown == 0 else NEXT_QR_SECONDS
        self.shown += 1
        self.deadline = self.clock() + valid + self.grace
        return valid

    def pairing_code_issued(self) -> None:
        self.deadline = max(self.deadline or 0.0, self.clock() + PAIR_CODE_SECONDS)

    def disarm(self) -> None:
        self.shown = 0
        self.deadline = None

    def remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - self.clock())

    def expired(self) -> bool:
        return self.deadline is not None and self.clock() >= self.deadline
