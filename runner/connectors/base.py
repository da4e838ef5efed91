"""The interface between a runner and its link to WhatsApp."""

from __future__ import annotations

import abc
from datetime import datetime
from pathlib import Path
from typing import Protocol

from ecosystem.settings import Settings
from ecosystem.states import Status


class ConnectorEvents(Protocol):
    """What a connector tells its runner; the runner turns each into store writes."""

    async def qr(self, payload: str, expires_at: datetime) -> None: ...

    async def connected(self, phone: str) -> None: ...

    async def disconnected(self, status: Status, reason: str) -> None: ...

    async def failed(self, message: str) -> None: ...

    async def logged_out(self) -> None: ...


class Connector(abc.ABC):
    """One session's link. ``run`` lasts for the runner's life; ``auth_dir`` is
    `tokens/<name>/`, the only place it keeps authentication."""

    kind = "?"

    def __init__(
        self, session: str, auth_dir: Path, events: ConnectorEvents, settings: Settings
    ) -> None:
        self.session = session
        self.auth_dir = auth_dir
        self.events = events
        self.settings = settings

    @abc.abstractmethod
    async def run(self) -> None:
        """Connect (or pair) and keep the link up until cancelled."""

    @abc.abstractmethod
    async def logout(self) -> None:
        """Unlink the device and remove the auth in ``auth_dir``; pairing starts again."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Disconnect, keeping the auth (a restart reconnects without a new QR)."""
