"""The fleet hosts part of the store contract (migration 0005). It runs on every store
the contract suite's ``store_factory`` is parametrised with (sqlite, postgres, and
supabase through the PostgREST-shaped emulator)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from ecosystem.errors import HostBusy, HostExists, HostNotFound
from ecosystem.fleet.records import NewHost
from ecosystem.models import utcnow
from ecosystem.store import Store
from tests.test_store_contract import (  # noqa: F401 - fixtures
    PORTS,
    StoreFactory,
    create,
    store,
    store_factory,
)


def new_host(name: str = "vps2", **fields: object) -> NewHost:
    values: dict[str, object] = {
        "name": name,
        "address": "203.0.113.7",
        "ssh_user": "deploy",
        "base_port": 3001,
        "max_sessions": 40,
        "zapvisor_path": "/home/deploy/.zapvisor/zapvisor",
        "version": "0.1.0",
        "host_key": "SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    }
    values.update(fields)
    return NewHost.model_validate(values)


def test_add_get_list_update_remove(store: Store) -> None:  # noqa: F811
    before = utcnow() - timedelta(seconds=1)
    added = store.add_host(new_host(identity_file="/root/.ssh/id_ed25519"), actor="ana")
    assert added.name == "vps2" and added.ssh_user == "deploy" and added.ssh_port == 22
    assert added.identity_file == "/root/.ssh/id_ed25519"
    assert added.base_port == 3001 and added.max_sessions == 40
    assert added.added_by == "ana" and added.last_seen is None
    assert before <= added.added_at <= utcnow() + timedelta(seconds=1)
    assert added.added_at.utcoffset() == timedelta(0)
    assert added.target == "deploy@203.0.113.7"

    store.add_host(new_host("a-first", address="2001:db8::1", ssh_port=2222), actor="ana")
    assert [h.name for h in store.list_hosts()] == ["a-first", "vps2"]
    assert store.get_host("a-first").target == "deploy@[2001:db8::1]:2222"

    seen = utcnow().replace(microsecond=0)
    changed = store.update_host("vps2", {"version": "0.2.0", "last_seen": seen})
    assert changed.version == "0.2.0" and changed.last_seen == seen
    assert changed.added_by == "ana" and changed.max_sessions == 40
    assert store.get_host("vps2").version == "0.2.0"

    store.remove_host("vps2", actor="ana")
    with pytest.raises(HostNotFound, match="vps2"):
        store.get_host("vps2")
    assert [h.name for h in store.list_hosts()] == ["a-first"]


def test_the_audit_trail_records_host_actions(store: Store) -> None:  # noqa: F811
    store.add_host(new_host(), actor="ana", detail={"target": "deploy@203.0.113.7"})
    store.update_host(
        "vps2", {"version": "0.2.0"}, actor="bia", action="host_upgrade", detail={"to": "0.2.0"}
    )
    store.update_host("vps2", {"last_seen": utcnow()})  # a look, not an action
    store.remove_host("vps2", actor="ana", detail={"from": "laptop"})
    events = [(e.action, e.actor, e.session_name, e.detail) for e in store.list_events()]
    assert events == [
        ("host_remove", "ana", None, {"from": "laptop"}),
        ("host_upgrade", "bia", None, {"to": "0.2.0"}),
        ("host_add", "ana", None, {"target": "deploy@203.0.113.7"}),
    ]


def test_names_clash_and_unknown_names(store: Store) -> None:  # noqa: F811
    store.add_host(new_host(), actor="ana")
    with pytest.raises(HostExists, match="'vps2' is already in the fleet"):
        store.add_host(new_host(address="198.51.100.1"), actor="bia")
    assert store.get_host("vps2").address == "203.0.113.7"
    with pytest.raises(HostNotFound, match="no host named 'nope'"):
        store.update_host("nope", {"version": "9"})
    with pytest.raises(HostNotFound, match="no host named 'nope'"):
        store.remove_host("nope", actor="ana")
    with pytest.raises(ValueError, match="name"):
        store.update_host("vps2", {"name": "other"})
    assert len([e for e in store.list_events() if e.action == "host_add"]) == 1


def test_a_host_that_holds_sessions_is_not_removed(store: Store) -> None:  # noqa: F811
    store.add_host(new_host(), actor="ana")
    create(store, "cliente-1", host="vps2")
    create(store, "cliente-2", host="vps2")
    create(store, "elsewhere", host="h1")
    with pytest.raises(HostBusy, match=r"2 session\(s\) \(cliente-1, cliente-2\)"):
        store.remove_host("vps2", actor="ana")
    assert store.get_host("vps2").name == "vps2"
    store.delete_session("cliente-1", actor="ana")
    store.delete_session("cliente-2", actor="ana")
    store.remove_host("vps2", actor="ana")
    assert store.list_hosts() == []


def test_removal_and_creation_on_the_host_race_cleanly(
    store_factory: StoreFactory,  # noqa: F811
) -> None:
    """A session created on the host while it is removed: either the session was first
    (removal refused) or the host is gone first; never a removed host with a session
    the removal did not see."""
    first, second = store_factory(), store_factory()
    first.add_host(new_host(), actor="ana")
    errors: list[Exception] = []

    def remove() -> None:
        try:
            first.remove_host("vps2", actor="ana")
        except HostBusy as exc:
            errors.append(exc)

    thread = threading.Thread(target=remove)
    thread.start()
    create(second, "racer", host="vps2")
    thread.join(30)
    hosts = [h.name for h in first.list_hosts()]
    if errors:
        assert hosts == ["vps2"]
    else:
        assert hosts == []
    assert [s.name for s in first.list_sessions("vps2")] == ["racer"]
    assert PORTS.start == first.get_session("racer").port
