"""A simulated phone: the whole pairing life cycle without WhatsApp.

It shows a QR payload shaped like WhatsApp's (``2@ref,noise,identity,adv``, 265
characters), rotates it every ``ZAPVISOR_SIM_QR_SECONDS``, pairs when "scanned"
(`zapvisor sim-scan NAME` or ``POST /sim/scan``) with a phone number derived from the
session name, and keeps its "auth" in `tokens/<name>/sim-auth.json` so a restart
reconnects without a new QR. Payloads are deterministic: the same session and rotation
number always give the same payload.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ecosystem.errors import ZapvisorError
from ecosystem.paths import write_private
from ecosystem.settings import Settings
from runner.connectors.base import Connector, ConnectorEvents

log = logging.getLogger("runner.sim")
AUTH_FILE = "sim-auth.json"


def sim_payload(session: str, seq: int) -> str:
    def b64(label: str, size: int) -> str:
        out = b""
        i = 0
        while len(out) < size:
            out += hashlib.sha256(f"{session}:{seq}:{label}:{i}".encode()).digest()
            i += 1
        return base64.b64encode(out[:size]).decode("ascii")

    return f"2@{b64('ref', 96)},{b64('noise', 32)},{b64('identity', 32)},{b64('adv', 32)}"


def sim_phone(session: str) -> str:
    digits = str(int(hashlib.sha256(session.encode()).hexdigest(), 16))
    return "5511" + digits[:9]


class NotWaitingForScan(ZapvisorError):
    exit_code = 75


class SimConnector(Connector):
    kind = "sim"

    def __init__(
        self, session: str, auth_dir: Path, events: ConnectorEvents, settings: Settings
    ) -> None:
        super().__init__(session, auth_dir, events, settings)
        self._scanned = asyncio.Event()
        self._logged_out = asyncio.Event()
        self._waiting = False

    @property
    def auth_file(self) -> Path:
        return self.auth_dir / AUTH_FILE

    def _load_auth(self) -> str | None:
        """The paired phone number, None when unpaired; raises ValueError when corrupt."""
        try:
            text = self.auth_file.read_text("utf-8")
        except FileNotFoundError:
            return None
        data = json.loads(text)
        phone = data["phone"]
        if not isinstance(phone, str) or not phone.isdigit():
            raise ValueError("phone is not a number")
        return phone

    async def run(self) -> None:
        while True:
            try:
                phone = self._load_auth()
            except (ValueError, KeyError, TypeError) as exc:
                await self.events.failed(
                    f"auth in tokens/{self.session}/{AUTH_FILE} is corrupt ({exc}); "
                    f"`zapvisor logout {self.session}` clears it and shows a new QR"
                )
                await self._wait_logout()
                continue
            if phone is None:
                phone = await self._pair()
            await asyncio.sleep(0.05)  # the simulated handshake
            await self.events.connected(phone)
            await self._wait_logout()

    async def _pair(self) -> str:
        seq = 0
        self._scanned.clear()
        self._waiting = True
        try:
            while True:
                interval = self.settings.sim_qr_seconds
                expires = datetime.now(UTC) + timedelta(seconds=interval)
                await self.events.qr(sim_payload(self.session, seq), expires)
                try:
                    await asyncio.wait_for(self._scanned.wait(), interval)
                except TimeoutError:
                    seq += 1
                    continue
                phone = sim_phone(self.session)
                self.auth_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                paired = {"phone": phone, "paired_at": datetime.now(UTC).isoformat()}
                write_private(self.auth_file, json.dumps(paired))
                log.info("paired", extra={"event": "paired", "phone": phone})
                return phone
        finally:
            self._waiting = False

    async def _wait_logout(self) -> None:
        await self._logged_out.wait()
        self._logged_out.clear()

    def scan(self) -> None:
        """The simulated phone scans the QR on show."""
        if not self._waiting:
            raise NotWaitingForScan(f"session {self.session} is not waiting for a QR scan")
        self._scanned.set()

    async def logout(self) -> None:
        self.auth_file.unlink(missing_ok=True)
        await self.events.logged_out()
        self._logged_out.set()
