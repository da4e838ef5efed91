"""How the control side should run work on a host: a zapvisor process per call, or
requests on a long-lived process behind one SSH channel (issue 10 asks to choose by
measurement). Over a real OpenSSH sshd on loopback, with a real remote host (a Linux
user of its own running zapvisor with its own supervisord, a sim session and a real
PostgreSQL store), one call = `zapvisor show NAME --json`:

  ssh per call       `ssh host zapvisor show NAME --json`: OpenSSH's client, a new
                     connection (handshake, auth) and a zapvisor process each time
  process per call   the same command on one long-lived asyncssh connection: no
                     handshake, still a process (Python start, imports) each time
  channel, agent     one request line to a zapvisor process kept running on one channel
                     (the same core call, `Orchestrator.show(NAME)`), one reply line
  channel, echo      one line through `cat` on a channel: the transport alone
  ssh round trip     an SSH keepalive request: the connection alone, no process

    sudo .venv/bin/python scripts/bench/fleet_transport.py [--runs 20]

Needs root (it makes a Linux user, as the tests do) and openssh-server. Prints
figures; compare ratios within one run (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import asyncssh  # noqa: E402

from ecosystem.fleet.connect import Endpoint  # noqa: E402
from ecosystem.fleet.knownhosts import KeyPolicy  # noqa: E402
from ecosystem.fleet.ssh import SSHPool, remote_command  # noqa: E402
from ecosystem.paths import StatePaths  # noqa: E402
from ecosystem.store.postgres import PostgresStore  # noqa: E402
from scripts.bench.freeports import free_block  # noqa: E402
from tests import sshd as real  # noqa: E402
from tests.pgserver import PgServer  # noqa: E402

# What `zapvisor agent --stdio` does, reduced to the one call measured here: the host's
# own core answers each JSON line, in one process started once.
AGENT = """
import json, sys
from ecosystem.orchestrator import Orchestrator
from ecosystem.settings import load_settings
orch = Orchestrator(load_settings())
for line in sys.stdin:
    request = json.loads(line)
    result = orch.show(request["name"]).to_json()
    sys.stdout.write(json.dumps({"id": request["id"], "result": result}, default=str) + "\\n")
    sys.stdout.flush()
"""


def figures(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[max(0, int(len(ordered) * 0.9) - 1)]
    return (
        f"median {statistics.median(ordered) * 1000:8.1f} ms   p90 {p90 * 1000:8.1f} ms   "
        f"min {ordered[0] * 1000:8.1f} ms"
    )


async def timed(runs: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    for _ in range(2):  # warm-up: caches, first connection
        await call()
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        out.append(time.perf_counter() - started)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    missing = real.sshd_missing()
    if missing:
        print(f"fleet_transport: {missing}", file=sys.stderr)
        return 2

    print("setting up: PostgreSQL, sshd, a remote host with a sim session…", file=sys.stderr)
    pg = PgServer(free_block(1, 29000))
    server = real.SshServer(free_block(1, 29500))
    user = None
    work = Path(tempfile.mkdtemp(prefix="zv-bench-fleet-"))
    try:
        pg.start()
        pg.execute("CREATE DATABASE zv_bench")
        dsn = pg.dsn("zv_bench")
        store = PostgresStore(dsn)
        store.migrate()
        store.close()
        server.start()
        venv = real.fleet_venv()
        user = real.create_user()
        key = asyncssh.generate_private_key("ssh-ed25519")
        identity = work / "id_ed25519"
        key.write_private_key(identity)
        identity.chmod(0o600)
        real.authorize(user, key.export_public_key().decode())
        setup = real.HostSetup("vps-bench", free_block(5, 30000), 5, user.home / "zv-home")
        wrapper = str(real.install_host(user, venv, setup, {"ZAPVISOR_DATABASE_URL": dsn}))
        made = real.as_user(user, [wrapper, "create", "s1", "--connector", "sim"], timeout=120)
        if made.returncode != 0:
            raise RuntimeError(f"cannot create the session there: {made.stderr}")
        paths = StatePaths(work / "control")
        paths.ensure()
        ep = Endpoint("vps-bench", "127.0.0.1", user.name, server.port, str(identity))
        show = remote_command(wrapper, ["show", "s1", "--json"])
        results = asyncio.run(measure(args.runs, paths, ep, server, identity, show, wrapper))
    finally:
        if user is not None:
            zv = user.home / ".zapvisor" / "zapvisor"
            real.as_user(user, [str(zv), "shutdown"], timeout=120)
            real.delete_user(user)
        server.destroy()
        pg.destroy()
        subprocess.run(["rm", "-rf", str(work)], check=False)

    print(f"\none call = `zapvisor show s1 --json` on a remote host, {args.runs} runs each")
    for label, samples in results.items():
        print(f"  {label:<18} {figures(samples)}")
    per_call = statistics.median(results["process per call"])
    new_conn = statistics.median(results["ssh per call"])
    agent = statistics.median(results["channel, agent"])
    print(
        f"\nlong-lived channel vs a process per call on one connection: "
        f"{per_call / agent:.0f}x faster; vs `ssh host zapvisor …`: {new_conn / agent:.0f}x"
    )
    print(
        "a TUI refresh of 4 hosts (one call each, in parallel) costs about "
        f"{agent * 1000:.0f} ms and no process on any host with the agent, against "
        f"{per_call * 1000:.0f} ms and 4 processes a second with a process per call"
    )
    return 0


async def measure(
    runs: int,
    paths: StatePaths,
    ep: Endpoint,
    server: real.SshServer,
    identity: Path,
    show: str,
    wrapper: str,
) -> dict[str, list[float]]:
    pool = SSHPool(paths)
    await pool.connection(ep, policy=KeyPolicy(expected=server.fingerprint))
    known = paths.home / "known_hosts"
    ssh = [
        "ssh", "-i", str(identity), "-p", str(server.port),
        "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes", "-o", "GlobalKnownHostsFile=/dev/null",
        f"{ep.user}@127.0.0.1", show,
    ]  # fmt: skip

    async def ssh_per_call() -> None:
        proc = await asyncio.create_subprocess_exec(
            *ssh, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"ssh failed: {err.decode()}")
        json.loads(out)

    async def process_per_call() -> None:
        done = await pool.run(ep, show, timeout=60)
        json.loads(done.stdout)

    root = str(Path(wrapper).parent)
    agent_cmd = f"cd {shlex.quote(root)} && exec venv/bin/python -c {shlex.quote(AGENT)}"
    agent = await pool.open_process(ep, agent_cmd, timeout=30)
    echo = await pool.open_process(ep, "cat", timeout=30)
    counter = [0]

    async def agent_call() -> None:
        counter[0] += 1
        agent.writer.write(json.dumps({"id": counter[0], "name": "s1"}).encode() + b"\n")
        reply = json.loads(await agent.reader.readline())
        assert reply["id"] == counter[0] and reply["result"]["name"] == "s1"

    async def echo_call() -> None:
        echo.writer.write(b'{"id": 1, "method": "ping"}\n')
        await echo.reader.readline()

    async def ssh_round_trip() -> None:
        await pool.ping(ep)

    results = {
        "ssh per call": await timed(runs, ssh_per_call),
        "process per call": await timed(runs, process_per_call),
        "channel, agent": await timed(runs, agent_call),
        "channel, echo": await timed(runs, echo_call),
        "ssh round trip": await timed(runs, ssh_round_trip),
    }
    agent.close()
    echo.close()
    await pool.close()
    return results


if __name__ == "__main__":
    sys.exit(main())
