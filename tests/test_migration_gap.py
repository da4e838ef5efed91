"""Migrations are applied by the set of versions a database has, not by the newest one:
a version may ship after a newer one (two changes made side by side), and a database that
already has the newer one still gets the late one when it arrives, once. Runs on the
sqlite and postgres stores (the supabase store changes its schema through the postgres
one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ecosystem.store import Store, migrations, pgcommon
from ecosystem.store.migrations import Migration
from ecosystem.store.sqlite import SQLiteStore
from tests.conftest import PgCluster

LATE = Migration(6, "late_arrival", "CREATE TABLE zv_late_arrival (x integer);")


@pytest.fixture(params=["sqlite", "postgres"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store on an empty database, nothing migrated yet."""
    if request.param == "sqlite":
        store: Store = SQLiteStore(tmp_path / "zv.db")
        yield store
        store.close()
        return
    from ecosystem.store.postgres import PostgresStore

    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = f"zv_gap_{len(cluster.made)}"
    cluster.server.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    cluster.made.append(name)
    store = PostgresStore(cluster.dsn(name))
    yield store
    store.close()
    cluster.drop_database(name)


def test_a_missing_version_is_applied_when_it_arrives(
    fresh: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialect = "sqlite" if fresh.kind == "sqlite" else "postgres"
    shipped = migrations.load(dialect)
    versions = [m.version for m in shipped]
    assert 6 not in versions and 12 in versions, "no 0006 ships: it stands for a late one"
    applied = fresh.migrate()
    assert applied == [f"{m.version:04d}_{m.name}" for m in shipped]
    newest = fresh.schema_version()

    assert fresh.applied_versions() == set(versions)
    real = migrations.load
    monkeypatch.setattr(
        migrations, "load", lambda d: sorted([*real(d), LATE], key=lambda m: m.version)
    )
    # `db status`, `db sql` and `doctor` see it missing, though a newer one is in
    assert migrations.pending(dialect, fresh.applied_versions()) == [LATE]
    if dialect == "postgres":
        script = pgcommon.migration_script(fresh.applied_versions())
        assert "-- 0006_late_arrival" in script and "-- 0012" not in script
    assert fresh.migrate() == ["0006_late_arrival"]
    assert fresh.migrate() == []
    assert fresh.schema_version() == newest
    assert migrations.pending(dialect, fresh.applied_versions()) == []
