"""Linking a phone: why a session shows no QR, whether it can take a pairing code now,
and the rule a phone number must follow. Shared by `zapvisor qr`, `zapvisor pair` and
the terminal app, so all three say the same thing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ecosystem.session import Session
from ecosystem.states import PROCESS_SERVING, ProcessState, Status
from ecosystem.views import SessionView

PHONE_RULE = "the number with its country code, 8 to 15 digits (e.g. 5511987654321)"
_SEPARATORS = " +-()."


def phone_problem(text: str) -> str | None:
    """Why ``text`` is not a phone number a pairing code can be asked for (None when it
    is). Spaces, ``+``, ``-``, ``(``, ``)`` and dots are allowed and ignored."""
    raw = text.strip()
    if not raw:
        return f"type {PHONE_RULE}"
    bad = sorted({c for c in raw if not c.isdigit() and c not in _SEPARATORS})
    if bad:
        return f"{raw!r} has {''.join(bad)!r} in it: type {PHONE_RULE}"
    digits = phone_digits(raw)
    if digits.startswith("0"):
        return f"{raw!r} starts with 0: drop the trunk prefix and start with the country code"
    if not 8 <= len(digits) <= 15:
        return f"{raw!r} has {len(digits)} digits: type {PHONE_RULE}"
    return None


def phone_digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def no_qr_reason(session: Session, process_state: str | None = ProcessState.RUNNING) -> str:
    """One line on why there is no QR code to scan right now, and what comes next."""
    name, error = session.name, session.last_error
    if process_state not in PROCESS_SERVING:
        state = process_state or "without a program"
        return f"its runner is {state}: `zapvisor start {name}` starts it"
    status = session.status
    if status == Status.CONNECTED:
        return f"it is already linked to {session.phone or 'a phone'}"
    if status == Status.RECONNECTING:
        why = f" ({error})" if error else ""
        return f"it cannot reach WhatsApp yet{why}; the QR appears once it gets through"
    if status == Status.INITIALIZING:
        return "its runner is starting; the QR follows in a few seconds"
    if status == Status.DISCONNECTED:
        why = f" ({error})" if error else ""
        return f"it stopped waiting for a scan{why}; `zapvisor restart {name}` shows a new QR"
    if status == Status.PHONE_DISCONNECTED:
        return "the phone is offline or unlinked it; a restart shows a new QR if it unlinked"
    if status == Status.ERROR:
        return f"error: {error or 'no reason given'}; see `zapvisor logs {name}`"
    return f"status {status}: the QR appears in a moment"


def pairing_problem(view: SessionView) -> str | None:
    """Why a pairing code cannot be asked for now (None when it can): the connector asks
    WhatsApp for one only while the session is waiting for a scan."""
    s = view.session
    if view.process_state not in PROCESS_SERVING or s.status != Status.WAITING_SCAN:
        return f"{s.name} cannot take a pairing code now: {no_qr_reason(s, view.process_state)}"
    return None


@dataclass(frozen=True)
class PairingCode:
    """A code to type on the phone (WhatsApp > Linked devices > Link with phone number)."""

    name: str
    phone: str
    code: str
    expires_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "phone": self.phone,
            "code": self.code,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


PAIR_STEPS = (
    "on the phone: WhatsApp > Linked devices > Link a device > "
    "Link with phone number instead, then type the code"
)
