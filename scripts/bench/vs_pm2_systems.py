"""The three systems scripts/bench/vs_pm2.py compares, behind one interface.

Each manages sessions named ``fill-NNN`` (the N already present) and probes added and
removed one at a time. Every action an operator would type is a real command: the
`zapvisor` console script, the `pm2` CLI; the plain supervisord is driven over XML-RPC
in-process (what a script would do), with the same small asyncio worker PM2 runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ecosystem import apitoken, runner_client
from ecosystem.errors import ZapvisorError
from ecosystem.models import NewSession
from ecosystem.orchestrator import Orchestrator
from ecosystem.ports import busy_ports
from ecosystem.settings import make_settings
from ecosystem.supctl import daemon
from ecosystem.supctl.rpc import Supervisor, SupervisorDown
from scripts.bench import vs_pm2_probe as probe

HERE = Path(__file__).resolve().parent
WORKER = HERE / "health_worker.py"
BIN = Path(sys.executable).parent
PM2_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "zapvisor-bench"
PM2_VERSION = "7"

Started = subprocess.Popen[bytes] | None


def clean_env() -> dict[str, str]:
    """The caller's environment without anything that would point a system elsewhere."""
    drop = ("ZAPVISOR_", "SUPABASE_", "BASE_PORT", "MAX_SESSIONS", "PM2_")
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


class PM2(System):
    label = "PM2"

    def __init__(self, root: Path, base: int, size: int) -> None:
        super().__init__(root, base, size)
        self.pm2_home = root / "pm2home"
        self.pm2 = str(install_pm2())

    def env(self) -> dict[str, str]:
        return clean_env() | {"PM2_HOME": str(self.pm2_home)}

    def _app(self, name: str, port: int) -> dict[str, Any]:
        return {
            "name": name,
            "script": str(WORKER),
            "interpreter": sys.executable,
            "args": ["--port", str(port)],
        }

    def setup(self) -> None:
        self.run(self.pm2, "ping")

    def fill(self, count: int) -> None:
        apps = []
        for i in range(len(self.sessions), count):
            name, port = fill_name(i), self.next_port()
            self.sessions[name] = port
            apps.append(self._app(name, port))
        if apps:
            path = self.root / "fill.json"
            path.write_text(json.dumps({"apps": apps}))
            self.run(self.pm2, "start", str(path))
        probe.wait_all_healthy(self.sessions.values(), time.monotonic() + 600)

    def add(self, name: str, port: int) -> Started:
        self.sessions[name] = port
        return self.spawn(
            self.pm2,
            "start",
            str(WORKER),
            "--name",
            name,
            "--interpreter",
            sys.executable,
            "--",
            "--port",
            str(port),
        )

    def restart(self, name: str) -> Started:
        return self.spawn(self.pm2, "restart", name)

    def list_command(self) -> list[str]:
        return [self.pm2, "jlist"]

    def list_count(self, out: bytes) -> int:
        return len(json.loads(out))

    def delete(self, name: str) -> None:
        self.run(self.pm2, "delete", name)
        del self.sessions[name]

    def stop_all(self) -> Started:
        self.run(self.pm2, "save")  # what `pm2 resurrect` (its boot) starts from
        return self.spawn(self.pm2, "kill")

    def boot(self, mode: str) -> Started:
        return self.spawn(self.pm2, "resurrect")

    def manager_pids(self) -> list[int]:
        try:
            return [int((self.pm2_home / "pm2.pid").read_text().strip())]
        except (OSError, ValueError):
            return []

    def worker_pids(self) -> list[int]:
        out = self.run(self.pm2, "jlist").stdout
        return [int(a["pid"]) for a in json.loads(out) if a.get("pid")]

    def close(self) -> None:
        self.run(self.pm2, "kill")


def install_pm2() -> Path:
    """PM2 from npm into a cache folder, once."""
    pm2 = PM2_CACHE / "pm2" / "node_modules" / ".bin" / "pm2"
    if pm2.exists():
        return pm2
    if shutil.which("npm") is None:
        raise SystemExit("npm is needed to install PM2 (apt-get install nodejs npm)")
    print(f"installing PM2 {PM2_VERSION} into {pm2.parents[2]} …", flush=True)
    subprocess.run(
        [
            "npm",
            "install",
            "--prefix",
            str(pm2.parents[2]),
            f"pm2@{PM2_VERSION}",
            "--no-audit",
            "--no-fund",
        ],
        check=True,
        capture_output=True,
    )
    return pm2


class PlainSupervisord(System):
    label = "supervisord"

    def __init__(self, root: Path, base: int, size: int) -> None:
        super().__init__(root, base, size)
        self.conf = root / "supervisord.conf"
        self.sock = root / "s.sock"
        self.client = Supervisor(self.sock, "bench", "bench", timeout=300)

    def _write(self) -> None:
        lines = [
            f"[unix_http_server]\nfile={self.sock}\nchmod=0700\nusername=bench\npassword=bench\n",
            f"[supervisord]\nlogfile={self.root}/supervisord.log\npidfile={self.root}/sd.pid\n"
            f"childlogdir={self.root}\nminfds=4096\n",
            f"[supervisorctl]\nserverurl=unix://{self.sock}\nusername=bench\npassword=bench\n",
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n",
        ]
        for name, port in sorted(self.sessions.items()):
            lines.append(
                f"[program:{name}]\ncommand={sys.executable} {WORKER} --port {port}\n"
                f"autostart=true\nautorestart=true\nstartsecs=1\nstopwaitsecs=10\n"
                f"stdout_logfile={self.root}/{name}.log\nredirect_stderr=true\n"
            )
        self.conf.write_text("\n".join(lines))

    def _start_daemon(self) -> None:
        self._write()
        subprocess.run(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf)],
            env=self.env(),
            cwd=self.root,
            check=True,
        )

    def setup(self) -> None:
        self._start_daemon()
        probe.wait_until(lambda: daemon.is_up(self.client), time.monotonic() + 60, 0.05)

    def fill(self, count: int) -> None:
        for i in range(len(self.sessions), count):
            self.sessions[fill_name(i)] = self.next_port()
        self._write()
        added, _changed, _removed = self.client.reload_config()
        for program in added:
            self.client.add_group(program)
        probe.wait_all_healthy(self.sessions.values(), time.monotonic() + 600)

    def add(self, name: str, port: int) -> Started:
        self.sessions[name] = port
        self._write()
        self.client.reload_config()
        self.client.add_group(name)
        return None

    def restart(self, name: str) -> Started:
        self.client.stop(name, wait=True)
        self.client.start(name, wait=False)
        return None

    def list_command(self) -> list[str]:
        return [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.conf), "status"]

    def list_count(self, out: bytes) -> int:
        return len(out.decode().splitlines())

    def delete(self, name: str) -> None:
        self.client.stop(name, wait=True)
        self.client.remove_group(name)
        del self.sessions[name]
        self._write()
        self.client.reload_config()

    def stop_all(self) -> Started:
        pid = self.client.pid()
        self.client.stop_all()
        self.client.shutdown()
        probe.wait_until(lambda: not _alive(pid), time.monotonic() + 300, 0.01)
        return None

    def boot(self, mode: str) -> Started:
        self._start_daemon()
        return None

    def manager_pids(self) -> list[int]:
        return [self.client.pid()]

    def worker_pids(self) -> list[int]:
        infos = self.client.all_process_info()
        return [i.pid for i in infos.values() if i.pid]

    def close(self) -> None:
        if daemon.is_up(self.client):
            self.stop_all()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
