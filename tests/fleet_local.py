"""A fleet on this machine without SSH: hosts are private zapvisor installations (each
its own state dir, port block, host id and supervisord) sharing one real PostgreSQL
database, and each remote host's agent is the real `zapvisor agent --stdio` started as a
local subprocess, its pipes standing in for the SSH channel."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from ecosystem.fleet.links import AgentStreams, HostLinks
from ecosystem.fleet.protocol import MAX_LINE
from ecosystem.orchestrator import Orchestrator
from tests.conftest import ROOT, Env


@dataclass
class LocalFleet:
    dsn: str
    local: Env
    local_id: str
    remotes: dict[str, Env]
    down: set[str] = field(default_factory=set)
    """Hosts that cannot be reached now: opening a link to them fails like a dead sshd."""
    agents: dict[str, list[int]] = field(default_factory=dict)
    """Pids of the agents started for each remote host, oldest first."""
    made: list[Orchestrator] = field(default_factory=list)
    links: list[HostLinks] = field(default_factory=list)

    async def open_agent(self, host: str, timeout: float) -> AgentStreams:
        if host in self.down:
            raise ConnectionRefusedError(f"connect to {host}: Connection refused")
        env = self.remotes[host]
        env.home.parent.mkdir(parents=True, exist_ok=True)
        errlog = (env.home.parent / "agent.err").open("ab")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tui.cli.main",
            "agent",
            "--stdio",
            env=env.vars,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=errlog,
            limit=MAX_LINE,
        )
        errlog.close()
        self.agents.setdefault(host, []).append(proc.pid)
        assert proc.stdin is not None and proc.stdout is not None
        stdin = proc.stdin

        async def close() -> None:
            with contextlib.suppress(OSError, RuntimeError):
                stdin.close()
            try:  # a frozen agent never reads its end of the link: killed after 2 s
                await asyncio.wait_for(proc.wait(), 2)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

        return AgentStreams(proc.stdout, stdin, close)

    def hosts(self) -> list[str]:
        return sorted(self.remotes)

    def orchestrator(self, **settings_fields: object) -> Orchestrator:
        """The control side, on the local host, with links to the remote ones."""
        links = HostLinks(self.open_agent, hosts=self.hosts)
        self.links.append(links)
        settings = self.local.settings(
            database_url=self.dsn, host_id=self.local_id, **settings_fields
        )
        orch = Orchestrator(settings, links=links)
        self.made.append(orch)
        return orch

    def close(self) -> None:
        for orch in self.made:
            orch.close()
        for links in self.links:
            links.close()


def make_fleet(make_env: Callable[..., Env], dsn: str, remotes: int = 1) -> LocalFleet:
    local = make_env(ZAPVISOR_DATABASE_URL=dsn, ZAPVISOR_HOST_ID="host-a")
    others = {}
    for i in range(remotes):
        name = f"host-{chr(ord('b') + i)}"
        others[name] = make_env(ZAPVISOR_DATABASE_URL=dsn, ZAPVISOR_HOST_ID=name)
    return LocalFleet(dsn, local, "host-a", others)
