"""The store contract for a neonize session's device JID (migration 0011), on every store
(sqlite, postgres, supabase through the PostgREST-shaped server): read with the session,
written by its runner with its other reports and fenced by the runner's lease epoch like
them, carried by `zapvisor db copy`; and where a new neonize session's auth lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecosystem import moves
from ecosystem.errors import CannotMove, InvalidValue, LeaseLost
from ecosystem.lease import AuthKind, Fence
from ecosystem.states import Status
from ecosystem.store import Store
from ecosystem.store.sqlite import SQLiteStore
from tests.test_store_contract import (  # noqa: F401 - fixtures
    StoreFactory,
    create,
    store,
    store_factory,
)

JID = "5511999999999:7@s.whatsapp.net"
TTL = 30.0


def _runner(factory: StoreFactory, name: str) -> tuple[Store, Fence]:
    """A second connection, as a runner has: it takes the lease and writes under it."""
    mine = factory()
    lease = mine.acquire_lease(name, "h1", TTL)
    mine.set_fence(lease.fence)
    return mine, lease.fence


def test_the_device_jid_is_a_runners_report_fenced_by_its_epoch(
    store_factory: StoreFactory,  # noqa: F811
) -> None:
    store = store_factory()  # noqa: F811
    made = create(store, "sales", connector="neonize", auth=AuthKind.STORE)
    assert made.device_jid is None, "not paired yet"
    old, old_fence = _runner(store_factory, "sales")
    paired = old.set_runtime(
        "sales",
        {"status": Status.CONNECTED, "phone": "5511999999999", "device_jid": JID},
        actor="runner",
    )
    assert paired.device_jid == JID
    assert store.get_session("sales").device_jid == JID
    assert [s.device_jid for s in store.list_sessions()] == [JID]

    # a newer runner of the session took the lease: the old one's pairing is refused
    new, new_fence = _runner(store_factory, "sales")
    assert new_fence.epoch == old_fence.epoch + 1
    with pytest.raises(LeaseLost, match="sales"):
        old.set_runtime("sales", {"device_jid": "5511000000000:3@s.whatsapp.net"}, actor="runner")
    assert store.get_session("sales").device_jid == JID, "the refused write changed nothing"

    # the current runner's logout clears it (the next client pairs a new device)
    new.set_runtime("sales", {"phone": None, "device_jid": None}, actor="runner")
    assert store.get_session("sales").device_jid is None
    for s in (old, new):
        s.close()


def test_db_copy_carries_the_device_and_where_the_auth_lives(
    store: Store,  # noqa: F811
    tmp_path: Path,
) -> None:
    """`zapvisor db copy` reads the SQLite store and imports into any store: the JID and
    the auth kind arrive as they were (0011's zapvisor_import on PostgreSQL)."""
    src = SQLiteStore(tmp_path / "src.db")
    src.migrate()
    create(src, "sales", connector="neonize")
    src.set_runtime("sales", {"phone": "5511999999999", "device_jid": JID}, actor="runner")
    create(src, "pinned", connector="neonize")
    src.set_failover("pinned", auth=None, failover=False, actor="op")
    assert store.import_rows(src.list_sessions(), [], actor="copy") == 2
    got = {s.name: s for s in store.list_sessions()}
    assert got["sales"].device_jid == JID and got["sales"].phone == "5511999999999"
    assert got["pinned"].device_jid is None and got["pinned"].failover is False
    assert {s.auth for s in got.values()} == {AuthKind.LOCAL}
    src.close()


@pytest.mark.parametrize(
    ("store_kind", "auth"),
    [("postgres", AuthKind.STORE), ("supabase", AuthKind.LOCAL), ("sqlite", AuthKind.LOCAL)],
)
def test_where_a_new_neonize_sessions_auth_lives(store_kind: str, auth: AuthKind) -> None:
    """Store auth by default where whatsmeow can keep it (a PostgreSQL the hosts share),
    so the session can fail over; Supabase's REST API gives whatsmeow no connection."""
    assert moves.choose_auth(store_kind, "neonize", None) == auth
    assert moves.choose_auth(store_kind, "neonize", AuthKind.LOCAL) == AuthKind.LOCAL
    if auth == AuthKind.STORE:
        assert moves.choose_auth(store_kind, "neonize", AuthKind.STORE) == AuthKind.STORE
        return
    with pytest.raises(InvalidValue) as refused:
        moves.choose_auth(store_kind, "neonize", AuthKind.STORE)
    assert ("ZAPVISOR_DATABASE_URL" in str(refused.value)) == (store_kind == "supabase")
    assert moves.choose_auth("supabase", "sim", None) == AuthKind.STORE, "sim unchanged"


def test_a_neonize_session_with_store_auth_can_move_one_with_local_cannot(
    store: Store,  # noqa: F811
) -> None:
    if store.kind == "sqlite":
        local = create(store, "sales", connector="neonize")
        assert local.auth == moves.choose_auth("sqlite", "neonize", None) == AuthKind.LOCAL
        assert moves.failover_note(local).startswith("cannot fail over")
        with pytest.raises(CannotMove, match="auth local"):
            moves.ask(store, "sales", "h2", actor="op")
        return
    auth = moves.choose_auth(store.kind, "neonize", None)
    s = create(store, "sales", connector="neonize", auth=auth)
    if store.kind == "supabase":
        assert s.auth == AuthKind.LOCAL
        return
    assert s.auth == AuthKind.STORE and s.can_fail_over
    assert moves.failover_note(s).startswith("fails over")
    store.host_beat("h2", TTL, {"base_port": 4001, "max_sessions": 10})
    before, state = moves.ask(store, "sales", "h2", actor="op")
    assert before.auth == AuthKind.STORE and state == "requested", "h1 hands it over"
    pinned = create(store, "pinned", connector="neonize", auth=AuthKind.LOCAL)
    assert moves.failover_note(pinned).startswith("cannot fail over")
    with pytest.raises(CannotMove, match="auth local"):
        moves.ask(store, "pinned", "h2", actor="op")
