"""What a connector may know of its runner beyond the session's name: where its auth
lives, how to reach the store in order with the runner's own writes, and whether the
runner holds its lease at this instant (runner/lease.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ecosystem.lease import AuthKind

if TYPE_CHECKING:
    from ecosystem.store import Store
    from runner.connectors.sim_server import SimServer


def _always() -> bool:
    return True


@dataclass(frozen=True)
class ConnectorContext:
    auth: AuthKind
    store: Store
    call: Callable[..., Awaitable[Any]]
    """Run a blocking store call on the runner's store thread, after its pending writes."""
    host: str
    may_drive: Callable[[], bool] = _always
    """False once the lease's deadline passed: the link must not be used any more."""
    epoch: int | None = None
    sim_server: SimServer | None = None
