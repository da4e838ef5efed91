"""The core of `zapvisor hosts list|check|info`: looking at the fleet, changing nothing
but each host's `last_seen` (and its supervisord, started where it was down).

Every host is asked at once, each within LOOK_TIMEOUT: a host that does not answer is
"unreachable" with the reason, and never holds the others up. A host that answers gives
its figures through its agent, on the same SSH connection (the door's links). The local
machine is a host too, looked at without SSH.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ecosystem.doctor import FAIL, OK, WARN, Check
from ecosystem.errors import HostError, HostNotFound, ZapvisorError
from ecosystem.fleet import codec, remote, wheel
from ecosystem.fleet.connect import Endpoint
from ecosystem.fleet.info import HostFacts
from ecosystem.fleet.knownhosts import fingerprint
from ecosystem.fleet.records import HostRecord
from ecosystem.fleet.ssh import SSHPool
from ecosystem.fleet.sshlinks import SSHLinks, ssh_links
from ecosystem.orchestrator import Orchestrator
from ecosystem.session import utcnow

FIGURES = (
    "cpu_percent",
    "cpu_count",
    "load1",
    "mem_percent",
    "mem_used",
    "mem_total",
    "disk_percent",
    "disk_used",
    "disk_total",
    "supervisord_pid",
)
"""What `hosts list --json` shows of each host's own figures (null when unreachable)."""
LOOK_TIMEOUT = 8.0
"""Seconds one host's sshd has to answer `hosts list` (connect and one round trip)."""
INFO_TIMEOUT = remote.COMMAND_TIMEOUT
"""Seconds a host that answers has to report its figures: its agent starts its
supervisord and the sessions meant to run when it finds it down."""


@dataclass
class HostStatus:
    name: str
    target: str
    local: bool
    reachable: bool
    error: str | None
    latency_ms: float | None
    sessions: int
    max_sessions: int
    facts: HostFacts | None
    record: HostRecord | None
    last_seen: datetime | None

    @property
    def version(self) -> str | None:
        if self.facts is not None:
            return self.facts.version
        return self.record.version if self.record is not None else None

    def to_json(self) -> dict[str, Any]:
        figures = self.facts.to_json() if self.facts is not None else {}
        return {
            "name": self.name,
            "target": self.target,
            "local": self.local,
            "reachable": self.reachable,
            "error": self.error,
            "latency_ms": self.latency_ms,
            "version": self.version,
            "same_version": self.version == wheel.installed_version(),
            "sessions": self.sessions,
            "max_sessions": self.max_sessions,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "added_at": self.record.added_at.isoformat() if self.record else None,
            "added_by": self.record.added_by if self.record else None,
        } | {key: figures.get(key) for key in FIGURES}


