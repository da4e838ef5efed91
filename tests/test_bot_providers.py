"""The bot's provider calls against fake OpenAI and Gemini servers on 127.0.0.1
(tests/fake_ai.py: no provider is reachable from here), checking the request shape each
real API documents, the bounded retry, the timeouts, and that no key leaks into a
reason."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ecosystem.botconfig import parse_ai_config
from ecosystem.conversations import ChatMessage
from runner.bot.providers import ProviderError, complete
from tests.fake_ai import KEY, FakeGemini, FakeOpenAI, serving

HISTORY = [
    ChatMessage(role="user", body="Olá"),
    ChatMessage(role="assistant", body="Oi! Em que posso ajudar?"),
]


@pytest.fixture
def openai() -> Iterator[FakeOpenAI]:
    yield from serving(FakeOpenAI(KEY))


@pytest.fixture
def gemini() -> Iterator[FakeGemini]:
    yield from serving(FakeGemini(KEY))


def ask(config: dict[str, Any], text: str = "Qual o horário?") -> str:
    async def go() -> str:
        async with httpx.AsyncClient(trust_env=False) as client:
            return await complete(client, parse_ai_config(config), KEY, HISTORY, text)

    return asyncio.run(go())


def test_chat_completions_request_and_answer(openai: FakeOpenAI) -> None:
    config = {
        "base_url": openai.origin + "/v1",
        "model": "gpt-test",
        "system_prompt": "Seja breve.",
        "temperature": 0.2,
        "max_tokens": 50,
    }
    assert ask(config) == "Resposta 1"
    assert openai.problems == []
    body = openai.calls[0].body
    assert body == {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "Seja breve."},
            {"role": "user", "content": "Olá"},
            {"role": "assistant", "content": "Oi! Em que posso ajudar?"},
            {"role": "user", "content": "Qual o horário?"},
        ],
        "temperature": 0.2,
        "max_tokens": 50,
    }


def test_gemini_request_and_answer(gemini: FakeGemini) -> None:
    config = {
        "provider": "gemini",
        "base_url": gemini.origin + "/v1beta",
        "model": "gemini-test",
        "system_prompt": "Seja breve.",
        "temperature": 1,
    }
    assert ask(config) == "Resposta 1"
    assert gemini.problems == []
    call = gemini.calls[0]
    assert call.path == "/v1beta/models/gemini-test:generateContent"
    assert call.body == {
        "contents": [
            {"role": "user", "parts": [{"text": "Olá"}]},
            {"role": "model", "parts": [{"text": "Oi! Em que posso ajudar?"}]},
            {"role": "user", "parts": [{"text": "Qual o horário?"}]},
        ],
        "systemInstruction": {"parts": [{"text": "Seja breve."}]},
        "generationConfig": {"temperature": 1.0},
    }


def test_an_assistant_runs_a_thread(openai: FakeOpenAI) -> None:
    config = {"base_url": openai.origin + "/v1", "assistant_id": "asst_abc123"}
    assert ask(config) == "Resposta 1"
    assert openai.problems == []
    assert [c.method + " " + c.path.split("?")[0] for c in openai.calls] == [
        "POST /v1/threads/runs",
        "GET /v1/threads/thread_1/runs/run_1",
        "GET /v1/threads/thread_1/messages",
    ]
    thread = openai.calls[0].body["thread"]["messages"]
    assert thread[-1] == {"role": "user", "content": "Qual o horário?"} and len(thread) == 3


@pytest.mark.parametrize(
    ("status", "attempts", "reason"),
    [
        (500, 2, "openai answered 500 (error)"),
        (429, 2, "openai answered 429 (rate limited)"),
        (401, 1, "openai answered 401 (the key was refused)"),
    ],
)
def test_failures_are_retried_once_when_worth_it(
    openai: FakeOpenAI, status: int, attempts: int, reason: str
) -> None:
    openai.status = status
    openai.error_message = f"Incorrect API key provided: {KEY[:8]}***{KEY[-4:]} or {KEY}"
    with pytest.raises(ProviderError) as caught:
        ask({"base_url": openai.origin + "/v1"})
    assert str(caught.value).startswith(reason)
    assert KEY not in str(caught.value) and KEY[:8] not in str(caught.value)
    assert len(openai.calls) == attempts


def test_a_slow_provider_times_out(gemini: FakeGemini) -> None:
    gemini.delay = 1.5
    config = {"provider": "gemini", "base_url": gemini.origin + "/v1beta", "timeout_seconds": 0.3}
    with pytest.raises(ProviderError, match=r"gemini did not answer within 0\.3 s"):
        ask(config)


def test_an_unreachable_provider_is_named_without_the_key() -> None:
    with pytest.raises(ProviderError, match=r"openai unreachable at http://127\.0\.0\.1:1"):
        ask({"base_url": "http://127.0.0.1:1/v1"})
