"""The hosts half of a fleet file's plan: which hosts to add (through the same core
call as `zapvisor hosts add`), which differ from the fleet's record, which to remove
(with prune, and only once they hold no session)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ecosystem.declare_plan import HOST, Step
from ecosystem.errors import ConfigError
from ecosystem.fleet.records import HostRecord, sqlite_refusal
from ecosystem.fleetfile import DeclaredHost, FleetFile, FleetFileError

HOST_FIELDS = ("target", "base_port", "max_sessions", "host_key", "identity", "accepts_failover")
APPLIED_CHANGES = frozenset({"target", "identity", "host_key", "accepts_failover"})
"""Host fields apply changes: the login re-pointed in place (`zapvisor hosts repoint`),
the key trusted (`hosts trust`), failover taken or not (`hosts failover`). The session
ports it refuses: that host's runners hold them."""


def check_store(declared: FleetFile, store_kind: str, home: Path, where: str) -> None:
    """A file with hosts needs a store every host can reach (not SQLite)."""
    if declared.hosts and store_kind == "sqlite":
        first = declared.hosts[0]
        raise ConfigError(f"{where}, line {first.line}: host {first.name}: {sqlite_refusal(home)}")


def _fields(*values: object) -> dict[str, object]:
    return dict(zip(HOST_FIELDS, values, strict=True))


def _have(r: HostRecord, accepts: bool | None) -> dict[str, object]:
    return _fields(r.target, r.base_port, r.max_sessions, r.host_key, r.identity_file, accepts)


def _want(h: DeclaredHost) -> dict[str, object]:
    return _fields(
        h.target, h.base_port, h.max_sessions, h.host_key, h.identity, h.accepts_failover
    )


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value or "none")


def host_steps(
    declared: list[DeclaredHost],
    records: dict[str, HostRecord],
    this_host: str,
    where: str,
    accepts: dict[str, bool] | None = None,
) -> tuple[list[Step], list[str]]:
    """The creates and changes of the file's hosts; the names of those unchanged.
    ``accepts``: accepts_failover of the hosts that have sent a heartbeat (a host that
    has not is not known to differ)."""
    accepts = accepts or {}
    steps: list[Step] = []
    unchanged: list[str] = []
    for h in declared:
        have = records.get(h.name)
        if have is None:
            if h.name == this_host:
                raise FleetFileError(
                    f"{where}, line {h.line}: host {h.name} is this machine (its "
                    "ZAPVISOR_HOST_ID): a fleet file declares the other hosts"
                )
            key = h.host_key or "not in the file: apply asks on a terminal, refuses without"
            detail = [
                f"target: {h.target}",
                f"ports: {h.base_port}-{h.base_port + h.max_sessions - 1}",
                f"host_key: {key}",
            ]
            steps.append(Step("create", h.name, h.name, detail=detail, kind=HOST, at_line=h.line))
            continue
        old, new = _have(have, accepts.get(h.name)), _want(h)
        for key in ("host_key", "accepts_failover"):
            if new[key] is None or old[key] is None:  # not in the file, or not known here
                new[key] = old[key]
        changed = [k for k in HOST_FIELDS if old[k] != new[k]]
        if not changed:
            unchanged.append(h.name)
            continue
        detail = [f"{k}: {_shown(old[k])} → {_shown(new[k])}" for k in changed]
        refused = None
        kept = [k for k in changed if k not in APPLIED_CHANGES]
        if kept:
            refused = (
                f"host {h.name}: {', '.join(kept)} differ from the fleet's record, which apply "
                f"does not change (its runners hold those ports): `zapvisor hosts remove "
                f"{h.name}` (it must hold no session) and apply again, or write the file as "
                "`zapvisor export` does"
            )
        step = Step("change", h.name, h.name, changed, detail, kind=HOST, refused=refused)
        step.at_line = h.line
        steps.append(step)
    return steps, unchanged


def host_removals(
    declared: list[DeclaredHost],
    records: dict[str, HostRecord],
    this_host: str,
    sessions_after: Counter[str],
    prune: bool,
) -> tuple[list[Step], list[str]]:
    """With prune, the hosts the file omits that hold no session once the plan's
    session steps are made; the hosts left alone."""
    named = {h.name for h in declared}
    others = sorted(n for n in records if n not in named and n != this_host)
    if not prune:
        return [], others
    gone = [n for n in others if sessions_after[n] == 0]
    why = ["it holds no session; the machine is left as it is"]
    steps = [Step("remove", n, n, detail=why, kind=HOST) for n in gone]
    return steps, [n for n in others if n not in gone]


AskKey = Callable[[Exception, str], str]
"""Asks the operator to trust a host key met for the first time (UnknownHostKey, where):
the fingerprint trusted."""
Confirm = Callable[[str], bool]
"""Asks the operator a yes/no question (installing zapvisor on a host it adds)."""
