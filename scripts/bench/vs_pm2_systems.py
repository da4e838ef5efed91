"""The three systems scripts/bench/vs_pm2.py compares, behind one interface (the
base and zapvisor here; PM2 and the plain supervisord in vs_pm2_others.py).

Each manages sessions named ``fill-NNN`` (the N already present) and probes added and
removed one at a time. Every action an operator would type is a real command: the
`zapvisor` console script, the `pm2` CLI; the plain supervisord is driven over XML-RPC
in-process (what a script would do), with the same small asyncio worker PM2 runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

from ecosystem import apitoken, runner_client
from ecosystem.errors import ZapvisorError
from ecosystem.models import NewSession
from ecosystem.orchestrator import Orchestrator
from ecosystem.ports import busy_ports
from ecosystem.settings import make_settings
from ecosystem.supctl import daemon
from ecosystem.supctl.rpc import Supervisor, SupervisorDown

HERE = Path(__file__).resolve().parent
WORKER = HERE / "health_worker.py"
BIN = Path(sys.executable).parent

Started = subprocess.Popen[bytes] | None


def clean_env() -> dict[str, str]:
    """The caller's environment without anything that would point a system elsewhere,
    nor PYTHONDONTWRITEBYTECODE: every Python process would compile its modules again at
    each start, which no deployment does."""
    drop: tuple[str, ...] = ("ZAPVISOR_", "SUPABASE_", "BASE_PORT", "MAX_SESSIONS", "PM2_")
    drop += ("PYTHONDONTWRITEBYTECODE",)
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def fill_name(i: int) -> str:
    return f"fill-{i:03d}"


class System:
    label = "?"

    def __init__(self, root: Path, base: int, size: int) -> None:
        self.root = root
        self.base = base
        self.size = size
        self.sessions: dict[str, int] = {}
        root.mkdir(parents=True, exist_ok=True)

    def next_port(self) -> int:
        taken = set(self.sessions.values())
        return next(p for p in range(self.base, self.base + self.size) if p not in taken)

    def run(self, *cmd: str, timeout: float = 600) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            list(cmd), env=self.env(), cwd=self.root, capture_output=True, timeout=timeout
        )

    def spawn(self, *cmd: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            list(cmd),
            env=self.env(),
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def env(self) -> dict[str, str]:
        return clean_env()

    # what each system implements
    def setup(self) -> None: ...
    def fill(self, count: int) -> None: ...
    def add(self, name: str, port: int) -> Started: ...
    def restart(self, name: str) -> Started: ...
    def list_command(self) -> list[str]:
        return []

    def list_count(self, out: bytes) -> int:
        return -1

    def delete(self, name: str) -> None: ...
    def stop_all(self) -> Started: ...
    def boot(self, mode: str) -> Started: ...
    def manager_pids(self) -> list[int]:
        return []

    def worker_pids(self) -> list[int]:
        return []

    def close(self) -> None: ...


class Zapvisor(System):
    label = "zapvisor"

    def __init__(self, root: Path, base: int, size: int) -> None:
        super().__init__(root, base, size)
        self.home = root / "home"
        self.settings = make_settings(
            home=self.home, base_port=base, max_sessions=size, start_timeout=120
        )
        self.orch = Orchestrator(self.settings, actor="bench")
        self.zv = str(BIN / "zapvisor")
        self._serve: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        return clean_env() | {
            "ZAPVISOR_HOME": str(self.home),
            "BASE_PORT": str(self.base),
            "MAX_SESSIONS": str(self.size),
            "ZAPVISOR_START_TIMEOUT": "120",
        }

    def setup(self) -> None:
        self.orch.apply()

    def fill(self, count: int) -> None:
        """Insert the missing sessions as `create` would, then one apply starts them."""
        s, store = self.settings, self.orch.store
        busy = busy_ports(self.orch.ports, s.bind)
        for i in range(len(self.sessions), count):
            token = apitoken.new_token()
            session = store.create_session(
                NewSession(name=fill_name(i), connector="sim"),
                host=s.host_id,
                ports=self.orch.ports,
                exclude_ports=busy,
                max_sessions=s.max_sessions,
                actor="bench",
                api_token_hash=apitoken.hash_token(token),
            )
            apitoken.save_token(self.orch.paths, session.name, token)
            self.sessions[session.name] = session.port
        self.orch.apply()

    def add(self, name: str, port: int) -> Started:
        self.sessions[name] = port
        return self.spawn(self.zv, "create", name, "--connector", "sim")

    def restart(self, name: str) -> Started:
        return self.spawn(self.zv, "restart", name)

    def list_command(self) -> list[str]:
        return [self.zv, "list", "--json"]

    def list_count(self, out: bytes) -> int:
        return len(json.loads(out))

    def delete(self, name: str) -> None:
        self.orch.delete(name, purge=True)
        del self.sessions[name]

    def scan_all(self) -> int:
        """The simulated phone scans every session waiting for one; returns how many."""
        scanned = 0
        for name, port in self.sessions.items():
            token = apitoken.read_token(self.orch.paths, name)
            try:
                status, _ = runner_client.call(
                    self.settings.bind, port, "/sim/scan", method="POST", token=token, timeout=10
                )
            except ZapvisorError as exc:
                print(f"  {name}: {exc}")
                continue
            scanned += status == 200
        return scanned

    def add_connector(self, count: int, connector: str, prefix: str) -> list[str]:
        s, store = self.settings, self.orch.store
        names = []
        for i in range(count):
            token = apitoken.new_token()
            session = store.create_session(
                NewSession(name=f"{prefix}-{i:03d}", connector=connector),
                host=s.host_id,
                ports=self.orch.ports,
                exclude_ports=busy_ports(self.orch.ports, s.bind),
                max_sessions=s.max_sessions,
                actor="bench",
                api_token_hash=apitoken.hash_token(token),
            )
            apitoken.save_token(self.orch.paths, session.name, token)
            names.append(session.name)
        self.orch.apply()
        return names

    def stop_all(self) -> Started:
        return self.spawn(self.zv, "shutdown")

    def boot(self, mode: str) -> Started:
        if mode == "serve":
            self._serve = self.spawn(self.zv, "serve")
            return None
        return self.spawn(self.zv, "apply")

    def _sup(self) -> Supervisor:
        return daemon.client(self.orch.paths, timeout=120)

    def manager_pids(self) -> list[int]:
        sup = self._sup()
        pids = [sup.pid()]
        monitor = sup.process_info("zapvisor-health")
        if monitor is not None and monitor.pid:
            pids.append(monitor.pid)
        return pids

    def worker_pids(self, names: set[str] | None = None) -> list[int]:
        wanted = {f"wa-{n}" for n in (names or self.sessions)}
        infos = self._sup().all_process_info()
        return [i.pid for p, i in infos.items() if p in wanted and i.pid]

    def close(self) -> None:
        with contextlib.suppress(SupervisorDown):
            daemon.shutdown(self.orch.paths, self._sup(), timeout=180)
        if self._serve is not None:
            self._serve.wait(timeout=60)
        self.orch.close()
