"""The seam of the two halves over real OpenSSH: the control side's HostLinks talking to
a host's real `zapvisor agent --stdio`, opened by the SSH layer on the host's one
connection (ecosystem/fleet/sshlinks.py). A frozen sshd turns the host unreachable
within 10 s; it comes back when sshd answers again. And the CLI uses these links by
itself: nothing but `hosts add` is needed for a session elsewhere to answer by name."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from ecosystem.errors import HostUnreachable
from ecosystem.fleet import codec
from ecosystem.fleet.sshlinks import ssh_links
from ecosystem.hostview import HostReport
from ecosystem.paths import StatePaths
from ecosystem.store.postgres import PostgresStore
from tests.conftest import wait_for
from tests.fleet_fixtures import Fleet, RemoteHost
from tests.sshd import SshServer

pytestmark = pytest.mark.e2e


def test_links_over_ssh_reach_the_agent_and_notice_a_silent_host(
    fleet: Fleet, make_sshd: Callable[[], SshServer]
) -> None:
    server = make_sshd()
    host = fleet.host("vps-l", sshd=server)
    fleet.add(host)
    store = PostgresStore(fleet.store["ZAPVISOR_DATABASE_URL"])
    links = ssh_links(StatePaths(fleet.control.home), lambda: store, "control")
    try:
        assert links.hosts() == ["vps-l"]
        report = codec.decode(links.call("vps-l", "host_report", {}, timeout=60), HostReport)
        assert report.host_id == "vps-l" and report.base_port == host.setup.base_port
        assert report.supervisord_up and report.stats is not None
        again = codec.decode(links.call("vps-l", "host_report", {}, timeout=30), HostReport)
        assert again.taken_at > report.taken_at
        reach = links.reach("vps-l")
        assert reach.reachable and reach.version == report.version
        logins = server.log.read_text().count(f"Accepted publickey for {host.user.name}")

        frozen = server.freeze()
        started = time.monotonic()
        try:
            with pytest.raises(HostUnreachable):
                links.call("vps-l", "host_report", {}, timeout=5)
            silent = links.reach("vps-l")
            assert silent.reachable is False and silent.since is not None
            assert time.monotonic() - started < 10
        finally:
            server.thaw(frozen)
        back = codec.decode(links.call("vps-l", "host_report", {}, timeout=60), HostReport)
        assert back.host_id == "vps-l" and links.reach("vps-l").reachable
        # one connection until the freeze, one after it: never one per call
        after = server.log.read_text().count(f"Accepted publickey for {host.user.name}")
        assert after - logins <= 1
    finally:
        links.close()
        store.close()


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

    listed = cli("list")
    assert isinstance(listed, list)
    far = next(v for v in listed if v["name"] == "far-1")
    assert far["host"] == "vps-w" and far["process_state"] == "RUNNING"
    assert far["pid"] == made["pid"] and far["host_unreachable"] is None
    again = cli("restart", "far-1")
    assert isinstance(again, dict) and again["pid"] not in (None, made["pid"])

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
