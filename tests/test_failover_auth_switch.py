"""`zapvisor failover NAME --auth …` on a session whose runner runs (a real supervisord,
real sim runners, a real PostgreSQL): the runner reads where its auth lives when it
starts, so changing it restarts a running, unpaired session at once (or its first
pairing would land in the old place); asking for the place it already has restarts
nothing, and a stopped session stays stopped."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import Env, wait_for


def test_changing_where_the_auth_lives_restarts_the_runner_that_reads_it(
    pg_dsn: str, make_env: Callable[..., Env]
) -> None:
    env = make_env(max_sessions=3, ZAPVISOR_DATABASE_URL=pg_dsn, ZAPVISOR_HOST_ID="h1")
    env.cli("create", "loja", "--connector", "sim", "--auth", "local")
    env.cli("create", "parada", "--connector", "sim", "--auth", "local", "--stopped")
    first = wait_for(lambda: (s := env.json("show", "loja"))["status"] == "waiting_scan" and s)
    assert first["auth"] == "local"

    env.cli("failover", "loja", "--auth", "store")
    after = wait_for(lambda: (s := env.json("show", "loja"))["status"] == "waiting_scan" and s)
    assert after["auth"] == "store" and after["pid"] != first["pid"]

    env.cli("failover", "loja", "--auth", "store")
    assert env.json("show", "loja")["pid"] == after["pid"], "nothing changed: no restart"

    env.cli("failover", "parada", "--auth", "store")
    stopped = env.json("show", "parada")
    assert (stopped["auth"], stopped["process_state"]) == ("store", "STOPPED")
