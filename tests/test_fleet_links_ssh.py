"""The seam of the two halves over real OpenSSH: the control side's HostLinks talking to
a host's real `zapvisor agent --stdio`, opened by the SSH layer on the host's one
connection (ecosystem/fleet/sshlinks.py). A frozen sshd turns the host unreachable
within 10 s; it comes back when sshd answers again."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from ecosystem.errors import HostUnreachable
from ecosystem.fleet import codec
from ecosystem.fleet.sshlinks import ssh_links
from ecosystem.hostview import HostReport
from ecosystem.paths import StatePaths
from ecosystem.store.postgres import PostgresStore
from tests.fleet_fixtures import Fleet
from tests.sshd import SshServer

pytestmark = pytest.mark.e2e


def test_links_over_ssh_reach_the_agent_and_notice_a_silent_host(
    fleet: Fleet, make_sshd: Callable[[], SshServer]
) -> None:
    server = make_sshd()
    host = fleet.host("vps-l", sshd=server)
    fleet.add(host)
    store = PostgresStore(fleet.store["ZAPVISOR_DATABASE_URL"])
    links = ssh_links(StatePaths(fleet.control.home), store, "control")
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