class HostsView:
    def __init__(self, orch: Orchestrator) -> None:
        self.orch = orch

    def look(self, *, timeout: float = LOOK_TIMEOUT) -> list[HostStatus]:
        """The local host first, then every host of the fleet, each looked at now."""
        store = self.orch.store
        records = store.list_hosts() if self.orch.settings.store_kind != "sqlite" else []
        counts: dict[str, int] = {}
        for session in store.list_sessions():
            counts[session.host] = counts.get(session.host, 0) + 1
        local_id = self.orch.settings.host_id
        remote_records = [r for r in records if r.name != local_id]
        self.orch.paths.ensure()
        looked: list[HostStatus] = []
        with self._links() as links:
            # every other host at once on the links' loop, this one meanwhile here (it
            # may start supervisord); each host is bounded by its own timeouts
            asked = links.loop.submit(self._look_all(links, remote_records, counts, timeout))
            try:
                facts = self.orch.host_facts()
            finally:
                looked = asked.result()
        here = HostStatus(
            name=local_id,
            target="local",
            local=True,
            reachable=True,
            error=None,
            latency_ms=None,
            sessions=counts.get(local_id, 0),
            max_sessions=self.orch.settings.max_sessions,
            facts=facts,
            record=next((r for r in records if r.name == local_id), None),
            last_seen=utcnow(),
        )
        for status in looked:
            if status.reachable:
                status.last_seen = utcnow()
                with contextlib.suppress(HostNotFound):  # removed meanwhile by someone else
                    store.update_host(
                        status.name, {"last_seen": status.last_seen, "version": status.version}
                    )
        return [here, *looked]

    @contextlib.contextmanager
    def _links(self) -> Iterator[SSHLinks]:
        """The door's links to the other hosts, or links of this look's own."""
        links = self.orch.links
        if isinstance(links, SSHLinks):
            yield links
            return
        own = ssh_links(self.orch.paths, lambda: self.orch.store, self.orch.host_id)
        try:
            yield own
        finally:
            own.close()

    async def _look_all(
        self, links: SSHLinks, records: list[HostRecord], counts: dict[str, int], timeout: float
    ) -> list[HostStatus]:
        return list(await asyncio.gather(*(self._look(links, r, counts, timeout) for r in records)))

    async def _look(
        self, links: SSHLinks, record: HostRecord, counts: dict[str, int], timeout: float
    ) -> HostStatus:
        status = HostStatus(
            name=record.name,
            target=record.target,
            local=False,
            reachable=False,
            error=None,
            latency_ms=None,
            sessions=counts.get(record.name, 0),
            max_sessions=record.max_sessions,
            facts=None,
            record=record,
            last_seen=record.last_seen,
        )
        endpoint = Endpoint.of(record)
        try:
            # reachable = its sshd answers, within ``timeout``: a silent host never
            # holds the listing longer than that
            ping = links.connections().ping(endpoint, timeout=timeout)
            latency = await asyncio.wait_for(ping, timeout)
        except TimeoutError:
            status.error = f"no answer within {timeout:g} s"
            return status
        except HostError as exc:
            status.error = str(exc)
            return status
        status.reachable, status.latency_ms = True, round(latency * 1000, 1)
        try:
            # its agent, on the same connection; it may have to start its supervisord
            # and sessions first: give it time
            data = await links.acall(record.name, "host_facts", {}, timeout=INFO_TIMEOUT)
            status.facts = codec.decode(data, HostFacts)
        except ZapvisorError as exc:
            status.error = str(exc)
        except ValueError as exc:
            status.error = f"answered in a shape this version does not read ({exc})"
        return status

    def check(self, name: str) -> list[Check]:
        """`zapvisor hosts check NAME`: the host's own doctor, run there over SSH,
        after what the control side checks itself (SSH, host key, version)."""
        if name == self.orch.settings.host_id:
            return self.orch.doctor()
        record = self.orch.store.get_host(name)
        self.orch.paths.ensure()
        return asyncio.run(self._check(record))

    async def _check(self, record: HostRecord) -> list[Check]:
        pool = SSHPool(self.orch.paths)
        endpoint = Endpoint.of(record)
        try:
            latency = await pool.ping(endpoint)
            conn = await pool.connection(endpoint)
            key = conn.get_server_host_key()
            checks = [
                Check(
                    "ssh",
                    OK,
                    f"{record.target} answers in {latency * 1000:.0f} ms, host key "
                    f"{fingerprint(key) if key else '?'}",
                )
            ]
            found = await remote.probe(pool, endpoint)
            here = wheel.installed_version()
            if found.managed_version is None:
                checks.append(
                    Check(
                        "zapvisor",
                        FAIL,
                        f"not installed in {found.root}",
                        f"`zapvisor hosts upgrade {record.name}`",
                    )
                )
                return checks
            if found.managed_version != here:
                checks.append(
                    Check(
                        "zapvisor",
                        WARN,
                        f"{found.managed_version} there, {here} here",
                        f"`zapvisor hosts upgrade {record.name}`",
                    )
                )
            else:
                checks.append(Check("zapvisor", OK, f"{here}, as here"))
            report = await remote.zapvisor_json(
                pool, endpoint, record.zapvisor_path, ["doctor"], ok_codes=(0, 1)
            )
            for item in report.get("checks", []):
                checks.append(
                    Check(
                        str(item.get("name", "?")),
                        str(item.get("level", FAIL)),
                        str(item.get("detail", "")),
                        str(item.get("fix", "")),
                    )
                )
            return checks
        finally:
            await pool.close()
