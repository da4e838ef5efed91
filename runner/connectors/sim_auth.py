"""Where a simulated pairing is kept: `tokens/<name>/sim-auth.json` (0600), or the
store for a session whose auth lives there, so a restart reconnects without a QR."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path

from ecosystem.errors import StateDirError
from ecosystem.lease import AuthKind
from ecosystem.paths import write_private
from runner.connectors.base import Connector

AUTH_FILE = "sim-auth.json"


class SimAuth(Connector):
    """The simulated connector's auth, read, saved and forgotten (sim.py runs it)."""

    @property
    def auth_file(self) -> Path:
        return self.auth_dir / AUTH_FILE

    @property
    def in_store(self) -> bool:
        return self.context is not None and self.context.auth == AuthKind.STORE

    async def _load_auth(self) -> tuple[str, str] | None:
        """(phone, device) when paired, None when not; raises ValueError when corrupt."""
        if self.in_store:
            assert self.context is not None
            found = await self.context.call(self.context.store.sim_auth, self.session)
            return None if found is None else (found.phone, found.device)
        try:
            text = self.auth_file.read_text("utf-8")
        except FileNotFoundError:
            return None
        data = json.loads(text)
        phone = data["phone"]
        # isdigit() alone passes fullwidth digits (U+FF10-U+FF19) and "²": ASCII only
        if not isinstance(phone, str) or not (phone.isascii() and phone.isdigit()):
            raise ValueError("phone is not a number")
        # files written before devices had ids: one device per session and phone
        return phone, str(data.get("device") or f"{phone}.{self.session}")

    async def _save_auth(self, phone: str) -> str:
        device = f"{phone}.{secrets.token_hex(4)}"
        if self.in_store:
            assert self.context is not None
            await self.context.call(self.context.store.save_sim_auth, self.session, device, phone)
            return device
        try:
            self.auth_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StateDirError(f"cannot write {self.auth_dir}: {exc.strerror}") from None
        paired = {"phone": phone, "device": device, "paired_at": datetime.now(UTC).isoformat()}
        write_private(self.auth_file, json.dumps(paired))
        return device

    async def _forget_auth(self) -> None:
        if self.in_store:
            assert self.context is not None
            await self.context.call(self.context.store.delete_sim_auth, self.session)
        else:
            self.auth_file.unlink(missing_ok=True)

    def _where(self) -> str:
        return "the store" if self.in_store else f"tokens/{self.session}/{AUTH_FILE}"
