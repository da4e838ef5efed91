"""A fleet of 4 hosts x 50 sim sessions: the cost of one terminal-app refresh tick, a
create → /health on another host beside one on this host, and how long a host that
stops answering takes to show as unreachable.

    .venv/bin/python scripts/bench/fleet_bench.py [--hosts 4] [--sessions 50] [--ssh]

Each host is a private zapvisor installation (state dir, port block, host id, its own
supervisord) sharing one real PostgreSQL started here. By default the other hosts are
reached through the real `zapvisor agent --stdio` on local pipes (what the link costs
without the SSH transport) and "stops answering" is its agent frozen. With --ssh (needs
root and openssh-server, as the fleet tests) each other host is a Linux user of its own
behind a real OpenSSH sshd of its own on loopback, reached as `zapvisor` reaches a
host (one asyncssh connection, one agent), and the outage is that host's sshd killed
with its connections. The figures are printed, nothing fails on timing: the machine is
shared and noisy, compare the ratios within one run. Run the full size under the
machine's bench lock (`flock /work/team/bench.lock ...`, see the team's notes).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ecosystem import __version__, apitoken  # noqa: E402
from ecosystem.fleet.control import control_side  # noqa: E402
from ecosystem.fleet.records import NewHost  # noqa: E402
from ecosystem.liveview import Poller  # noqa: E402
from ecosystem.models import NewSession  # noqa: E402
from ecosystem.orchestrator import Orchestrator  # noqa: E402
from ecosystem.ports import busy_ports  # noqa: E402
from ecosystem.store.postgres import PostgresStore  # noqa: E402
from tests import sshd as real  # noqa: E402
from tests.conftest import Env, free_port_block, teardown_env  # noqa: E402
from tests.fleet_local import LocalFleet  # noqa: E402
from tests.pgserver import PgServer  # noqa: E402
from tests.sshd import HostSetup, HostUser, SshServer  # noqa: E402

START_TIMEOUT = "120"
"""A loaded 2-core machine starts 200 runners slowly: give them time."""


def populate(orch: Orchestrator, host: str, base: int, count: int) -> None:
    """``count`` sim sessions of ``host`` in the store, as `create` inserts them."""
    ports = range(base, base + count + 10)
    busy = busy_ports(ports, "127.0.0.1")
    for i in range(count):
        orch.store.create_session(
            NewSession(name=f"{host}-{i:03d}", connector="sim"),
            host=host,
            ports=ports,
            exclude_ports=busy,
            max_sessions=count + 10,
            actor="bench",
            api_token_hash=apitoken.hash_token(apitoken.new_token()),
        )


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@dataclass
class Rig:
    """The control side's door on host-a, the other hosts' port blocks, how to make one
    of them stop answering (and come back), and what to undo at the end."""

    orch: Orchestrator
    blocks: dict[str, int]
    """Each host's BASE_PORT, by name (host-a first)."""
    outages: dict[str, Callable[[str], Callable[[], None]]]
    """Ways to make a host stop answering, by name; each returns what brings it back."""
    logins: Callable[[], dict[str, int]]
    """How many links (agents, or SSH logins) each other host saw so far."""
    undo: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for step in reversed(self.undo):
            try:
                step()
            except Exception as exc:  # clean up the rest all the same
                print(f"clean-up: {exc!r}", file=sys.stderr)


def local_env(top: Path, name: str, size: int, dsn: str) -> Env:
    env = Env(top / name / "home", free_port_block(size), size)
    env.extra = {
        "ZAPVISOR_DATABASE_URL": dsn,
        "ZAPVISOR_HOST_ID": name,
        "ZAPVISOR_START_TIMEOUT": START_TIMEOUT,
    }
    return env


