"""ai_config and timing_config: checked on every write, the wrong field named in one
line, nothing changed; provider keys kept out of the store, out of `show` and logs."""

from __future__ import annotations

import json
import sqlite3
import stat
from typing import Any

import pytest

from ecosystem.botconfig import parse_ai_config, parse_timing_config
from ecosystem.errors import InvalidValue
from ecosystem.store import Store
from tests.conftest import Env
from tests.test_bad_input import one_line_error
from tests.test_store_contract import (  # noqa: F401 - fixtures
    StoreFactory,
    create,
    store,
    store_factory,
)

BAD_AI = [
    ({"temperature": 3}, "ai_config.temperature"),
    ({"nope": 1}, "ai_config.nope: unknown key (known: enabled, provider, model"),
    ({"provider": "claude"}, "ai_config.provider"),
    ({"enabled": "yes"}, "ai_config.enabled"),
    ({"history": -1}, "ai_config.history"),
    ({"history": 101}, "ai_config.history"),
    ({"max_tokens": 0}, "ai_config.max_tokens"),
    ({"base_url": "ftp://x"}, "ai_config.base_url"),
    ({"base_url": "https://api.example.com/v1?key=SECRET"}, "ai_config.base_url"),
    ({"model": "gpt 4; rm"}, "ai_config.model"),
    ({"assistant_id": "../x"}, "ai_config.assistant_id"),
    ({"system_prompt": "x" * 20_001}, "ai_config.system_prompt"),
]
BAD_TIMING = [
    ({"reply_delay": [3, 1]}, "timing_config.reply_delay"),
    ({"reply_delay": "2"}, "timing_config.reply_delay"),
    ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "timing_config.quiet_hours.start"),
    ({"quiet_hours": {"start": "22:00"}}, "timing_config.quiet_hours.end"),
    ({"quiet_hours": {"start": "22:00", "end": "7", "tz": "UTC"}}, "quiet_hours.end"),
    (
        {"quiet_hours": {"start": "22:00", "end": "07:00", "tz": "../../etc/passwd"}},
        "timing_config.quiet_hours.tz",
    ),
    ({"cooldown_seconds": -1}, "timing_config.cooldown_seconds"),
    ({"outbound_per_minute": 1.5}, "timing_config.outbound_per_minute"),
    ({"typing": 1}, "timing_config.typing"),
    ({"sim": {"crash_after_seconds": 1, "x": 2}}, "timing_config.sim.x: unknown key"),
    ({"typing_ms": 1200}, "timing_config.typing_ms: unknown key"),
]


@pytest.mark.parametrize(("value", "named"), BAD_AI)
def test_bad_ai_config_names_the_field(value: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match="^" + named.replace("(", r"\(").replace(".", r"\.")):
        parse_ai_config(value)


