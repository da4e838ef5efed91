"""Connectors: what links a runner to WhatsApp (or to a simulated phone)."""

from __future__ import annotations

from pathlib import Path

from ecosystem.errors import ZapvisorError
from ecosystem.settings import Settings
from runner.connectors.base import Connector, ConnectorEvents


def make_connector(
    kind: str, session: str, auth_dir: Path, events: ConnectorEvents, settings: Settings
) -> Connector:
    if kind == "sim":
        from runner.connectors.sim import SimConnector

        return SimConnector(session, auth_dir, events, settings)
    if kind == "neonize":
        from runner.connectors.neonize import NeonizeConnector

        return NeonizeConnector(session, auth_dir, events, settings)
    raise ZapvisorError(f"connector {kind!r} is not available in this version")


__all__ = ["Connector", "ConnectorEvents", "make_connector"]
