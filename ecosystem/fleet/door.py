"""The door's fleet-wide half: which hosts there are, every host's sessions in one list,
and where a new session goes when no host is named."""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import TYPE_CHECKING, Any

from ecosystem import __version__
from ecosystem.errors import CapacityError, HostNotFound, ZapvisorError
from ecosystem.fleet import codec
from ecosystem.fleet.info import HostFacts
from ecosystem.fleet.routing import CALL_TIMEOUT
from ecosystem.health.model import SessionHealth
from ecosystem.hostview import HostReport
from ecosystem.metrics import host_stats
from ecosystem.names import program_name
from ecosystem.reads import Reads
from ecosystem.session import Session
from ecosystem.supctl import daemon
from ecosystem.supctl.rpc import ProcessInfo
from ecosystem.views import SessionView

if TYPE_CHECKING:
    from ecosystem.doctor import Check

HOST_TIMEOUT = 5.0
"""Seconds a host has to answer a listing or a report before it counts as unreachable."""


class FleetDoor(Reads):
    def fleet_hosts(self) -> list[str]:
        """This host first, then every other host this control side can reach."""
        if self.links is None:
            return [self.host_id]
        return [self.host_id, *(h for h in self.links.hosts() if h != self.host_id)]

    @property
    def is_fleet(self) -> bool:
        return len(self.fleet_hosts()) > 1

    def check_host(self, host: str) -> None:
        known = self.fleet_hosts()
        if host not in known:
            raise HostNotFound(
                f"no host named {host!r} in this fleet (hosts: {', '.join(known)}); "
                "`zapvisor hosts add` adds one"
            )

    def session_rows(
        self, host: str | None = None
    ) -> tuple[list[Session], dict[str, SessionHealth]]:
        """The sessions (of every host of the fleet, or of ``host``) and their health
        records: two store queries, whatever the number of sessions or hosts."""
        if not self.is_fleet:
            return super().session_rows()
        try:
            health = self.store.list_health(host)
        except NotImplementedError:
            health = {}
        return self.store.list_sessions(host), health

    def on_hosts(
        self, hosts: list[str], method: str, result_type: Any, timeout: float = HOST_TIMEOUT
    ) -> dict[str, Any]:
        """``method`` (no arguments) on each of these other hosts at once: its result,
        or the ZapvisorError that says why there is none. A silent host costs
        ``timeout``, once, whatever the number of hosts."""
        links = self.links
        if links is None or not hosts:
            return {}
        import concurrent.futures  # with logging: only when another host is asked

        futures = {host: links.loop.submit(links.within(host, method, timeout)) for host in hosts}
        concurrent.futures.wait(futures.values(), timeout + 1)
        out: dict[str, Any] = {}
        for host, future in futures.items():
            try:
                out[host] = codec.decode(future.result(timeout=0), result_type)
            except ZapvisorError as exc:
                out[host] = exc
            except concurrent.futures.TimeoutError:
                future.cancel()
                out[host] = links.unreachable(host, f"{host} did not answer {method}")
            except Exception as exc:  # an opener's own failure: the host is not reached
                out[host] = links.unreachable(host, f"{host} cannot be reached: {exc!r:.120}")
        return out

    def list_sessions(self, host: str | None = None) -> list[SessionView]:
        """Every session of the fleet (or of ``host``), each with its process as its
        own host's supervisord reports it; a host that does not answer leaves its
        sessions without one, saying so."""
        if not self.is_fleet:
            if host not in (None, self.host_id):
                self.check_host(host or "")
            return super().list_sessions()
        if host is not None:
            self.check_host(host)
        sessions, health = self.session_rows(host)
        hosts = sorted({s.host for s in sessions})
        remote = [h for h in hosts if h != self.host_id]
        # process_table starts a host's supervisord when it is down: more than a report
        tables: dict[str, Any] = self.on_hosts(
            remote, "process_table", dict[str, ProcessInfo], timeout=CALL_TIMEOUT
        )
        if self.host_id in hosts:
            tables[self.host_id] = self.process_table()
        known = set(self.fleet_hosts())
        views = []
        for s in sessions:
            table = tables.get(s.host)
            why = None
            if isinstance(table, ZapvisorError):
                why, table = f"host unreachable: {table}", {}
            elif s.host not in known:
                why, table = f"host {s.host} is not a host of this fleet", {}
            info = (table or {}).get(program_name(s.name))
            views.append(SessionView(s, info, health.get(s.name), unreachable=why))
        return views

    def doctor(self) -> list[Check]:
        """This host's checks, then one per other host of the fleet: does it answer,
        does it run this zapvisor version, is its supervisord up."""
        from ecosystem.doctor import FAIL, OK, WARN, Check

        checks = super().doctor()
        try:
            others = self.fleet_hosts()[1:]
        except ZapvisorError as exc:
            # the fleet's hosts are rows of the store: its own check already says why
            # it does not answer, and doctor must still print every check it has
            checks.append(
                Check(
                    "hosts",
                    WARN,
                    f"the fleet's hosts cannot be listed: {exc}",
                    "fix the store first",
                )
            )
            return checks
        for host, report in self.on_hosts(others, "host_report", HostReport).items():
            name = f"host {host}"
            if not isinstance(report, HostReport):
                checks.append(
                    Check(name, FAIL, str(report), f"is {host} up, and its sshd? then retry")
                )
            elif report.version != __version__:
                checks.append(
                    Check(
                        name,
                        WARN,
                        f"runs zapvisor {report.version}, this is {__version__}: actions "
                        "whose format changed between them are refused",
                        f"`zapvisor hosts upgrade {host}`",
                    )
                )
            elif not report.supervisord_up:
                checks.append(
                    Check(
                        name,
                        WARN,
                        "answers; its supervisord is not running",
                        "any command on one of its sessions starts it",
                    )
                )
            else:
                ms = self.links.reach(host).latency_ms if self.links else None
                took = f" in {ms:.0f} ms" if ms is not None else ""
                checks.append(Check(name, OK, f"answers{took}, zapvisor {report.version}"))
        return checks

    def host_facts(self) -> HostFacts:
        """This machine as a host of the fleet (`zapvisor hosts info`, and what `hosts
        list` asks each host's agent): supervisord brought up when it is down, as any
        command does, so a host the control side looks at is a host that runs."""
        import psutil

        psutil.cpu_percent(interval=None)  # start the CPU sample; the calls below take time
        settings = self.settings
        self.ensure_up()
        store = self.store
        sessions = len(store.list_sessions(settings.host_id))
        registered = False
        with contextlib.suppress(HostNotFound, NotImplementedError):
            registered = store.get_host(settings.host_id).name == settings.host_id
        pid = None
        with contextlib.suppress(ZapvisorError):
            pid = self.sup.pid() if daemon.is_up(self.sup) else None
        return HostFacts(
            host_id=settings.host_id,
            version=__version__,
            store=store.describe(),
            registered=registered,
            sessions=sessions,
            max_sessions=settings.max_sessions,
            base_port=settings.base_port,
            supervisord_pid=pid,
            stats=host_stats(settings.home),
        )

    def place(self, name: str) -> str:
        """The reachable host with the most room for one more session: its share of free
        session slots times its share of free memory, less when its load per core is
        high. This host when it is the only one."""
        hosts = self.fleet_hosts()
        if len(hosts) == 1:
            return self.host_id
        counts = Counter(s.host for s in self.store.list_sessions())
        reports: dict[str, Any] = self.on_hosts(hosts[1:], "host_report", HostReport)
        reports[self.host_id] = self.host_report()
        scored: list[tuple[float, str, str]] = []
        refused: list[str] = []
        for host in hosts:
            report = reports.get(host)
            if not isinstance(report, HostReport):
                refused.append(f"{host}: {report}")
                continue
            free = report.max_sessions - counts[host]
            if free <= 0:
                refused.append(f"{host}: full ({counts[host]}/{report.max_sessions})")
                continue
            score, why = room(report, counts[host])
            scored.append((score, host, why))
        if not scored:
            raise CapacityError(f"no host has room for {name}: " + "; ".join(refused))
        score, best, why = max(scored)
        self.progress(f"placing {name} on {best} ({why})")
        return best


def room(report: HostReport, sessions: int) -> tuple[float, str]:
    """How much room a host has for one more session (0..1), and the figures behind it."""
    slots = (report.max_sessions - sessions) / report.max_sessions
    stats = report.stats
    if stats is None:
        return slots, f"{sessions}/{report.max_sessions} sessions"
    memory = 1.0 - stats.mem_percent / 100
    per_core = stats.load1 / max(stats.cpu_count, 1)
    # A product, not the scarcer of the two: with min(), two hosts short of memory
    # score the same whatever their session counts, and one already full of sessions
    # would tie with an empty one.
    score = slots * memory / (1.0 + max(0.0, per_core - 0.5))
    why = (
        f"{sessions}/{report.max_sessions} sessions, RAM {stats.mem_percent:.0f}% used, "
        f"load {per_core:.2f} per core"
    )
    return score, why
