"""Connectors: what links a runner to WhatsApp (or to a simulated phone)."""

from __future__ import annotations

from pathlib import Path

from ecosystem.errors import ZapvisorError
from ecosystem.settings import Settings
from runner.connectors.base import Connector, ConnectorEvents
from runner.connectors.context import ConnectorContext


def make_connector(
    kind: str,
    session: str,
    auth_dir: Path,
    events: ConnectorEvents,
    settings: Settings,
    context: ConnectorContext | None = None,
) -> Connector:
    connector: Connector
    if kind == "sim":
        from runner.connectors.sim import SimConnector

        connector = SimConnector(session, auth_dir, events, settings)
    elif kind == "neonize":
        from runner.connectors.neonize import NeonizeConnector

        connector = NeonizeConnector(session, auth_dir, events, settings)
    else:
        raise ZapvisorError(f"connector {kind!r} is not available in this version")
    connector.context = context
    return connector


__all__ = ["Connector", "ConnectorContext", "ConnectorEvents", "make_connector"]
