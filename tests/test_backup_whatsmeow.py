"""`zapvisor backup` / `restore` of neonize sessions whose auth lives in whatsmeow's own
tables in the fleet's PostgreSQL: a real PostgreSQL (tests/pgserver.py), whatsmeow's
real schema (made by whatsmeow itself through neonize's Go side, which reaches no
WhatsApp server: the restore creates it the same way on a database that lacks it), a
device's rows as whatsmeow writes them after a pairing (tests/whatsmeow_rows.py: keys
are random bytes, WhatsApp cannot be reached from here). Sessions are stopped, so the
restore starts no runner; the runner's own check of the device is then run with
neonize's client as the stand-in of tests/neonize_harness.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from ecosystem import backup_archive
from ecosystem.backup_archive import ArchiveError
from ecosystem.errors import SessionExists, StoreError, ZapvisorError
from ecosystem.lease import AuthKind
from ecosystem.models import NewSession
from ecosystem.orchestrator import Orchestrator
from ecosystem.states import DesiredState, Status
from ecosystem.store import Store
from ecosystem.store.postgres import PostgresStore
from ecosystem.whatsmeow_devices import device_present
from ecosystem.whatsmeow_dsn import whatsmeow_dsn
from ecosystem.whatsmeow_restore import create_tables
from runner.connectors.neonize_store import ClientStore
from tests.conftest import Env, PgCluster
from tests.neonize_harness import OWN, until
from tests.test_backup_archive import _tar
from tests.test_backup_store_auth import _members
from tests.test_neonize_auth import start
from tests.whatsmeow_rows import count_rows, device_rows, fill_device

pytestmark = pytest.mark.e2e

JID = f"{OWN}:7@s.whatsapp.net"
STRANGER = "5511777777777:3@s.whatsapp.net"
"""A device of no session of the backup: it stays out of it."""


@dataclass
class Fleet:
    """Two databases of one PostgreSQL: the backup's, with session s1 (neonize, auth in
    the store, paired as JID) of host h1, and a fresh one to restore into."""

    pg: PgCluster
    make_env: Callable[..., Env]
    first: str
    second: str
    archive: Path

    def dsn(self, name: str) -> str:
        return self.pg.dsn(name)

    def orchestrator(self, db: str | None) -> tuple[Orchestrator, Env]:
        """A fresh machine (its own state dir) on database ``db`` (None: SQLite)."""
        env = self.make_env()
        url = {"database_url": self.dsn(db)} if db else {}
        return Orchestrator(env.settings(host_id="h1", **url)), env


def _paired_session(store: Store, env: Env) -> None:
    """Session s1 of host h1: neonize, its auth in the store, paired as JID, stopped."""
    ports = range(env.base_port, env.base_port + env.max_sessions)
    store.create_session(
        NewSession(name="s1", connector="neonize", auth=AuthKind.STORE,
                   desired_state=DesiredState.STOPPED),
        host="h1", ports=ports, exclude_ports=(), max_sessions=10, actor="t",
    )  # fmt: skip
    store.set_runtime("s1", {"phone": OWN, "device_jid": JID}, actor="runner")


@pytest.fixture
def fleet(pg_cluster: PgCluster, make_env: Callable[..., Env]) -> Iterator[Fleet]:
    first, second = pg_cluster.new_database(), pg_cluster.new_database()
    dsn = pg_cluster.dsn(first)
    env = make_env()
    store = PostgresStore(dsn)
    try:
        _paired_session(store, env)
        create_tables(dsn)
        fill_device(dsn, JID, pre_keys=40, sessions=6, contacts=8)
        fill_device(dsn, STRANGER, pre_keys=3, sessions=1, contacts=1)
        orch = Orchestrator(env.settings(database_url=dsn, host_id="h1"))
        archive = env.home.parent / "zv.tar.gz"
        report = orch.backup(archive)
        orch.close()
        assert (report.sessions, report.store_auth, report.whatsmeow_devices) == (["s1"], 1, 1)
        yield Fleet(pg_cluster, make_env, first, second, archive)
    finally:
        store.close()
        pg_cluster.drop_database(first)
        pg_cluster.drop_database(second)


def test_a_store_auth_device_comes_back_byte_for_byte_on_a_fresh_database(
    fleet: Fleet, tmp_path: Path
) -> None:
    first, second = fleet.dsn(fleet.first), fleet.dsn(fleet.second)
    assert not device_present(second, JID), "whatsmeow never ran on the new database"
    assert b"\x00" not in fleet.archive.read_bytes()[:2]  # a gzip'd tar, keys inside
    orch, _ = fleet.orchestrator(fleet.second)
    try:
        report = orch.restore(fleet.archive)
    finally:
        orch.close()
    assert report.sessions == ["s1"] and report.failed == {}
    assert device_present(second, JID)
    before, after = device_rows(first, JID), device_rows(second, JID)
    assert after == before, "every row, every byte"
    assert len(after["whatsmeow_pre_keys"]) == 40 and len(after["whatsmeow_lid_map"]) == 2
    assert after["whatsmeow_app_state_mutation_macs"], "a table two foreign keys away"
    assert after["whatsmeow_privacy_tokens"], "a table with no foreign key to the device"
    assert not device_present(second, STRANGER)
    counts = count_rows(second)
    assert counts["whatsmeow_pre_keys"] == 40 and counts["whatsmeow_lid_map"] == 2
    assert counts["whatsmeow_version"] == 1, "whatsmeow's own version row, not a copy"

    # the restored session's runner opens its saved device: no error, no new QR
    store = PostgresStore(second)
    try:
        session = store.get_session("s1")
        assert (session.device_jid, session.phone, session.auth) == (JID, OWN, AuthKind.STORE)

        async def runner() -> None:
            r = start(tmp_path, second)
            await until(lambda: r.clients)
            assert r.wheres == [ClientStore(whatsmeow_dsn(second, {}), jid=JID)]
            assert store.get_session("s1").status != Status.ERROR
            await r.close()

        asyncio.run(runner())
    finally:
        store.close()


def _rebuilt(blob: bytes, changes: dict[str, bytes | None], fmt: int | None = None) -> bytes:
    """The archive with members changed (None: removed) and its manifest made to match:
    well formed, its contents wrong (or of an older format)."""
    members = _members(blob)
    manifest = json.loads(members.pop(backup_archive.MANIFEST))
    for name, data in changes.items():
        if data is None:
            members.pop(name)
        else:
            members[name] = data
    manifest["members"] = {n: hashlib.sha256(d).hexdigest() for n, d in members.items()}
    manifest["format"] = fmt or manifest["format"]
    return _tar({**members, backup_archive.MANIFEST: json.dumps(manifest).encode()})


def test_a_bad_whatsmeow_member_is_refused_and_changes_nothing(fleet: Fleet) -> None:
    blob = fleet.archive.read_bytes()
    lines = _members(blob)[backup_archive.WHATSMEOW].splitlines(keepends=True)
    assert len(lines) > 60 and not any(STRANGER.encode() in line for line in lines)
    rows = [json.loads(line) for line in lines]
    pre_key = next(i for i, r in enumerate(rows) if r["table"] == "whatsmeow_pre_keys")

    def edited(i: int, **change: object) -> bytes:
        out = list(lines)
        out[i] = json.dumps({**rows[i], **change}).encode() + b"\n"
        return b"".join(out)

    member = backup_archive.WHATSMEOW
    bad = {
        "cut line": b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2],
        "bad base64": edited(pre_key, row={**rows[pre_key]["row"], "key": "@@not base64"}),
        "other device": edited(pre_key, device=STRANGER),
        "row of another": edited(pre_key, row={**rows[pre_key]["row"], "jid": STRANGER}),
        "unknown table": edited(pre_key, table="whatsmeow_nope"),
        "no device row": b"".join(line for line in lines if b'"whatsmeow_device"' not in line),
    }
    orch, env = fleet.orchestrator(fleet.second)
    second = fleet.dsn(fleet.second)
    try:
        orch.paths.ensure()  # what any restore makes first
        before = sorted(p.name for p in env.home.iterdir())
        why = {}
        for case, data in bad.items():
            path = env.home.parent / f"{case.replace(' ', '-')}.tar.gz"
            path.write_bytes(_rebuilt(blob, {member: data}))
            with pytest.raises(ZapvisorError) as caught:
                orch.restore(path)
            why[case] = str(caught.value)
            assert "\n" not in why[case] and "zv-test-pw" not in why[case]
            assert orch.store.list_sessions() == [], case
            assert not device_present(second, JID), case
            assert sorted(p.name for p in env.home.iterdir()) == before, case
        assert why["cut line"].startswith("line ") and "is not JSON" in why["cut line"]
        assert "is not base64" in why["bad base64"]
        assert "belong to no neonize session" in why["other device"]
        assert f"not device {JID}'s" in why["row of another"]
        assert "lack the table whatsmeow_nope" in why["unknown table"]
        assert "before its device row" in why["no device row"]
        # a truncated archive: refused before anything is read
        cut = env.home.parent / "cut.tar.gz"
        cut.write_bytes(blob[: len(blob) * 2 // 3])
        with pytest.raises(ArchiveError, match="truncated"):
            orch.restore(cut)
        assert orch.store.list_sessions() == [] and not device_present(second, JID)
    finally:
        orch.close()


def test_a_device_already_there_is_refused_unless_forced(fleet: Fleet) -> None:
    """The device's JID in whatsmeow's tables here (no session of that name): refused,
    the rows there untouched; --force replaces them with the backup's, the tables
    without a foreign key to the device included."""
    second = fleet.dsn(fleet.second)
    create_tables(second)
    fill_device(second, JID, pre_keys=2, sessions=1, contacts=1, seed=99)
    there = device_rows(second, JID)
    orch, _ = fleet.orchestrator(fleet.second)
    try:
        with pytest.raises(ZapvisorError, match=r"whatsmeow devices already here: .*\(s1\)"):
            orch.restore(fleet.archive)
        assert orch.store.list_sessions() == [] and device_rows(second, JID) == there
        report = orch.restore(fleet.archive, force=True)
        assert report.sessions == ["s1"]
        now, backed_up = device_rows(second, JID), device_rows(fleet.dsn(fleet.first), JID)
        # whatsmeow_lid_map is shared: a number already mapped here keeps its row
        assert now.pop("whatsmeow_lid_map") == there["whatsmeow_lid_map"]
        backed_up.pop("whatsmeow_lid_map")
        assert now == backed_up
        # the session itself is now here: refused again, as any session is
        with pytest.raises(SessionExists, match="--force"):
            orch.restore(fleet.archive)
    finally:
        orch.close()


def test_a_sqlite_store_refuses_whatsmeow_devices(fleet: Fleet) -> None:
    """whatsmeow keeps store auth only in PostgreSQL: such a session could not run on
    SQLite, so the restore says where to restore instead and changes nothing."""
    orch, env = fleet.orchestrator(None)
    try:
        assert orch.store.kind == "sqlite"
        with pytest.raises(ZapvisorError, match=r"sessions s1 .* restore onto a PostgreSQL"):
            orch.restore(fleet.archive)
        assert orch.store.list_sessions() == []
        # the operator's view: one line, non-zero
        done = env.cli("restore", str(fleet.archive), check=False)
        assert done.returncode != 0 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and "(ZAPVISOR_DATABASE_URL=" in done.stderr
        assert orch.store.list_sessions() == []
    finally:
        orch.close()


def test_whatsmeow_tables_older_than_the_backups_are_refused(fleet: Fleet) -> None:
    """whatsmeow's tables here lack a column the backup's rows carry (an older whatsmeow
    made them): refused, saying which and what to do, nothing written."""
    second = fleet.dsn(fleet.second)
    create_tables(second)
    with psycopg.connect(second, autocommit=True) as conn:
        conn.execute("ALTER TABLE whatsmeow_device DROP COLUMN companion_meta_nonce")
        row = conn.execute("SELECT version FROM whatsmeow_version").fetchone()
    assert row is not None
    orch, _ = fleet.orchestrator(fleet.second)
    try:
        with pytest.raises(ZapvisorError) as caught:
            orch.restore(fleet.archive)
        assert str(caught.value) == (
            "whatsmeow's tables here lack columns companion_meta_nonce of whatsmeow_device, "
            f"which the backup (whatsmeow schema {row[0]}) carries: restore with a zapvisor whose "
            "neonize is at least as new as the one that made it; nothing restored"
        )
        assert orch.store.list_sessions() == [] and not device_present(second, JID)
    finally:
        orch.close()


def test_a_format_2_backup_still_restores(fleet: Fleet) -> None:
    """A backup made before whatsmeow's rows travelled: its sessions come back (a
    neonize one with store auth then needs a new pairing, as it did)."""
    old = fleet.archive.with_name("old.tar.gz")
    old.write_bytes(_rebuilt(fleet.archive.read_bytes(), {backup_archive.WHATSMEOW: None}, 2))
    orch, _ = fleet.orchestrator(fleet.second)
    try:
        report = orch.restore(old)
        assert report.sessions == ["s1"]
        assert orch.store.get_session("s1").device_jid == JID
        assert not device_present(fleet.dsn(fleet.second), JID)
    finally:
        orch.close()


def test_a_device_whatsmeow_lost_is_named_at_backup(
    pg_cluster: PgCluster, make_env: Callable[..., Env]
) -> None:
    """The session names a device whatsmeow no longer holds: the backup goes on, says
    that session will need a new QR, and carries no rows for it."""
    db = pg_cluster.new_database()
    dsn = pg_cluster.dsn(db)
    env = make_env()
    said: list[str] = []
    orch = Orchestrator(env.settings(database_url=dsn, host_id="h1"), progress=said.append)
    try:
        _paired_session(orch.store, env)
        create_tables(dsn)
        archive = env.home.parent / "lost.tar.gz"
        report = orch.backup(archive)
        assert (report.store_auth, report.whatsmeow_devices) == (0, 0)
        assert said == [
            f"warning: session s1's device {JID} is not in whatsmeow's tables: "
            "it will need a new QR after a restore"
        ]
        assert _members(archive.read_bytes())[backup_archive.WHATSMEOW] == b""
    finally:
        orch.close()
        pg_cluster.drop_database(db)


def test_whatsmeow_that_cannot_create_its_tables_says_why(pg_cluster: PgCluster) -> None:
    """The one line an operator gets when whatsmeow cannot open the database (here a
    wrong password): whatsmeow's reason, what to do, and never the password."""
    dsn = pg_cluster.dsn("postgres", password="not-the-password-42")
    with pytest.raises(StoreError) as caught:
        create_tables(dsn)
    why = str(caught.value)
    assert why.startswith("cannot create whatsmeow's tables here (error: ")
    assert "password authentication failed" in why and "\n" not in why
    assert "not-the-password-42" not in why and why.endswith("nothing restored")


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://zv:s3cr%zzet@127.0.0.1:1/zv",  # a '%' not percent-encoded
        "postgresql://zv:s3cr%zzet@[::1/zv",  # a host psycopg cannot parse: all quoted
    ],
)
def test_an_unusable_dsn_never_shows_its_password(dsn: str) -> None:
    """psycopg quotes the part of a connection string it cannot parse, which may be the
    password: whatsmeow's store (ZAPVISOR_DATABASE_URL, also beside a Supabase store,
    whose own connection never reads it) says what is wrong without it. Nothing is
    reached: the string fails before any connection."""
    from ecosystem.models import Session
    from ecosystem.whatsmeow_devices import forget_device
    from ecosystem.whatsmeow_dump import Dump

    jid = "5511999990000:1@s.whatsapp.net"
    session = Session(
        name="loja", host="h1", port=3001, connector="neonize", auth=AuthKind.STORE, device_jid=jid
    )
    attempts: list[Callable[[], object]] = [
        lambda: list(Dump(dsn, [session], lambda _: None).lines()),
        lambda: device_present(dsn, jid),
        lambda: forget_device(dsn, jid),
    ]
    for attempt in attempts:
        with pytest.raises(StoreError) as info:
            attempt()
        message = str(info.value)
        assert "s3cr" not in message and "\n" not in message
        assert "ZAPVISOR_DATABASE_URL" in message and "percent-encode" in message


def test_the_dump_and_the_target_never_show_their_dsn() -> None:
    """A backup's or restore's state printed by a traceback or a debug line must not
    carry the store's password (the DSN is a field of both)."""
    from ecosystem.whatsmeow_dump import Dump
    from ecosystem.whatsmeow_restore import Target

    dsn = "postgresql://zv:s3cret-pw@db/zv"
    dump = Dump(dsn, [], lambda _: None)
    assert "s3cret-pw" not in repr(dump) and dump.dsn == dsn
    fields = Target.__dataclass_fields__
    assert fields["dsn"].repr is False
