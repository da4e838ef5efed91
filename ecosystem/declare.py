"""The door's declarations: what a fleet file would change (`zapvisor plan -f`), doing
exactly that (`zapvisor apply -f`), and the fleet as such a file (`zapvisor export`).

Unlike an ecosystem file re-applied under PM2 (which restarts every app), only what
differs is touched: a config change is written to the store (runners read their config
from there, no restart), a connector change restarts that session alone, a state change
starts or stops it, and sessions the file does not name are left alone unless pruned.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ecosystem import __version__, fleetfile
from ecosystem.errors import ZapvisorError
from ecosystem.fleet.door import FleetDoor
from ecosystem.fleetfile import Declared, FleetFileError
from ecosystem.models import NewSession, Session, utcnow
from ecosystem.redact import redact_url
from ecosystem.states import DesiredState

RESTARTS_FOR = frozenset({"connector"})
"""Fields a runner reads only when it starts."""


@dataclass
class Step:
    """One change the plan makes."""

    action: str
    """create, change, start, stop, restart or delete."""
    name: str
    host: str
    fields: list[str] = field(default_factory=list)
    """For a change: which fields, each `field: old → new` in ``detail``."""
    detail: list[str] = field(default_factory=list)

    def line(self) -> str:
        sign = {"create": "+", "delete": "-", "change": "~"}.get(self.action, "*")
        text = f"{sign} {self.action} {self.name} (on {self.host})"
        return text + "".join(f"\n      {d}" for d in self.detail)


@dataclass
class Plan:
    steps: list[Step]
    unchanged: list[str]
    left_alone: list[str]
    """Sessions here the file does not name (deleted only with prune)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def empty(self) -> bool:
        return not self.steps


class Declarations(FleetDoor):
    def plan(self, text: str, *, prune: bool = False, where: str = "the file") -> Plan:
        """What applying the fleet file would change, changing nothing."""
        wanted = fleetfile.parse(text, where)
        hosts = set(self.fleet_hosts())
        for d in wanted:
            if d.host is not None and d.host not in hosts:
                raise FleetFileError(
                    f"{where}, line {d.line}: {d.name}.host {d.host!r} is not a host of this "
                    f"fleet ({', '.join(sorted(hosts))})"
                )
        current = {s.name: s for s in self.store.list_sessions()}
        steps: list[Step] = []
        unchanged: list[str] = []
        for d in wanted:
            have = current.get(d.name)
            host = d.host or (have.host if have else self.host_id)
            if have is None:
                steps.append(Step("create", d.name, host, detail=_created(d)))
                continue
            if have.host != host:
                raise FleetFileError(
                    f"{where}, line {d.line}: {d.name} runs on {have.host}, the file puts it "
                    f"on {host}: moving a session between hosts is not supported (back it "
                    "up, restore it there, then delete it here)"
                )
            made = _diff(have, d)
            if made:
                steps.append(made)
            if d.state != have.desired_state:
                verb = "start" if d.state == DesiredState.RUNNING else "stop"
                steps.append(Step(verb, d.name, host))
            elif made and set(made.fields) & RESTARTS_FOR and d.state == DesiredState.RUNNING:
                steps.append(Step("restart", d.name, host, detail=["its runner reads it at start"]))
            if not made and d.state == have.desired_state:
                unchanged.append(d.name)
        named = {d.name for d in wanted}
        others = sorted(n for n in current if n not in named)
        if prune:
            steps.extend(Step("delete", n, current[n].host) for n in others)
        return Plan(steps, unchanged, [] if prune else others)

    def apply_plan(self, plan: Plan, text: str, *, where: str = "the file") -> list[str]:
        """Make exactly ``plan``'s changes (refused when the fleet changed since it was
        made: plan again); one line per step done."""
        again = self.plan(text, prune=any(s.action == "delete" for s in plan.steps), where=where)
        if again.to_json() != plan.to_json():
            raise ZapvisorError("the fleet changed since the plan was made: plan again")
        wanted = {d.name: d for d in fleetfile.parse(text, where)}
        done: list[str] = []
        for step in plan.steps:
            d = wanted.get(step.name)
            if step.action == "create" and d is not None:
                new = NewSession(name=d.name, desired_state=d.state, **d.fields)
                self.create(new, host=step.host)
            elif step.action == "change" and d is not None:
                self.configure(step.name, {k: d.fields[k] for k in step.fields})
            elif step.action == "start":
                self.start(step.name)
            elif step.action == "stop":
                self.stop(step.name)
            elif step.action == "restart":
                self.restart(step.name)
            elif step.action == "delete":
                self.delete(step.name)
            done.append(f"{step.action} {step.name}")
            self.progress(done[-1])
        return done

    def export_fleet(self) -> tuple[str, list[str]]:
        """Every session of the fleet as a fleet file (``plan`` of it changes nothing);
        the environment variables it refers to."""
        rows = [
            {"name": s.name, "host": s.host, "state": s.desired_state}
            | {k: getattr(s, k) for k in fleetfile.FIELDS}
            for s in self.store.list_sessions()
        ]
        header = (
            f"zapvisor fleet file, exported {utcnow():%Y-%m-%d %H:%M} UTC by zapvisor "
            f"{__version__}\n`zapvisor plan -f FILE` shows what applying it would change."
        )
        return fleetfile.dump(rows, header)


def _created(d: Declared) -> list[str]:
    shown = [f"state: {d.state}", f"connector: {d.fields['connector']}"]
    return shown + [f"{k}: {_show(k, v)}" for k, v in d.fields.items()
                    if k != "connector" and v not in ("", None, {})]  # fmt: skip


def _diff(have: Session, d: Declared) -> Step | None:
    changed = [k for k in fleetfile.FIELDS if getattr(have, k) != d.fields[k]]
    if not changed:
        return None
    detail = [f"{k}: {_show(k, getattr(have, k))} → {_show(k, d.fields[k])}" for k in changed]
    return Step("change", d.name, have.host, changed, detail)


def _show(key: str, value: Any) -> str:
    if key == "webhook_url":
        return str(redact_url(value)) if value else "none"
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
