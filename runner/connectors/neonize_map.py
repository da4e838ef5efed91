"""What the neonize connector decides, without a client: whatsmeow events → the seed's
seven states, receipts → acks and the QR watchdog. Pure and
clock-injectable, so it is tested with real neonize event objects and a fake clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ecosystem.states import Status

FIRST_QR_SECONDS = 60.0
NEXT_QR_SECONDS = 20.0
QR_CODES = 6
"""whatsmeow shows a first code for 60 s, then five more for 20 s each, then gives up
without a usable signal while ``connect()`` keeps blocking."""
QR_WINDOW_SECONDS = FIRST_QR_SECONDS + (QR_CODES - 1) * NEXT_QR_SECONDS
"""160 s after the first code whatsmeow closes the login socket: a pairing code typed
after that cannot link the device, whatever WhatsApp's own 3 minutes say."""
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
    for POST /start (or a restart)..."""
    retry: bool = False
    """...or, with ``retry``, connects a new client after the backoff."""


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
        # whatsmeow sends ConnectFailure only for reasons it does not handle itself (it
        # reconnects silently after 500/503, and turns logouts, bans and an outdated
        # client into their own events), after blocking its own auto-reconnect: nothing
        # retries unless this connector does.
        return Transition(
            Status.RECONNECTING, detail, code="CONNECT_FAILURE", stop=True, retry=True
        )
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


ACKS = {"DELIVERED": "delivered", "READ": "read", "PLAYED": "played"}
"""neonize 0.5.2's Go side sets Receipt.Type for every whatsmeow type but one:
"server-error" (the server could not deliver) leaves it unset, which protobuf reads as
DELIVERED, and "played-self" arrives as SERVER_ERROR. So: unset is "failed", and
SERVER_ERROR (played-self: our own other device opened a view-once) is no ack."""


def ack_status(receipt: Any) -> str | None:
    """The `message_ack` status of a neonize Receipt (None: not an ack we report)."""
    from neonize.proto import Neonize_pb2 as pb

    if receipt.MessageSource.IsFromMe:
        return None  # our own other devices reading the chat
    if not receipt.HasField("Type"):
        return "failed"
    return ACKS.get(pb.Receipt.ReceiptType.Name(receipt.Type))


class QrWatchdog:
    """Notices that whatsmeow stopped showing QR codes (or that a pairing code was not
    typed in time): armed by each code shown, disarmed by a pairing."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, grace: float = QR_GRACE
    ) -> None:
        self.clock = clock
        self.grace = grace
        self.shown = 0
        self.first_at: float | None = None
        self.deadline: float | None = None

    def qr_shown(self) -> float:
        """A new code is on show; returns how long it is valid."""
        valid = FIRST_QR_SECONDS if self.shown == 0 else NEXT_QR_SECONDS
        if self.shown == 0:
            self.first_at = self.clock()
        self.shown += 1
        self.deadline = max(self.deadline or 0.0, self.clock() + valid + self.grace)
        return valid

    def pairing_code_issued(self) -> float:
        """A pairing code was given; returns how long it can be typed: WhatsApp's 3
        minutes, but never past the end of whatsmeow's QR window (its socket closes)."""
        now = self.clock()
        end = now + PAIR_CODE_SECONDS
        if self.first_at is not None:
            end = min(end, self.first_at + QR_WINDOW_SECONDS)
        self.deadline = max(self.deadline or 0.0, end + self.grace)
        return max(0.0, end - now)

    def disarm(self) -> None:
        self.shown = 0
        self.first_at = None
        self.deadline = None

    def remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - self.clock())

    def expired(self) -> bool:
        return self.deadline is not None and self.clock() >= self.deadline
