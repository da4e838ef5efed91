"""The bot end to end: sim sessions under a real supervisord answer inbound messages
through fake OpenAI and Gemini servers on 127.0.0.1 (tests/fake_ai.py stands in for the
providers, which cannot be reached from here); what the simulated phone sends is read
back from `GET /sim/sent`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecosystem import runner_client
from tests.conftest import Env, wait_for
from tests.fake_ai import KEY, FakeGemini, FakeOpenAI, serving

pytestmark = pytest.mark.e2e

MARIA = "5511977776666"


@pytest.fixture
def openai() -> Iterator[FakeOpenAI]:
    yield from serving(FakeOpenAI(KEY))


@pytest.fixture
def gemini() -> Iterator[FakeGemini]:
    yield from serving(FakeGemini(KEY))


_PORTS: dict[tuple[str, str], int] = {}


def api(zv: Env, name: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    port = _PORTS.get((str(zv.home), name)) or _PORTS.setdefault(
        (str(zv.home), name), zv.json("show", name)["port"]
    )
    token = (zv.home / "secrets" / f"{name}.token").read_text().strip()
    return runner_client.call(
        "127.0.0.1", port, path, method=method, token=token, body=body, timeout=10
    )


def start(zv: Env, name: str, ai: dict[str, Any], timing: dict[str, Any]) -> None:
    zv.cli(
        "create",
        name,
        "--connector",
        "sim",
        "--ai-config",
        json.dumps(ai),
        "--timing-config",
        json.dumps(timing),
    )
    zv.cli("qr", name, "--wait", "20")
    zv.cli("sim-scan", name)
    wait_for(lambda: zv.json("show", name)["status"] == "connected")


def inbound(zv: Env, name: str, body: str, sender: str = MARIA) -> None:
    status, answer = api(zv, name, "POST", "/sim/inbound", {"from": sender, "body": body})
    assert status == 200, answer


def sent(zv: Env, name: str, kind: str = "text") -> list[dict[str, Any]]:
    status, answer = api(zv, name, "GET", "/sim/sent")
    assert status == 200, answer
    return [s for s in answer["sent"] if s["kind"] == kind]


def at(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))


def logs(zv: Env, name: str) -> str:
    return "".join(p.read_text() for p in (zv.home / "logs").glob(f"wa-{name}*.log"))


def test_a_reply_with_history_after_the_delay_typing_and_read(zv: Env, openai: FakeOpenAI) -> None:
    ai = {
        "enabled": True,
        "base_url": openai.origin + "/v1",
        "model": "gpt-test",
        "system_prompt": "Seja breve.",
        "history": 4,
    }
    timing = {"reply_delay": [0.4, 0.4], "typing": True, "mark_read": True}
    start(zv, "bot", ai, timing)
    zv.cli("secret", "bot", "openai", stdin=KEY)

    inbound(zv, "bot", "Olá")
    first = wait_for(lambda: sent(zv, "bot"))
    assert first[0]["body"] == "Resposta 1" and first[0]["to"] == f"{MARIA}@c.us"
    read, typing = sent(zv, "bot", "read")[0], sent(zv, "bot", "typing")[0]
    assert at(read) <= at(typing) <= at(first[0])
    # the delay counts from the message, which came in a little before the read receipt
    # went out (times are in milliseconds): 0.4 s at the least, less that little
    assert at(first[0]) - at(read) >= timedelta(seconds=0.35)
    call = openai.calls[0]
    assert call.headers["authorization"] == f"Bearer {KEY}" and openai.problems == []
    assert call.body["messages"] == [
        {"role": "system", "content": "Seja breve."},
        {"role": "user", "content": "Olá"},
    ]

    # a group message gets no reply unless configured; then the history goes along
    inbound(zv, "bot", "alguém aí?", sender="120363012345678901@g.us")
    inbound(zv, "bot", "E amanhã?")
    wait_for(lambda: len(sent(zv, "bot")) == 2)
    assert len(openai.calls) == 2
    assert openai.calls[1].body["messages"] == [
        {"role": "system", "content": "Seja breve."},
        {"role": "user", "content": "Olá"},
        {"role": "assistant", "content": "Resposta 1"},
        {"role": "user", "content": "E amanhã?"},
    ]
    shown = zv.json("show", "bot")
    assert shown["status"] == "connected" and shown["messages_sent"] == 2
    assert shown["messages_received"] == 3
    assert shown["ai_key"] == "secrets/bot.openai-key" and shown["ai_last_error"] is None
    assert shown["ai_last_reply_at"] is not None
    text = zv.cli("show", "bot").stdout
    assert "ai reply" in text and "secrets/bot.openai-key" in text
    assert KEY not in json.dumps(shown) + text + logs(zv, "bot")


def test_failures_leave_the_session_connected_with_the_reason(zv: Env, openai: FakeOpenAI) -> None:
    ai = {"enabled": True, "base_url": openai.origin + "/v1", "timeout_seconds": 0.5}
    start(zv, "flaky", ai, {"reply_delay": 0})
    pid = zv.json("show", "flaky")["pid"]

    def failed_with(text: str) -> dict[str, Any] | None:
        shown = zv.json("show", "flaky")
        return shown if text in (shown["ai_last_error"] or "") else None

    inbound(zv, "flaky", "oi")  # no key anywhere
    shown = wait_for(lambda: failed_with("no openai key"))
    assert "`zapvisor secret flaky openai`" in shown["ai_last_error"]
    assert shown["ai_key"] is None and openai.calls == []

    zv.cli("secret", "flaky", "openai", stdin=KEY)
    openai.status = 500
    inbound(zv, "flaky", "oi de novo")
    wait_for(lambda: failed_with("openai answered 500"))
    assert len(openai.calls) == 2  # one retry, no more

    openai.status, openai.delay = 200, 2.0
    inbound(zv, "flaky", "e agora?")
    wait_for(lambda: failed_with("did not answer within 0.5 s"))
    # three failures in a row: an alert, which the next reply clears
    alerts = wait_for(lambda: [a for a in zv.json("alerts") if a["key"] == "bot:flaky"])
    assert alerts[0]["kind"] == "bot_failing"

    openai.delay = 0.0
    inbound(zv, "flaky", "funcionou?")
    wait_for(lambda: sent(zv, "flaky"))
    wait_for(lambda: not [a for a in zv.json("alerts") if a["key"] == "bot:flaky"])
    shown = zv.json("show", "flaky")
    assert shown["status"] == "connected" and shown["pid"] == pid
    assert shown["process_state"] == "RUNNING" and shown["messages_sent"] == 1
    actions = [e for e in zv.json("events", "flaky") if e["action"] == "ai_error"]
    assert len(actions) == 3 and actions[-1]["actor"] == "bot"
    assert KEY not in json.dumps(zv.json("events", "flaky")) + logs(zv, "flaky")


def test_gemini_with_the_hosts_key_the_outbound_limit_and_quiet_hours(
    make_env: Any, gemini: FakeGemini
) -> None:
    zv: Env = make_env(GEMINI_KEY=KEY)
    ai = {
        "enabled": True,
        "provider": "gemini",
        "base_url": gemini.origin + "/v1beta",
        "model": "gemini-test",
        "system_prompt": "Responda em português.",
    }
    # one message a minute: the bot's reply takes it (a token comes back after 60 s,
    # far longer than the steps below take)
    start(zv, "gem", ai, {"reply_delay": 0, "outbound_per_minute": 1, "typing": False})
    inbound(zv, "gem", "Olá")
    wait_for(lambda: sent(zv, "gem"))
    # the API's sends share the limit
    message = {"phone": MARIA, "message": "promoção"}
    status, answer = api(zv, "gem", "POST", "/send-message", message)
    assert status == 429 and "outbound limit of 1 messages per minute" in answer["error"]
    inbound(zv, "gem", "ainda aí?")
    wait_for(lambda: "over the outbound limit" in logs(zv, "gem"))
    shown = zv.json("show", "gem")
    assert "over the outbound limit of 1 per minute" in shown["ai_last_error"]
    assert len(sent(zv, "gem")) == 1 and shown["status"] == "connected"
    assert shown["ai_key"] == "GEMINI_KEY"
    assert gemini.problems == [] and gemini.calls[0].headers["x-goog-api-key"] == KEY
    assert gemini.calls[0].body["systemInstruction"] == {
        "parts": [{"text": "Responda em português."}]
    }
    assert sent(zv, "gem", "typing") == []

    # quiet hours around now: the message is kept for the history, no reply
    now = datetime.now(UTC)
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
        "tz": "UTC",
    }
    zv.cli("config", "gem", "--timing-config", json.dumps({"reply_delay": 0, "quiet_hours": quiet}))
    calls = len(gemini.calls)
    inbound(zv, "gem", "boa noite")
    wait_for(lambda: "no reply: quiet hours" in logs(zv, "gem"))
    assert len(gemini.calls) == calls and len(sent(zv, "gem")) == 1
    assert KEY not in logs(zv, "gem") + json.dumps(zv.json("show", "gem"))
    assert KEY not in (zv.home / "zapvisor.db").read_bytes().decode("utf-8", "replace")
