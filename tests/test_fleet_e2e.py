"""The operator script of issue 10 end to end across three hosts: this machine
("control") and two remote hosts over real OpenSSH (vps-1 and vps-2: each a Linux user
of its own behind an sshd of its own, with its own ZAPVISOR_HOME, BASE_PORT range and
supervisord), all sharing one real PostgreSQL database.

The hosts are made and added once for the module (making them costs more than the
tests): the CLI script first, then the terminal app over the same hosts (Pilot), then
one remote sshd killed mid-refresh. Each test creates the sessions it looks at."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import DataTable, Select

from ecosystem import __version__
from ecosystem.errors import ZapvisorError
from ecosystem.liveview import Poller
from ecosystem.models import NewSession
from tests.conftest import Env, PgCluster, free_port_block, teardown_env, wait_for
from tests.fleet_fixtures import ClientKey, Fleet
from tests.fleet_three import Three, following, home_rows, made_on, owner, refused, seen
from tests.qrdecode import decode_png
from tests.sshd import SshServer
from tests.tui_helpers import screen_as, screen_text, until
from tui.app import ZapvisorApp
from tui.dialogs.create import AUTOMATIC, CreateForm
from tui.screens.hosts import HostsScreen
from tui.screens.sessions import SessionsScreen

# one worker holds the module's hosts: its tests run there, in this order
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("fleet-e2e")]


@pytest.fixture(scope="module")
def three(pg_cluster: PgCluster, ssh_key: ClientKey, fleet_venv: Path) -> Iterator[Three]:
    database = pg_cluster.new_database()
    store = {"ZAPVISOR_DATABASE_URL": pg_cluster.dsn(database)}
    home = Path(tempfile.mkdtemp(prefix="zv-", dir="/tmp")) / "home"
    # 3 slots here and on vps-1, 8 on vps-2: placement's choice is clear-cut (below)
    control = Env(home, free_port_block(3), 3, {"ZAPVISOR_HOST_ID": "control", **store})
    servers = [SshServer(free_port_block(1)).start() for _ in range(2)]
    fleet = Fleet(control, store, servers[0], ssh_key, fleet_venv)
    try:
        one = fleet.host("vps-1", sshd=servers[0], max_sessions=3)
        two = fleet.host("vps-2", sshd=servers[1], max_sessions=8)
        added = {h.name: json.loads(fleet.add(h, "--json").stdout) for h in (one, two)}
        yield Three(fleet, one, two, added)
    finally:
        fleet.cleanup()
        teardown_env(control)
        shutil.rmtree(home.parent, ignore_errors=True)
        for server in servers:
            server.destroy()
        pg_cluster.drop_database(database)


def test_the_operator_script_across_three_hosts(three: Three) -> None:
    one, two = three.one, three.two
    for host in (one, two):
        record = three.added[host.name]["host"]
        assert record["host_key"] == host.sshd.fingerprint and record["version"] == __version__
    # hosts list: the three, each answering, with its capacity and version
    hosts = {h["name"]: h for h in three.json("hosts", "list")}
    assert list(hosts) == ["control", "vps-1", "vps-2"]
    assert all(h["reachable"] and h["version"] == __version__ for h in hosts.values())
    assert [(h["sessions"], h["max_sessions"]) for h in hosts.values()] == [(0, 3)] * 2 + [(0, 8)]
    assert hosts["vps-1"]["target"] == f"{one.user.name}@127.0.0.1:{one.sshd.port}"

    # create with --host (here, and over there), then without: the host with most room
    here = three.json("create", "op-here", "--host", "control", "--connector", "sim")
    far = three.json("create", "op-far", "--host", "vps-1", "--connector", "sim")
    assert (here["host"], far["host"]) == ("control", "vps-1")
    assert far["port"] == one.setup.base_port and far["pid"]
    assert owner(far["pid"]) == one.user.name  # run there, by vps-1's supervisord
    # control 1/3 and vps-1 1/3 used, vps-2 0/8: the same machine's RAM and load. (On
    # a door whose links are open: placement gives each host HOST_TIMEOUT to answer,
    # which a fresh agent's start on this loaded machine may pass, skipping the host.)
    door = three.door()
    try:
        assert door.links is not None
        for name in ("vps-1", "vps-2"):
            door.links.call(name, "host_report", {}, timeout=60)
        auto = door.create(NewSession(name="op-auto", connector="sim")).session
    finally:
        door.close()
    assert auto.host == "vps-2" and auto.port == two.setup.base_port

    # bad input, each one line and a non-zero exit, nothing made: a name another host
    # already uses, a host the fleet does not have
    taken = refused(three, 73, "create", "op-far", "--host", "vps-2", "--connector", "sim")
    assert "op-far" in taken and "already" in taken
    assert "no host named 'nope'" in refused(three, 66, "create", "op-x", "--host", "nope")

    # list: every host's sessions with a HOST column; --host keeps one host's
    listed = {v["name"]: v["host"] for v in three.json("list")}
    assert listed == {"op-here": "control", "op-far": "vps-1", "op-auto": "vps-2"}
    lines = three.cli("list").stdout.splitlines()
    assert "HOST" in lines[0].split()
    rows = {ln.split()[0]: ln.split()[1] for ln in lines[1:] if ln.startswith("op-")}
    assert rows == listed
    assert [v["name"] for v in three.json("list", "--host", "vps-2")] == ["op-auto"]

    # the QR of a remote session, drawn here, decodes
    png = three.control.home / "op-far.png"
    code = three.json("qr", "op-far", "--wait", "30", "--png", str(png))
    assert str(code["qr_payload"]).startswith("2@")
    assert decode_png(png.read_bytes()) == code["qr_payload"]

    # logs -f of a remote session: a line written there after it started is seen here
    with following(three.control, "op-far") as lines_seen:
        assert seen(lines_seen, '"session": "op-far"', 60), "no backlog from vps-1"
        three.cli("sim-scan", "op-far")  # the simulated phone pairs: a new log line
        assert seen(lines_seen, '"paired"', 60), "the new line never came"

    # restart / stop / start / config / show / token / webhooks, by name
    again = three.json("restart", "op-far")
    assert again["pid"] not in (None, far["pid"]) and owner(again["pid"]) == one.user.name
    assert three.json("stop", "op-far")["process_state"] == "STOPPED"
    assert owner(again["pid"]) is None
    started = three.json("start", "op-far")
    assert started["pid"] and owner(started["pid"]) == one.user.name
    three.cli("config", "op-far", "--description", "cliente 101; 50%")
    shown = three.json("show", "op-far")
    assert (shown["host"], shown["pid"]) == ("vps-1", started["pid"])
    assert shown["description"] == "cliente 101; 50%"
    token = three.cli("token", "op-far").stdout.strip()
    kept = one.setup.home / "secrets" / "op-far.token"
    assert token and kept.read_text().strip() == token
    assert three.json("webhooks", "op-far")["deliveries"] == []

    # a host that holds sessions stays in the fleet
    assert "op-far" in refused(three, 75, "hosts", "remove", "vps-1")
    assert "vps-1" in three.fleet.registered()

    # delete there; the port is free on vps-1 again
    three.cli("delete", "op-far", "--yes")
    assert wait_for(lambda: owner(started["pid"]) is None, 30)
    assert {v["name"] for v in three.json("list")} == {"op-here", "op-auto"}


def test_the_terminal_app_over_real_ssh_hosts(three: Three) -> None:
    """The hosts screen, the HOST column, one host's sessions and the create form's
    host choice (a session made there from the form), against the real-sshd hosts."""
    orch = three.door()
    try:
        orch.create(NewSession(name="tui-far", connector="sim"), host="vps-1")
        app = ZapvisorApp(orch, refresh_seconds=0.5, blink=False)

        async def scenario() -> None:
            async with app.run_test(size=(110, 40)) as pilot:
                home = screen_as(app, SessionsScreen)
                await until(
                    pilot,
                    lambda: (
                        app.snapshot is not None
                        and (view := app.snapshot.view("tui-far")) is not None
                        and view.process_state == "RUNNING"
                    ),
                    timeout=60,
                    what="vps-1's session running in the app",
                )
                await until(pilot, lambda: "HOST" in screen_text(app), what="the HOST column")
                shown = home_rows(screen_text(app))
                assert shown.get("tui-far") == "vps-1", shown

                # h: the three hosts, answering, how full, which version
                await pilot.press("h")
                hosts = screen_as(app, HostsScreen)
                table = hosts.query_one("#hosts", DataTable)

                def cells() -> dict[str, list[str]]:
                    return {str(k.value): [str(c) for c in table.get_row(k)] for k in table.rows}

                # (a host shows as answering until it fails to; its figures once it did)
                await until(
                    pilot,
                    lambda: (
                        "3 of 3 answering" in screen_text(app)
                        and [c[7] for c in cells().values()] == [__version__] * 3
                    ),
                    timeout=30,
                    what="every host's report",
                )
                rows = cells()
                # HOST, ANSWERS, MS, SESSIONS, CPU%, RAM, DISK, VERSION
                assert list(rows) == ["control", "vps-1", "vps-2"]
                assert [c[1] for c in rows.values()] == ["local", "yes", "yes"], rows
                assert rows["vps-1"][3] == "1/3" and rows["vps-2"][3].endswith("/8"), rows
                assert all(c[5].endswith("%") and c[6].endswith("%") for c in rows.values())

                # enter on vps-1: back home, its sessions only
                hosts.query_one("#hosts").move_cursor(row=1)  # type: ignore[attr-defined]
                await pilot.press("enter")
                await until(
                    pilot,
                    lambda: app.screen is home and home.table.names == ["tui-far"],
                    what="vps-1's sessions only",
                )
                await pilot.press("escape")  # clears the host filter
                await until(
                    pilot,
                    lambda: (
                        home.filter_text == ""
                        and app.snapshot is not None
                        and set(home.table.names) == {v.name for v in app.snapshot.views}
                    ),
                    what="every host's sessions again",
                )

                # n: the form offers each host, automatic first; vps-2 chosen
                await pilot.press("n")
                form = screen_as(app, CreateForm)
                choice = form.query_one("#host", Select)
                assert choice.value == AUTOMATIC
                options = [v for _label, v in choice._options]
                assert options == [AUTOMATIC, "control", "vps-1", "vps-2"]
                await pilot.press(*"tui-made")
                choice.value = "vps-2"
                form.query_one("#connector", Select).value = "sim"
                await pilot.press("enter")
                await until(
                    pilot,
                    lambda: made_on(orch, "tui-made") == "vps-2",
                    timeout=90,
                    what="the form's session created on vps-2",
                )

        asyncio.run(scenario())
        assert three.two.json("show", "tui-made")["port"] >= three.two.setup.base_port
    finally:
        for name in ("tui-far", "tui-made"):
            with contextlib.suppress(ZapvisorError):  # not made when it failed early
                orch.delete(name)
        orch.close()


def test_a_remote_sshd_killed_mid_refresh(three: Three) -> None:
    """vps-2's sshd is killed while the view refreshes: vps-2's rows turn grey within
    10 s with their last known state; vps-1's rows keep refreshing meanwhile (a session
    stopped there shows STOPPED); vps-2 comes back when its sshd does."""
    orch = three.door()
    server = three.two.sshd
    try:
        one = orch.create(NewSession(name="kill-one", connector="sim"), host="vps-1")
        two = orch.create(NewSession(name="kill-two", connector="sim"), host="vps-2")
        poller = Poller(orch)

        def both_running() -> bool:
            snap = poller.tick()
            views = [snap.view("kill-one"), snap.view("kill-two")]
            return all(v is not None and v.process_state == "RUNNING" for v in views)

        assert wait_for(both_running, 40)
        server.stop()
        killed = time.monotonic()
        stopped = False
        while True:
            snap = poller.tick()
            if not stopped:
                orch.stop("kill-one")  # on vps-1, through its own link
                stopped = True
            far = snap.view("kill-two")
            near = snap.view("kill-one")
            assert far is not None and near is not None
            if (
                not snap.hosts["vps-2"].reachable
                and near.process_state == "STOPPED"
                and snap.hosts["vps-1"].reachable
            ):
                break
            assert time.monotonic() - killed < 10, (snap.hosts, near.process_state)
            time.sleep(0.2)
        assert far.process_state == "RUNNING", "vps-2's last known state kept"
        assert (far.unreachable or "").startswith("host unreachable since ")
        assert near.unreachable is None and snap.view("kill-one") is near

        server.start()
        assert wait_for(lambda: poller.tick().hosts["vps-2"].reachable, 40)
        back = poller.tick().view("kill-two")
        assert back is not None and back.unreachable is None and back.pid == two.pid
        assert one.pid  # vps-1 kept its session's record throughout
    finally:
        if server.pid is None:
            server.start()
        for name in ("kill-one", "kill-two"):
            with contextlib.suppress(ZapvisorError):  # not made when it failed early
                orch.delete(name)
        orch.close()


def test_a_host_removed_while_the_terminal_app_is_open(three: Three) -> None:
    """The last test of the module: vps-2 (no sessions left) leaves the fleet by
    `zapvisor hosts remove` from another terminal while the app shows the hosts: its
    row goes, quietly, and the other hosts keep answering."""
    orch = three.door()
    try:
        for view in orch.list_sessions(host="vps-2"):  # what the tests before left there
            orch.delete(view.name)
        app = ZapvisorApp(orch, refresh_seconds=0.5, blink=False)

        async def scenario() -> None:
            async with app.run_test(size=(110, 40)) as pilot:
                await pilot.press("h")
                screen_as(app, HostsScreen)
                await until(
                    pilot,
                    lambda: "3 of 3 answering" in screen_text(app),
                    timeout=30,
                    what="every host answering",
                )
                removed = await asyncio.to_thread(three.cli, "hosts", "remove", "vps-2")
                assert "removed vps-2" in removed.stdout
                await until(
                    pilot,
                    lambda: "2 of 2 answering" in screen_text(app),
                    timeout=30,
                    what="vps-2 gone from the hosts screen",
                )
                assert "vps-2" not in screen_text(app)
                errors = [n for n in app._notifications if n.severity == "error"]
                assert not errors, [n.message for n in errors]

        asyncio.run(scenario())
        assert three.fleet.registered() == ["vps-1"]
    finally:
        orch.close()
