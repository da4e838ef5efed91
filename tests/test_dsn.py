"""ZAPVISOR_DATABASE_URL in libpq's key=value form is read as the URL every reader takes
(ecosystem/dsn.py): psycopg reads both forms, whatsmeow (neonize) a URL only, and took
anything else for a SQLite file's name. libpq's own parser (psycopg's conninfo_to_dict)
is the judge of "the same connection"; the last test opens whatsmeow's store on a real
PostgreSQL through the converted setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from ecosystem.dsn import as_url
from ecosystem.errors import ConfigError
from ecosystem.settings import Settings, load_settings
from ecosystem.whatsmeow_dsn import whatsmeow_dsn
from tests.conftest import PgCluster
from tests.test_neonize_auth_dsn import _whatsmeow_open


@pytest.mark.parametrize(
    ("pairs", "url"),
    [
        ("host=127.0.0.1 port=5432 user=u password=p@w:/?# dbname=db",
         "postgresql://u:p%40w%3A%2F%3F%23@127.0.0.1:5432/db"),
        ("host=/run/postgresql dbname='my db' password='a b\\'c'",
         "postgresql://:a%20b%27c@/my%20db?host=%2Frun%2Fpostgresql"),
        ("host=::1 port=5433 user=u dbname=x sslmode=require connect_timeout=5",
         "postgresql://u@[::1]:5433/x?sslmode=require&connect_timeout=5"),
        ("dbname=zv", "postgresql:///zv"),
        ("host=h1,h2 port=1,2 user=u", "postgresql://u@?host=h1%2Ch2&port=1%2C2"),
        ("user = u  password= x dbname =d", "postgresql://u:x@/d"),
        ("host=db.example.com user=zv%x password=p%25 application_name=a&b",
         "postgresql://zv%25x:p%2525@db.example.com?application_name=a%26b"),
        ("host=h port=5432 password=\\'q\\\\", "postgresql://:%27q%5C@h:5432"),
    ],
)  # fmt: skip
def test_key_value_pairs_become_the_url_of_the_same_connection(pairs: str, url: str) -> None:
    assert as_url(pairs) == url
    assert conninfo_to_dict(url) == conninfo_to_dict(pairs)


def test_a_url_is_kept_as_it_is() -> None:
    url = "postgres://u:p%40w@db.example.com:6543/zv?sslmode=require"
    assert as_url(url) == url


def _load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dsn: str) -> Settings:
    monkeypatch.setenv("ZAPVISOR_HOME", str(tmp_path))
    monkeypatch.setenv("ZAPVISOR_DATABASE_URL", dsn)
    return load_settings(env_file=None)


def test_the_setting_holds_the_url_and_a_bad_one_is_refused_without_its_text(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = _load(monkeypatch, tmp_path, "host=127.0.0.1 user=zv password=s3cret-pw dbname=zv")
    assert settings.store_kind == "postgres"
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == "postgresql://zv:s3cret-pw@127.0.0.1/zv"
    with pytest.raises(ConfigError) as bad:
        _load(monkeypatch, tmp_path, "zv s3cret-pw")
    assert "ZAPVISOR_DATABASE_URL" in str(bad.value) and "key=value" in str(bad.value)
    assert "s3cret-pw" not in str(bad.value)
    assert _load(monkeypatch, tmp_path, " ").store_kind == "sqlite"


def test_whatsmeow_opens_its_store_through_a_key_value_setting(
    pg_cluster: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = pg_cluster.new_database()
    try:
        parts = conninfo_to_dict(pg_cluster.dsn(name))
        pairs = " ".join(f"{k}={v}" for k, v in parts.items())
        settings = _load(monkeypatch, tmp_path / "home", pairs)
        assert settings.database_url is not None
        url = settings.database_url.get_secret_value()
        work = tmp_path / "cwd"
        work.mkdir()
        monkeypatch.chdir(work)  # whatsmeow made a file named after a DSN it took for SQLite
        assert _whatsmeow_open(whatsmeow_dsn(url, {})) == ""
        assert list(work.iterdir()) == []
    finally:
        pg_cluster.drop_database(name)
