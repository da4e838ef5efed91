"""The seam of the two halves over real OpenSSH: the control side's HostLinks talking to
a host's real `zapvisor agent --stdio`, opened by the SSH layer on the host's one
connection (ecosystem/fleet/sshlinks.py). A frozen sshd turns the host unreachable
within 10 s; it comes back when sshd answers again. And the CLI uses these links by
itself: nothing but `hosts add` is needed for a session elsewhere to answer by name."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from ecosystem.fleet.control import control_side
from ecosystem.fleet.door import HOST_TIMEOUT
from ecosystem.fleet.sshlinks import SSHLinks
from ecosystem.liveview import Poller, Snapshot
from ecosystem.models import NewSession
from ecosystem.orchestrator import Orchestrator
from tests.conftest import wait_for
from tests.fleet_fixtures import Fleet, RemoteHost
from tests.qrdecode import decode_half_blocks, decode_png
from tests.sshd import SshServer

pytestmark = pytest.mark.e2e


def _interruptible() -> None:
    """In the child before exec: SIGINT back to its default (Python then raises
    KeyboardInterrupt on it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_the_live_view_over_ssh_greys_a_silent_or_dead_host_and_brings_it_back(
    fleet: Fleet, make_sshd: Callable[[], SshServer]
) -> None:
    """The terminal app's refresh over the control side's own door (control_side, as
    `zapvisor` opens it): one SSH login and one agent for every tick; a host whose sshd
    goes silent, then one whose sshd is killed, greys within 10 s while this host's rows
    keep refreshing; both times it comes back when sshd does."""
    server = make_sshd()
    host = fleet.host("vps-l", sshd=server)
    fleet.add(host)
    settings = fleet.control.settings(
        host_id="control", database_url=fleet.store["ZAPVISOR_DATABASE_URL"]
    )
    orch = control_side(settings)
    try:
        assert isinstance(orch.links, SSHLinks) and orch.fleet_hosts() == ["control", "vps-l"]
        far = orch.create(NewSession(name="there", connector="sim"), host="vps-l")
        assert far.session.port == host.setup.base_port
        orch.create(NewSession(name="here", connector="sim"), host="control")
        poller = Poller(orch)

        def both_running() -> bool:
            snap = poller.tick()
            states = {v.name: v.process_state for v in snap.views}
            return snap.hosts["vps-l"].reachable and states == {
                "here": "RUNNING",
                "there": "RUNNING",
            }

        # create returns once /health answers; supervisord says RUNNING after startsecs
        assert wait_for(both_running, 30)
        logins = _logins(server, host)
        agents = _agents(host)
        assert len(agents) == 1
        asked = orch.links.calls[("vps-l", "host_report")]
        for _ in range(5):
            poller.tick()
        # each tick asks the host once, on the link it has: no login, no process per tick
        assert orch.links.calls[("vps-l", "host_report")] - asked <= 5
        assert _logins(server, host) == logins and _agents(host) == agents

        # silent (TCP up, nothing answers), then dead (sshd and its connections killed)
        for outage in ("frozen", "killed"):
            if outage == "frozen":
                frozen = server.freeze()
            else:
                server.stop()
            snap = _until_grey(poller, "vps-l", orch, outage)
            there = snap.view("there")
            assert there is not None and there.process_state == "RUNNING", "last state kept"
            assert (there.unreachable or "").startswith("host unreachable since ")
            if outage == "frozen":
                server.thaw(frozen)
            else:
                server.start()
            assert wait_for(lambda: poller.tick().hosts["vps-l"].reachable, 30), outage
            back = poller.tick().view("there")
            assert back is not None and back.unreachable is None
            # the session itself never stopped: its supervisord is the host's own
            assert back.pid == far.pid
    finally:
        orch.close()
    assert wait_for(lambda: not _agents(host), 30)  # closing the door ends its agent
    host.run("delete", "there", "--yes")


def _logins(server: SshServer, host: RemoteHost) -> int:
    return server.log.read_text().count(f"Accepted publickey for {host.user.name}")


def _until_grey(poller: Poller, name: str, orch: Orchestrator, outage: str) -> Snapshot:
    """Tick as the app does until ``name`` greys (within 10 s), checking that this
    host's rows kept refreshing meanwhile: a local session stopped during the outage
    shows STOPPED at the next tick, and no tick waits on the silent host."""
    started = time.monotonic()
    ticks: list[float] = []
    stopped_here = False
    while True:
        began = time.monotonic()
        snap = poller.tick()
        ticks.append(time.monotonic() - began)
        if not stopped_here:
            orch.stop("here")
            stopped_here = True
        elif not snap.hosts[name].reachable:
            break
        assert time.monotonic() - started < 10, f"{name} still shown answering ({outage})"
        time.sleep(0.2)
    # a tick that waited on the silent host would last its HOST_TIMEOUT; one that does
    # not waits at most REMOTE_WAIT for it, and the rest is local work (slow when loaded)
    assert max(ticks) < HOST_TIMEOUT, (outage, ticks)
    here = snap.view("here")
    assert here is not None and here.process_state == "STOPPED" and here.unreachable is None
    orch.start("here")
    return snap


def _agents(host: RemoteHost) -> list[int]:
    """Pids of `zapvisor agent --stdio` running as the host's user."""
    found = []
    for proc in psutil.process_iter(["username", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["username"] == host.user.name and "--stdio" in cmdline:
            found.append(proc.pid)
    return found


def test_the_cli_reaches_sessions_of_other_hosts_over_ssh(fleet: Fleet) -> None:
    host = fleet.host("vps-w")
    fleet.add(host)
    log = fleet.sshd.log

    def logins() -> int:
        return log.read_text().count(f"Accepted publickey for {host.user.name}")

    def cli(*args: str) -> object:
        return json.loads(fleet.control.cli(*args, "--json", timeout=240).stdout)

    before = logins()
    made = cli("create", "far-1", "--host", "vps-w", "--connector", "sim")
    assert isinstance(made, dict) and made["host"] == "vps-w"
    assert made["port"] == host.setup.base_port and made["pid"]
    assert logins() - before == 1  # one connection for the whole command
    # it runs there, under the host's own supervisord
    assert host.json("show", "far-1")["pid"] == made["pid"]
    # and the command's agent ended with the command
    assert wait_for(lambda: not _agents(host), timeout=30)

    def far_running() -> dict[str, object] | None:
        # supervisord says RUNNING a second after the start (startsecs), and a create
        # returns as soon as the runner answers: a list at once may still say STARTING
        listed = cli("list")
        assert isinstance(listed, list)
        far: dict[str, object] = next(v for v in listed if v["name"] == "far-1")
        return far if far["process_state"] == "RUNNING" else None

    far = wait_for(far_running, timeout=30)
    assert far["host"] == "vps-w"
    assert far["pid"] == made["pid"] and far["host_unreachable"] is None
    again = cli("restart", "far-1")
    assert isinstance(again, dict) and again["pid"] not in (None, made["pid"])

    # its QR, drawn here from what the host's runner shows, decodes to the same code
    png_path = fleet.control.home / "far-1.png"
    code = cli("qr", "far-1", "--wait", "20", "--png", str(png_path))
    assert isinstance(code, dict) and str(code["qr_payload"]).startswith("2@")
    assert decode_png(png_path.read_bytes()) == code["qr_payload"]
    drawn = fleet.control.cli("qr", "far-1", "--plain", timeout=120).stdout
    assert (decode_half_blocks(drawn.split("\nfar-1:")[0]) or "").startswith("2@")

    # its log lines, read there; and followed until the operator stops following
    tail = fleet.control.cli("logs", "far-1", "--raw", "-n", "20", timeout=120).stdout
    assert '"session": "far-1"' in tail
    with subprocess.Popen(
        [sys.executable, "-m", "tui.cli.main", "logs", "-f", "--raw", "far-1"],
        env=fleet.control.vars,
        stdout=subprocess.PIPE,
        text=True,
        # Ctrl-C as in a terminal, whoever started the tests: a shell's background job
        # ignores SIGINT, and so would this command, inheriting that
        preexec_fn=_interruptible,
    ) as follow:
        try:
            assert follow.stdout is not None
            first = follow.stdout.readline()
            assert '"session": "far-1"' in first or first.startswith("{"), first
            assert wait_for(lambda: len(_agents(host)) == 1, 30)
            follow.send_signal(signal.SIGINT)
            assert follow.wait(30) == 130
        finally:
            follow.kill()  # a failure above must not leave the test waiting for it
    assert wait_for(lambda: not _agents(host), 30)  # the agent ended with the command

    # a host nobody added: the exit code of an unknown host
    unknown = fleet.control.cli("list", "--host", "nope", check=False)
    assert unknown.returncode == 66 and "no host named 'nope'" in unknown.stderr

    # zapvisor gone from the host: said in one line, with what to do
    wrapper = Path(host.zapvisor or "")
    wrapper.rename(wrapper.with_name("zapvisor.away"))
    try:
        gone = fleet.control.cli("restart", "far-1", check=False, timeout=120)
    finally:
        wrapper.with_name("zapvisor.away").rename(wrapper)
    assert gone.returncode == 69, gone.stderr
    assert "zapvisor is not installed on vps-w any more" in gone.stderr
    assert "zapvisor hosts upgrade vps-w" in gone.stderr
    assert len(gone.stderr.strip().splitlines()) == 1

    fleet.control.cli("delete", "far-1", "--yes", timeout=240)
    assert host.json("list") == []