@pytest.mark.parametrize(("value", "named"), BAD_TIMING)
def test_bad_timing_config_names_the_field(value: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        parse_timing_config(value)


def test_good_configs_and_their_defaults() -> None:
    ai = parse_ai_config({"enabled": True, "provider": "gemini", "temperature": 1})
    assert ai.temperature == 1.0 and ai.model_name == "gemini-2.0-flash"
    assert ai.endpoint == "https://generativelanguage.googleapis.com/v1beta"
    local = parse_ai_config({"base_url": "http://127.0.0.1:11434/v1/", "model": "llama3.1:8b"})
    assert local.endpoint == "http://127.0.0.1:11434/v1" and local.provider == "openai"
    timing = parse_timing_config(
        {"reply_delay": 2, "quiet_hours": {"start": "22:00", "end": "07:00", "tz": "UTC"}}
    )
    assert timing.reply_delay == (2.0, 2.0) and timing.typing and not timing.mark_read
    from datetime import time

    assert timing.quiet_hours is not None
    assert timing.quiet_hours.covers(time(23, 30)) and timing.quiet_hours.covers(time(6, 59))
    assert not timing.quiet_hours.covers(time(7, 0)) and not timing.quiet_hours.covers(time(12))


def test_every_store_refuses_a_bad_config_and_keeps_the_old(store: Store) -> None:  # noqa: F811
    create(store, "alpha", ai_config={"enabled": True, "history": 4})
    with pytest.raises(InvalidValue, match=r"ai_config\.temperature"):
        store.update_session(
            "alpha", {"ai_config": {"temperature": 9}}, actor="t", action="configure"
        )
    with pytest.raises(InvalidValue, match=r"timing_config\.nope: unknown key"):
        store.update_session("alpha", {"timing_config": {"nope": 1}}, actor="t", action="x")
    assert store.get_session("alpha").ai_config == {"enabled": True, "history": 4}
    # normalised on the way in: one delay is the range [d, d]
    store.update_session("alpha", {"timing_config": {"reply_delay": 2}}, actor="t", action="x")
    assert store.get_session("alpha").timing_config == {"reply_delay": [2.0, 2.0]}


@pytest.mark.e2e
def test_cli_refuses_bad_config_with_exit_65_and_changes_nothing(zv: Env) -> None:
    bad = zv.cli(
        "create", "alpha", "--connector", "sim", "--ai-config", '{"temperature": 3}', check=False
    )
    assert bad.returncode == 65
    assert "ai_config.temperature" in one_line_error(bad.stderr)
    assert zv.json("list") == []

    ai = {"enabled": True, "provider": "gemini", "history": 3, "system_prompt": "Olá; 100%"}
    zv.cli("create", "alpha", "--connector", "sim", "--stopped", "--ai-config", json.dumps(ai))
    assert zv.json("show", "alpha")["ai_config"] == ai
    for flag, value, named in (
        ("--timing-config", '{"reply_delay": [5, 1]}', "timing_config.reply_delay"),
        ("--ai-config", '{"auto_reply": true}', "ai_config.auto_reply: unknown key"),
        ("--ai-config", "[1]", "--ai-config must be a JSON object"),
    ):
        proc = zv.cli("config", "alpha", flag, value, check=False)
        assert proc.returncode == 65, proc.stderr
        assert named in one_line_error(proc.stderr)
    shown = zv.json("show", "alpha")
    assert shown["ai_config"] == ai and shown["timing_config"] == {}


@pytest.mark.e2e
def test_a_config_saved_before_the_rules_still_reads_and_other_fields_change(zv: Env) -> None:
    zv.cli("create", "legacy", "--connector", "sim", "--stopped")
    db = sqlite3.connect(zv.home / "zapvisor.db")
    with db:
        db.execute(
            "UPDATE whatsapp_sessions SET ai_config = ? WHERE session_name = 'legacy'",
            (json.dumps({"auto_reply": True, "prompt": "old"}),),
        )
    db.close()
    assert zv.json("show", "legacy")["ai_config"] == {"auto_reply": True, "prompt": "old"}
    zv.cli("config", "legacy", "--description", "ainda funciona")
    assert zv.json("show", "legacy")["description"] == "ainda funciona"


@pytest.mark.e2e
def test_secret_is_stored_0600_and_never_shown(zv: Env) -> None:
    zv.cli("create", "alpha", "--connector", "sim", "--stopped")
    key = "sk-test-NEVER-SHOWN-0123456789"
    out = zv.cli("secret", "alpha", "openai", stdin=key + "\n")
    assert key not in out.stdout + out.stderr
    assert "secrets/alpha.openai-key" in out.stdout
    path = zv.home / "secrets" / "alpha.openai-key"
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    shown = zv.cli("show", "alpha", "--json").stdout + zv.cli("show", "alpha").stdout
    events = zv.json("events", "alpha")
    assert {"action": "ai_key", "detail": {"openai": "set"}}.items() <= events[0].items()
    assert key not in shown + json.dumps(events)
    assert key not in "".join(p.read_text() for p in (zv.home / "logs").glob("*.log"))

    empty = zv.cli("secret", "alpha", "gemini", stdin="", check=False)
    assert empty.returncode == 65 and "no key given" in one_line_error(empty.stderr)
    spaced = zv.cli("secret", "alpha", "gemini", stdin="two words", check=False)
    assert spaced.returncode == 65 and "two words" not in spaced.stderr
    unknown = zv.cli("secret", "nobody", "openai", stdin=key, check=False)
    assert unknown.returncode == 66
    assert not (zv.home / "secrets" / "nobody.openai-key").exists()
    bad_provider = zv.cli("secret", "alpha", "claude", stdin=key, check=False)
    assert bad_provider.returncode == 2

    removed = zv.json("secret", "alpha", "openai", "--remove")
    assert removed == {"name": "alpha", "provider": "openai", "removed": True, "source": None}
    assert not path.exists()


@pytest.mark.e2e
def test_runner_api_config_is_checked_like_the_cli(zv: Env) -> None:
    from ecosystem import runner_client

    zv.cli("create", "alpha", "--connector", "sim")
    port = zv.json("show", "alpha")["port"]
    token = (zv.home / "secrets" / "alpha.token").read_text().strip()

    def call(method: str, body: Any = None) -> tuple[int, Any]:
        return runner_client.call(
            "127.0.0.1", port, "/config", method=method, token=token, body=body, timeout=10
        )

    status, answer = call("PUT", {"ai_config": {"enabled": True, "temperature": "hot"}})
    assert status == 400 and "ai_config.temperature" in answer["error"]
    status, answer = call("PUT", {"timing_config": {"quiet_hours": {"start": "9"}}})
    assert status == 400 and "timing_config.quiet_hours.start" in answer["error"]
    assert zv.json("show", "alpha")["ai_config"] == {}
    status, answer = call(
        "PUT", {"ai_config": {"enabled": True}, "timing_config": {"typing": False}}
    )
    assert status == 200
    assert answer["ai_config"] == {"enabled": True} and answer["timing_config"] == {"typing": False}
    assert call("GET")[1]["ai_config"] == {"enabled": True}
    assert zv.json("show", "alpha")["timing_config"] == {"typing": False}
