"""A fleet file's `auth` and `failover` of a session: what it asks for, what the fleet
refuses (the whole file, naming the line) and what apply refuses (a step, with why).

Absent keys leave the session as it is; a new session's auth is then chosen as
`zapvisor create` chooses it and its failover is on.
"""

from __future__ import annotations

from typing import Any

from ecosystem import moves
from ecosystem.errors import ZapvisorError
from ecosystem.fleetfile import Declared, FleetFileError
from ecosystem.lease import AuthKind
from ecosystem.session import Session

AUTH_FIELDS = frozenset({"auth", "failover"})
"""Changed as `zapvisor failover NAME [on|off] --auth …` changes them."""


def wanted(d: Declared) -> dict[str, Any]:
    """The auth fields the file declares for ``d``."""
    found: dict[str, Any] = {}
    if d.auth is not None:
        found["auth"] = d.auth
    if d.failover is not None:
        found["failover"] = d.failover
    return found


def check(d: Declared, have: Session | None, store_kind: str, where: str) -> None:
    """Refuse the file when ``d`` asks for an auth this fleet cannot give, or for failover
    with an auth that stays in files (declared, or the session's own)."""
    connector = have.connector if have is not None and d.auth is None else d.fields["connector"]
    if d.auth is not None and (have is None or have.auth != d.auth):
        try:
            moves.choose_auth(store_kind, connector, d.auth)
        except ZapvisorError as exc:
            said = str(exc).replace("--auth store", 'auth = "store"')
            raise FleetFileError(f"{where}, line {d.at('auth')}: {d.name}: {said}") from None
    if not d.failover:
        return
    auth = d.auth or (have.auth if have else moves.choose_auth(store_kind, connector, None))
    if auth == AuthKind.LOCAL:
        why = "its auth is local" if d.auth is None else "auth local"
        raise FleetFileError(
            f"{where}, line {d.at('failover')}: {d.name} has failover on but {why}: its "
            "WhatsApp auth is in files on its host, so no other host can take it over: "
            'write auth = "store" (a shared store and the sim connector) or failover = false'
        )


def refusal(have: Session, d: Declared) -> str | None:
    """Why apply cannot make ``d``'s auth change on ``have`` (None: it can)."""
    if d.auth is None or d.auth == have.auth or not have.phone:
        return None
    return (
        f"{d.name} is linked to a phone with its WhatsApp auth {have.auth}: moving it to "
        f'{d.auth} needs a new QR: keep auth = "{have.auth}" in the file, or '
        f"`zapvisor logout {d.name}` and apply again, then pair it again"
    )
