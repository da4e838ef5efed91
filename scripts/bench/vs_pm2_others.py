"""The two systems scripts/bench/vs_pm2.py compares zapvisor with: PM2 (its `pm2`
CLI, installed from npm into a cache folder) and a plain supervisord driven over
XML-RPC in-process, both running the same small asyncio worker (health_worker.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ecosystem.supctl import daemon
from ecosystem.supctl.rpc import Supervisor
from scripts.bench import vs_pm2_probe as probe
from scripts.bench.vs_pm2_systems import WORKER, Started, System, clean_env, fill_name

PM2_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "zapvisor-bench"
PM2_VERSION = "7"


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