def pipes_rig(top: Path, names: list[str], size: int, dsn: str) -> Rig:
    """The other hosts' agents on local pipes (tests/fleet_local.py)."""
    envs = [local_env(top, name, size, dsn) for name in names]
    fleet = LocalFleet(dsn, envs[0], names[0], {e.extra["ZAPVISOR_HOST_ID"]: e for e in envs[1:]})

    def outage(host: str) -> Callable[[], None]:
        fleet.down.add(host)
        pid = fleet.agents[host][-1]
        os.kill(pid, signal.SIGSTOP)

        def back() -> None:
            os.kill(pid, signal.SIGCONT)
            fleet.down.discard(host)

        return back

    rig = Rig(
        fleet.orchestrator(start_timeout=int(START_TIMEOUT)),
        {e.extra["ZAPVISOR_HOST_ID"]: e.base_port for e in envs},
        {"agent frozen": outage},
        lambda: {h: len(p) for h, p in fleet.agents.items()},
    )
    rig.undo += [lambda env=env: teardown_env(env) for env in envs]  # type: ignore[misc]
    rig.undo.append(fleet.close)
    return rig


def ssh_rig(top: Path, names: list[str], size: int, dsn: str) -> Rig:
    """Each other host a Linux user behind an sshd of its own (tests/sshd.py), in the
    store as `zapvisor hosts add` records it (its key vouched for by the store)."""
    import asyncssh

    missing = real.sshd_missing()
    if missing:
        raise SystemExit(f"--ssh: {missing}")
    real.sweep_stale_users()
    key = asyncssh.generate_private_key("ssh-ed25519", comment="zapvisor-bench")
    key_path = top / "id_ed25519"
    key.write_private_key(key_path)
    key_path.chmod(0o600)
    public = key.export_public_key().decode().strip()
    venv = real.fleet_venv()
    control = local_env(top, names[0], size, dsn)
    settings = control.settings(database_url=dsn, host_id=names[0], start_timeout=120)
    orch = control_side(settings)
    servers: dict[str, SshServer] = {}
    users: dict[str, tuple[HostUser, Path]] = {}
    blocks = {names[0]: control.base_port}
    rig = Rig(orch, blocks, {}, lambda: {})
    rig.undo += [lambda: teardown_env(control)]

    def shut(host: str) -> None:
        user, wrapper = users[host]
        real.as_user(user, [str(wrapper), "shutdown"], timeout=300)
        real.delete_user(user)
        servers[host].destroy()

    for name in names[1:]:
        server = servers[name] = SshServer(free_port_block(1)).start()
        user = real.create_user()
        real.authorize(user, public)
        setup = HostSetup(name, free_port_block(size), size, user.home / ".zapvisor" / "home")
        wrapper = real.install_host(
            user,
            venv,
            setup,
            {"ZAPVISOR_DATABASE_URL": dsn, "ZAPVISOR_START_TIMEOUT": START_TIMEOUT},
        )
        users[name] = (user, wrapper)
        rig.undo.append(lambda name=name: shut(name))  # type: ignore[misc]
        blocks[name] = setup.base_port
        orch.store.add_host(
            NewHost(
                name=name,
                address="127.0.0.1",
                ssh_user=user.name,
                ssh_port=server.port,
                identity_file=str(key_path),
                base_port=setup.base_port,
                max_sessions=size,
                zapvisor_path=str(wrapper),
                version=__version__,
                host_key=server.fingerprint,
            ),
            actor="bench",
        )
    rig.undo.append(orch.close)

    def killed(host: str) -> Callable[[], None]:
        servers[host].stop()

        def back() -> None:
            servers[host].start()

        return back

    def frozen(host: str) -> Callable[[], None]:
        """A host gone silent (powered off, cable out): TCP stays, nothing answers."""
        pids = servers[host].freeze()
        return lambda: servers[host].thaw(pids)

    def logins() -> dict[str, int]:
        return {
            h: s.log.read_text().count(f"Accepted publickey for {users[h][0].name}")
            for h, s in servers.items()
        }

    rig.outages = {"sshd killed": killed, "sshd frozen": frozen}
    rig.logins = logins
    return rig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--ticks", type=int, default=15)
    parser.add_argument("--creates", type=int, default=3)
    parser.add_argument("--ssh", action="store_true", help="the other hosts over real sshd")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # figures as they come

    top = Path(tempfile.mkdtemp(prefix="zv-fleet-bench-"))
    pg = PgServer(free_port_block(1))
    rig: Rig | None = None
    try:
        # every runner, health monitor and agent holds a connection of its own
        pg.start(max_connections=2 * args.hosts * (args.sessions + 10) + 100)
        dsn = pg.dsn()
        store = PostgresStore(dsn)
        store.migrate()
        store.close()
        names = [f"host-{chr(ord('a') + i)}" for i in range(args.hosts)]
        size = args.sessions + 10
        rig = (ssh_rig if args.ssh else pipes_rig)(top, names, size, dsn)
        orch = rig.orch
        hosts = orch.fleet_hosts()
        assert hosts == names, hosts
        how = "over real sshd" if args.ssh else "agents on local pipes"
        print(f"{len(hosts)} hosts ({how}), {args.sessions} sim sessions each")
        t0 = time.perf_counter()
        for host, base in rig.blocks.items():
            populate(orch, host, base, args.sessions)
        assert orch.links is not None
        links = orch.links
        # every host starts its runners at once, as their operators' boots would
        with concurrent.futures.ThreadPoolExecutor(len(hosts)) as pool:
            applies = [pool.submit(orch.apply)] + [
                pool.submit(links.call, host, "apply", {}, timeout=1800) for host in hosts[1:]
            ]
            for done in applies:
                done.result()
        print(
            f"{len(hosts)} hosts x {args.sessions} sim sessions started in "
            f"{time.perf_counter() - t0:.1f} s"
        )

        poller = Poller(orch)
        poller.tick()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            snap = poller.tick()
            if sum(v.process_state == "RUNNING" for v in snap.views) == len(snap.views):
                break
            time.sleep(1)
        before = dict(links.calls)
        ticks = []
        for _ in range(args.ticks):
            t = time.perf_counter()
            snap = poller.tick()
            ticks.append(time.perf_counter() - t)
            time.sleep(0.2)
        per_tick = {
            h: (links.calls[(h, "host_report")] - before.get((h, "host_report"), 0)) / args.ticks
            for h in hosts[1:]
        }
        running = sum(v.process_state == "RUNNING" for v in snap.views)
        print(
            f"refresh tick, {len(snap.views)} sessions ({running} RUNNING) on "
            f"{len(hosts)} hosts: median {statistics.median(ticks) * 1000:.0f} ms, "
            f"max {max(ticks) * 1000:.0f} ms; host_report calls per remote host per tick: "
            + ", ".join(f"{h} {n:.2f}" for h, n in per_tick.items())
        )
        print(f"links opened per remote host over the whole run: {rig.logins()}")

        for where in (hosts[0], hosts[1]):
            took = []
            for i in range(args.creates):
                name = f"probe-{where}-{i}"
                t = time.perf_counter()
                view = orch.create(NewSession(name=name, connector="sim"), host=where)
                while not healthy(view.session.port):
                    time.sleep(0.005)
                took.append(time.perf_counter() - t)
                orch.delete(name)
            print(
                f"create → /health on {where} "
                f"({'this host' if where == hosts[0] else 'through its agent'}): "
                f"median {statistics.median(took):.2f} s of {args.creates}"
            )

        silent = hosts[-1]
        for what, outage in rig.outages.items():
            back = outage(silent)
            t = time.monotonic()
            others: list[float] = []
            while True:
                began = time.monotonic()
                snap = poller.tick()
                others.append(time.monotonic() - began)
                if not snap.hosts[silent].reachable:
                    break
                time.sleep(0.25)
            print(
                f"{silent} {what} → its rows unreachable after {time.monotonic() - t:.1f} s "
                f"(ticks meanwhile: {len(others)}, longest {max(others) * 1000:.0f} ms)"
            )
            back()
            t = time.monotonic()
            while not poller.tick().hosts[silent].reachable and time.monotonic() - t < 120:
                time.sleep(0.25)
            print(f"{silent} back → its rows answering again after {time.monotonic() - t:.1f} s")
    finally:
        if rig is not None:
            rig.close()
        pg.destroy()
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
