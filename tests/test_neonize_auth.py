"""The neonize connector with its auth in the store: which device each client opens, the
device JID a pairing gives kept in the session's row, and what a runner does with a JID
whatsmeow no longer holds.

The runner's own pieces are real (its Reporter and Events, its fenced store connection
holding the lease, a real migrated PostgreSQL from tests/pgserver.py, whatsmeow's real
schema); only neonize's client is the stand-in of tests/neonize_harness.py, since
WhatsApp's servers cannot be reached from here: so the device row whatsmeow writes after
a pairing is written by the test, as whatsmeow writes it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from neonize.proto import Neonize_pb2 as pb

from ecosystem.lease import AuthKind
from ecosystem.paths import StatePaths
from ecosystem.settings import make_settings
from ecosystem.states import Status
from ecosystem.store.postgres import PostgresStore
from runner.connectors.context import ConnectorContext
from runner.connectors.neonize import NeonizeConnector
from runner.connectors.neonize_client import new_client
from runner.connectors.neonize_store import ClientStore, whatsmeow_dsn
from runner.events import Events
from runner.outbox import Outbox
from runner.state import LiveState, Reporter
from tests.neonize_harness import OWN, StandIn, until
from tests.test_neonize_auth_dsn import _whatsmeow_open, add_device
from tests.test_store_contract import create

JID = f"{OWN}:7@s.whatsapp.net"
HOST = "h1"


@pytest.fixture
def store(pg_dsn: str) -> Iterator[PostgresStore]:
    """The operator's view of the fleet's database, with one neonize session on it."""
    s = PostgresStore(pg_dsn)
    create(s, "s1", host=HOST, connector="neonize", auth=AuthKind.STORE)
    yield s
    s.close()


@dataclass
class Runner:
    """One runner's connector, reporting through the runner's real Reporter and Events
    on its own store connection, fenced by the lease it took."""

    connector: NeonizeConnector
    task: asyncio.Task[None]
    reporter: Reporter
    db: PostgresStore
    wheres: list[ClientStore | None] = field(default_factory=list)
    clients: list[StandIn] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)

    async def close(self) -> None:
        self.task.cancel()
        await self.connector.close()
        await self.reporter.close()
        self.db.close()


def start(tmp_path: Path, dsn: str, auth: AuthKind = AuthKind.STORE) -> Runner:
    settings = make_settings(home=tmp_path, host_id=HOST, database_url=dsn)
    db = PostgresStore(dsn)
    db.set_fence(db.acquire_lease("s1", HOST, 30.0).fence)
    reporter = Reporter(db, "s1", LiveState.from_session(db.get_session("s1")))
    reporter.start()
    outbox = Outbox(db, "s1", StatePaths(tmp_path), reporter.call, (0.0,), 5.0)
    events = Events(reporter, outbox)
    made: list[ClientStore | None] = []
    clients: list[StandIn] = []

    def factory(path: str, uuid: str, session: str, where: ClientStore | None) -> StandIn:
        made.append(where)
        clients.append(StandIn(ends_on_stop=True))
        return clients[-1]

    connector = NeonizeConnector(
        "s1", tmp_path / "tokens" / "s1", events, settings, client_factory=factory
    )
    connector.context = ConnectorContext(auth=auth, store=db, call=reporter.call, host=HOST)
    runner = Runner(connector, asyncio.create_task(connector.run()), reporter, db, made, clients)
    reporter.on_lost = runner.lost.append
    return runner


async def connected_as(client: StandIn, jid: pb.JID) -> None:
    """What whatsmeow sends once a pairing is done: its Device (neonize keeps it as
    client.me), then Connected."""
    await client.emit(pb.Device(JID=jid))
    await client.emit(pb.Connected(status=True))


def device(user: str = OWN, number: int = 7) -> pb.JID:
    return pb.JID(User=user, Device=number, Server="s.whatsapp.net", RawAgent=0, Integrator=0)


def test_a_pairing_keeps_its_device_and_the_next_runner_opens_that_device(
    tmp_path: Path, pg_dsn: str, store: PostgresStore
) -> None:
    wdsn = whatsmeow_dsn(pg_dsn, {})
    assert wdsn.endswith("sslmode=disable"), "the test server is on loopback, without TLS"

    async def first() -> None:
        r = start(tmp_path, pg_dsn)
        await until(lambda: r.clients)
        assert r.wheres == [ClientStore(wdsn, new_device=True)], "never paired: pair one"
        # PairSuccess: whatsmeow saved the device, and connects again as it
        success = pb.PairStatus(ID=device(), Status=pb.PairStatus.SUCCESS)
        await r.clients[0].emit(success)
        await until(lambda: store.get_session("s1").device_jid == JID)
        assert store.get_session("s1").phone is None, "named before it is connected"
        await connected_as(r.clients[0], device())
        await until(lambda: store.get_session("s1").status == Status.CONNECTED)
        row = store.get_session("s1")
        assert (row.phone, row.device_jid) == (OWN, JID)
        await r.close()

    asyncio.run(first())
    # whatsmeow wrote the paired device into its own tables of the same database
    assert _whatsmeow_open(wdsn) == ""
    add_device(pg_dsn, JID)

    async def second() -> None:
        r = start(tmp_path / "b", pg_dsn)  # another runner, as on another host
        await until(lambda: r.clients)
        assert r.wheres == [ClientStore(wdsn, jid=JID)], "its own device, no new QR"
        await connected_as(r.clients[0], device())
        await until(lambda: store.get_session("s1").status == Status.CONNECTED)
        assert store.get_session("s1").device_jid == JID
        await r.close()

    asyncio.run(second())
    # and what neonize's real NewAClient gets from that: the saved device, by its JID
    opened = new_client("unused.db", "s1#1", "s1", ClientStore(wdsn, jid=JID))
    assert (opened.name, opened.new_device) == (wdsn, False)
    assert (opened.jid.User, opened.jid.Device, opened.jid.Server) == (OWN, 7, "s.whatsapp.net")
    assert opened.uuid == b"s1#1", "named by its generation, not by the JID's user"


def test_a_saved_device_whatsmeow_lost_is_an_error_status_until_a_logout(
    tmp_path: Path, pg_dsn: str, store: PostgresStore
) -> None:
    """neonize 0.5.2 crashes the process (a Go nil-pointer panic) when asked to open a
    JID whatsmeow does not hold: under supervisord, a crash loop. The runner stays up in
    status error instead, opens no client, and a logout pairs a new device."""
    store.set_runtime("s1", {"phone": OWN, "device_jid": JID}, actor="runner")
    assert _whatsmeow_open(whatsmeow_dsn(pg_dsn, {})) == ""  # whatsmeow's tables, no device

    async def scenario() -> None:
        r = start(tmp_path, pg_dsn)
        await until(lambda: store.get_session("s1").status == Status.ERROR)
        error = store.get_session("s1").last_error or ""
        assert error == (
            f"device {JID} not in the auth store (logged out elsewhere, or its rows "
            "deleted): pair again with `zapvisor logout s1`"
        )
        assert "zv-test-pw" not in error
        await asyncio.sleep(0.3)  # no retry loop: nothing more happens by itself
        assert r.clients == [] and not r.task.done()
        await r.connector.logout()
        await until(lambda: r.clients)
        assert r.wheres == [ClientStore(whatsmeow_dsn(pg_dsn, {}), new_device=True)]
        await until(lambda: store.get_session("s1").device_jid is None)
        assert store.get_session("s1").phone is None
        await r.close()

    asyncio.run(scenario())


def test_a_runner_whose_lease_moved_on_cannot_keep_its_pairing(
    tmp_path: Path, pg_dsn: str, store: PostgresStore
) -> None:
    async def scenario() -> None:
        r = start(tmp_path, pg_dsn)
        await until(lambda: r.clients)
        newer = PostgresStore(pg_dsn)
        assert newer.acquire_lease("s1", HOST, 30.0).epoch == 2  # a newer runner here
        await connected_as(r.clients[0], device(number=9))
        await until(lambda: r.lost)
        assert "s1" in r.lost[0]
        row = store.get_session("s1")
        assert row.device_jid is None and row.phone is None, "the stale pairing is refused"
        newer.close()
        await r.close()

    asyncio.run(scenario())


def test_local_auth_opens_the_sessions_own_file(
    tmp_path: Path, pg_dsn: str, store: PostgresStore
) -> None:
    """The same connector with auth local: no store, no device JID, as before."""
    store.set_failover("s1", auth=AuthKind.LOCAL, failover=None, actor="op")

    async def scenario() -> None:
        r = start(tmp_path, pg_dsn, AuthKind.LOCAL)
        await until(lambda: r.clients)
        assert r.wheres == [None]
        await connected_as(r.clients[0], device())
        await until(lambda: store.get_session("s1").status == Status.CONNECTED)
        assert store.get_session("s1").device_jid is None
        await r.close()

    asyncio.run(scenario())
