"""The door's declarations: what a fleet file would change (`zapvisor plan -f`), doing
exactly that (`zapvisor apply -f`), and the fleet as such a file (`zapvisor export`).

Unlike an ecosystem file re-applied under PM2 (which restarts every app), only what
differs is touched: a config change is written to the store (runners read their config
from there, no restart), a connector change restarts that session alone, a state change
starts or stops it, and sessions the file does not name are left alone unless pruned.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from ecosystem import __version__
from ecosystem.errors import StoreUnsupported, ZapvisorError
from ecosystem.fleet.door import FleetDoor
from ecosystem.lease import AuthKind
from ecosystem.models import NewSession
from ecosystem.redact import redact_url
from ecosystem.session import Session, utcnow
from ecosystem.states import DesiredState

if TYPE_CHECKING:
    from ecosystem.declare_hosts import AskKey, Confirm
    from ecosystem.declare_plan import Plan, Step
    from ecosystem.fleet.admin import HostsAdmin
    from ecosystem.fleet.records import HostRecord
    from ecosystem.fleetfile import Declared, DeclaredHost, FleetFile
    from ecosystem.orchestrator import Orchestrator

# The fleet file's parser, its plan's steps and their checks are imported by the methods
# that use them: every command opens this door, and only plan, apply and export need them.

__all__ = ["Declarations"]

RESTARTS_FOR = frozenset({"connector", "auth"})
"""Fields a runner reads only when it starts."""


def move_step(d: Declared, have: Session, to: str) -> Step:
    """A session the file puts on another host: apply moves it as `zapvisor move` does
    (same phone, no QR), which needs its WhatsApp auth in the store; with local auth the
    step is refused, and with it the whole plan."""
    from ecosystem.declare_plan import Step

    why = None
    if have.auth != AuthKind.STORE:
        why = (
            f"{d.name} runs on {have.host}, the file puts it on {to}, but its WhatsApp auth "
            f"is in files on {have.host} (auth local) and cannot move without a new QR: put "
            f"it back on {have.host} in the file, or `zapvisor delete {d.name}` and apply "
            f"again to create it on {to} (it must be paired again)"
        )
    detail = [f"line {d.line}"]
    return Step("move", d.name, to, detail=detail, from_host=have.host, refused=why, at_line=d.line)


class Declarations(FleetDoor):
    def plan(self, text: str, *, prune: bool = False, where: str = "the file") -> Plan:
        """What applying the fleet file would change, changing nothing."""
        from ecosystem import declare_auth, declare_hosts, fleetfile
        from ecosystem.declare_plan import Plan, Step
        from ecosystem.fleetfile import FleetFileError

        declared = fleetfile.parse(text, where)
        declare_hosts.check_store(declared, self.settings.store_kind, self.paths.home, where)
        records = self._host_records() if declared.hosts is not None else {}
        host_steps, hosts_unchanged = declare_hosts.host_steps(
            declared.hosts or [], records, self.host_id, where, self._accepts() if records else {}
        )
        hosts = set(self.fleet_hosts()) | {h.name for h in declared.hosts or []}
        for d in declared.sessions:
            if d.host is not None and d.host not in hosts:
                raise FleetFileError(
                    f"{where}, line {d.line}: {d.name}.host {d.host!r} is not a host of this "
                    f"fleet ({', '.join(sorted(hosts))})"
                )
        current = {s.name: s for s in self.store.list_sessions()}
        for d in declared.sessions:
            declare_auth.check(d, current.get(d.name), self.store.kind, where)
        steps, unchanged = self._session_steps(declared, current)
        named = {d.name for d in declared.sessions}
        others = sorted(n for n in current if n not in named)
        if prune:
            steps.extend(Step("delete", n, current[n].host) for n in others)
        after = Counter(s.host for n, s in current.items() if n in named or not prune)
        after.update(s.host for s in steps if s.action == "create")
        removals, hosts_left = declare_hosts.host_removals(
            declared.hosts or [], records, self.host_id, after, prune and declared.hosts is not None
        )
        if declared.hosts is None:
            hosts_left = []
        return Plan(
            host_steps + steps + removals,
            unchanged,
            [] if prune else others,
            hosts_unchanged,
            hosts_left,
        )

    def _host_records(self) -> dict[str, HostRecord]:
        try:
            return {h.name: h for h in self.store.list_hosts()}
        except StoreUnsupported:
            return {}

    def _accepts(self) -> dict[str, bool]:
        """accepts_failover of the hosts that have sent a heartbeat."""
        try:
            beats = self.store.fleet_state().hosts
        except StoreUnsupported:
            return {}
        return {h.host: h.accepts_failover for h in beats if h.beat_at is not None}

    def _session_steps(
        self, declared: FleetFile, current: dict[str, Session]
    ) -> tuple[list[Step], list[str]]:
        from ecosystem import declare_auth
        from ecosystem.declare_plan import Step

        steps: list[Step] = []
        unchanged: list[str] = []
        for d in declared.sessions:
            have = current.get(d.name)
            host = d.host or (have.host if have else self.host_id)
            if have is None:
                steps.append(Step("create", d.name, host, detail=_created(d), at_line=d.line))
                continue
            if have.host != host:
                moved = move_step(d, have, host)
                steps.append(moved)
                if moved.refused:
                    continue
                have = have.model_copy(update={"host": host})  # its other steps run there
            made = _diff(have, d)
            if made and set(made.fields) & declare_auth.AUTH_FIELDS:
                made.refused = declare_auth.refusal(have, d)
                made.at_line = d.at("auth") if made.refused else d.line
            if made:
                steps.append(made)
            if d.state != have.desired_state:
                verb = "start" if d.state == DesiredState.RUNNING else "stop"
                steps.append(Step(verb, d.name, host))
            elif (
                made
                and not made.refused
                and set(made.fields) & RESTARTS_FOR
                and d.state == DesiredState.RUNNING
            ):
                steps.append(Step("restart", d.name, host, detail=["its runner reads it at start"]))
            if not made and d.state == have.desired_state:
                unchanged.append(d.name)
        return steps, unchanged

    def apply_plan(
        self,
        plan: Plan,
        text: str,
        *,
        where: str = "the file",
        ask_key: AskKey | None = None,
        install: bool = False,
        confirm: Confirm | None = None,
    ) -> list[str]:
        """Make exactly ``plan``'s changes (refused when the fleet changed since it was
        made: plan again; refused whole, changing nothing, when a step is one apply
        cannot make); one line per step done. Hosts are added as `zapvisor hosts add`
        adds them: ``ask_key`` asks about a host key the file does not pin (without it
        such a host is refused), ``install``/``confirm`` answer installing zapvisor."""
        from ecosystem import fleetfile
        from ecosystem.declare_plan import HOST

        prune = any(s.action in ("delete", "remove") for s in plan.steps)
        again = self.plan(text, prune=prune, where=where)
        if again.to_json() != plan.to_json():
            raise ZapvisorError("the fleet changed since the plan was made: plan again")
        declared = fleetfile.parse(text, where)
        hosts = {h.name: h for h in declared.hosts or []}
        _refuse(plan, hosts, where, ask_key is not None)
        wanted = {d.name: d for d in declared.sessions}
        done: list[str] = []
        for step in plan.steps:
            if step.kind == HOST:
                self._apply_host(step, hosts.get(step.name), ask_key, install, confirm)
                done.append(f"{step.action} host {step.name}")
            else:
                self._apply_session(step, wanted.get(step.name))
                done.append(f"{step.action} {step.name}")
            self.progress(done[-1])
        return done

    def _apply_session(self, step: Step, d: Declared | None) -> None:
        from ecosystem import declare_auth

        orch = cast("Orchestrator", self)
        if step.action == "create" and d is not None:
            on = True if d.failover is None else d.failover
            new = NewSession(
                name=d.name, desired_state=d.state, auth=d.auth, failover=on, **d.fields
            )
            self.create(new, host=step.host)
        elif step.action == "change" and d is not None:
            plain = {k: d.fields[k] for k in step.fields if k in d.fields}
            if plain:
                self.configure(step.name, plain)
            if set(step.fields) & declare_auth.AUTH_FIELDS:  # as `zapvisor failover` does
                auth = d.auth if "auth" in step.fields else None
                failover = d.failover if "failover" in step.fields else None
                # the plan's own restart step follows when the runner must read it
                orch.set_failover(step.name, auth=auth, failover=failover, restart=False)
        elif step.action == "start":
            self.start(step.name)
        elif step.action == "stop":
            self.stop(step.name)
        elif step.action == "restart":
            self.restart(step.name)
        elif step.action == "delete":
            self.delete(step.name)
        elif step.action == "move":  # refused before any step when its auth is local
            orch.move(step.name, step.host)
        else:
            raise ZapvisorError(f"{step.action} {step.name}: apply cannot make this step")

    def _hosts_admin(self) -> HostsAdmin:
        from ecosystem.fleet.admin import HostsAdmin
        from ecosystem.orchestrator import Orchestrator

        return HostsAdmin(cast(Orchestrator, self))

    def _apply_host(
        self,
        step: Step,
        h: DeclaredHost | None,
        ask_key: AskKey | None,
        install: bool,
        confirm: Confirm | None,
    ) -> None:
        from ecosystem.fleet.admin import AddRequest
        from ecosystem.fleet.knownhosts import UnknownHostKey

        admin = self._hosts_admin()
        if step.action == "remove":
            admin.remove(step.name)
        elif step.action == "change" and h is not None:  # declare_hosts.APPLIED_CHANGES
            if {"target", "identity"} & set(step.fields):
                admin.repoint(h.name, f"{h.user}@{h.address}", h.ssh_port, h.identity, h.host_key)
            if "host_key" in step.fields and h.host_key:
                admin.trust(step.name, h.host_key)
            on = h.accepts_failover
            switch = "accepts_failover" in step.fields and on is not None
            if switch and not admin.set_accepts_failover(h.name, bool(on)):
                self.progress(f"{h.name} says so at its monitor's next check")
        elif step.action == "create" and h is not None:
            req = AddRequest(
                name=h.name,
                target=f"{h.user}@{h.address}",
                port=h.ssh_port,
                identity_file=h.identity,
                base_port=h.base_port,
                max_sessions=h.max_sessions,
                host_key=h.host_key,
                install=install,
            )
            try:
                admin.add(req, confirm=confirm)
            except UnknownHostKey as exc:
                if ask_key is None:
                    raise
                admin.add(replace(req, host_key=ask_key(exc, h.target)), confirm=confirm)
        self._reread_hosts()

    def _reread_hosts(self) -> None:
        """The fleet's host names are cached for a few seconds: a host just added must
        be one for the sessions the same apply creates there."""
        from ecosystem.fleet.sshlinks import StoreHosts

        hosts = self.links.hosts if self.links is not None else None
        if isinstance(hosts, StoreHosts):
            hosts.expire()

    def export_fleet(self) -> tuple[str, list[str]]:
        """The fleet's hosts and sessions as a fleet file (``plan`` of it changes
        nothing); the environment variables it refers to."""
        from ecosystem import fleetfile, fleetfile_write

        rows = [
            {"name": s.name, "host": s.host, "state": s.desired_state}
            | {"auth": s.auth, "failover": s.failover}
            | {k: getattr(s, k) for k in fleetfile.FIELDS}
            for s in self.store.list_sessions()
        ]
        hosts = self._host_records()
        accepts = self._accepts() if hosts else {}
        header = (
            f"zapvisor fleet file, exported {utcnow():%Y-%m-%d %H:%M} UTC by zapvisor "
            f"{__version__}\n`zapvisor plan -f FILE` shows what applying it would change."
        )
        return fleetfile_write.dump(rows, header, list(hosts.values()), accepts)


def _refuse(plan: Plan, hosts: dict[str, DeclaredHost], where: str, can_ask: bool) -> None:
    """Refuse, before any step, a plan apply cannot make whole."""
    from ecosystem.declare_plan import HOST
    from ecosystem.fleetfile import FleetFileError

    refused = plan.refused
    if refused:
        more = f" (and {len(refused) - 1} more step(s) apply refuses)" if len(refused) > 1 else ""
        at = f"{where}, line {refused[0].at_line}" if refused[0].at_line else where
        raise FleetFileError(f"{at}: {refused[0].refused}{more}")
    for step in plan.steps:
        h = hosts.get(step.name) if step.kind == HOST else None
        if step.action == "create" and h is not None and h.host_key is None and not can_ask:
            raise FleetFileError(
                f"{where}, line {h.line}: host {h.name} has no host_key: without a terminal "
                "a host is added only with its SSH key's fingerprint in the file "
                '(host_key = "SHA256:…", as `ssh-keygen -lf '
                "/etc/ssh/ssh_host_ed25519_key.pub` prints on it); nothing done"
            )


def _created(d: Declared) -> list[str]:
    from ecosystem import declare_auth

    shown = [f"state: {d.state}", f"connector: {d.fields['connector']}"]
    shown += [f"{k}: {_show(k, v)}" for k, v in declare_auth.wanted(d).items()]
    return shown + [f"{k}: {_show(k, v)}" for k, v in d.fields.items()
                    if k != "connector" and v not in ("", None, {})]  # fmt: skip


def _diff(have: Session, d: Declared) -> Step | None:
    from ecosystem import declare_auth, fleetfile
    from ecosystem.declare_plan import Step

    changed = [k for k in fleetfile.FIELDS if getattr(have, k) != d.fields[k]]
    detail = [f"{k}: {_show(k, getattr(have, k))} → {_show(k, d.fields[k])}" for k in changed]
    for key, want in declare_auth.wanted(d).items():
        if want != getattr(have, key):
            changed.append(key)
            detail.append(f"{key}: {_show(key, getattr(have, key))} → {_show(key, want)}")
    if not changed:
        return None
    return Step("change", d.name, have.host, changed, detail, at_line=d.line)


def _show(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if key == "auth":
        return str(value)
    if key == "webhook_url":
        return str(redact_url(value)) if value else "none"
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
