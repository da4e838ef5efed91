"""Asking a provider for the reply: OpenAI's chat completions (and any compatible
endpoint), OpenAI's Assistants, Gemini's generateContent. One pooled httpx client per
runner, a timeout on every request, one retry for what may pass on a second try (429,
5xx, a timeout, a dropped connection). Every failure is a ProviderError whose reason is
one line without the key."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ecosystem.conversations import ChatMessage

if TYPE_CHECKING:
    import httpx

    from ecosystem.botconfig import AiConfig

ATTEMPTS = 2
RETRY_AFTER_MAX = 5.0
"""Longest Retry-After honoured before the one retry (a longer one fails this reply)."""
_KEYISH = re.compile(r"(sk-|AIza)[A-Za-z0-9_\-*]{4,}")
_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_RETRY = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class ProviderError(Exception):
    """No reply from the provider; ``str()`` is the reason shown to operators."""


def _scrub(text: str, key: str) -> str:
    """A provider's message without the key (some echo part of it back)."""
    if key:
        text = text.replace(key, "[key]")
    return _KEYISH.sub("[key]", " ".join(text.split()))[:200]


def _reason(provider: str, response: httpx.Response, key: str) -> str:
    try:
        body: Any = response.json()
        error = body.get("error", body) if isinstance(body, dict) else body
        message = error.get("message", "") if isinstance(error, dict) else str(error)
    except ValueError:
        message = response.text
    what = {401: "the key was refused", 403: "the key may not use this", 429: "rate limited"}
    label = what.get(response.status_code, "error")
    detail = _scrub(str(message), key)
    return f"{provider} answered {response.status_code} ({label})" + (
        f": {detail}" if detail else ""
    )


async def _post(
    client: httpx.AsyncClient,
    provider: str,
    method: str,
    url: str,
    key: str,
    headers: dict[str, str],
    timeout: float,
    body: dict[str, Any] | None = None,
) -> Any:
    """One JSON request with the bounded retry; the decoded answer."""
    import httpx

    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = await client.request(
                method, url, json=body, headers=headers, timeout=timeout
            )
        except httpx.TimeoutException:
            if attempt < ATTEMPTS:
                continue
            raise ProviderError(f"{provider} did not answer within {timeout:g} s") from None
        except httpx.HTTPError as exc:
            if attempt < ATTEMPTS:
                await asyncio.sleep(0.5)
                continue
            why = _scrub(str(exc) or type(exc).__name__, key)
            raise ProviderError(f"{provider} unreachable at {_origin(url)}: {why}") from None
        if response.status_code < 300:
            try:
                return response.json()
            except ValueError:
                raise ProviderError(f"{provider} answered with something not JSON") from None
        if response.status_code in _RETRY and attempt < ATTEMPTS:
            wait = _retry_after(response)
            if wait <= RETRY_AFTER_MAX:
                await asyncio.sleep(wait)
                continue
        raise ProviderError(_reason(provider, response, key))
    raise AssertionError("unreachable")  # pragma: no cover


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "0.5")))
    except ValueError:
        return 0.5


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _text(answer: Any, *path: Any) -> str:
    """``answer[path...]`` as a non-empty string, else a ProviderError."""
    value = answer
    try:
        for step in path:
            value = value[step]
    except (KeyError, IndexError, TypeError):
        value = None
    if not isinstance(value, str) or not value.strip():
        raise ProviderError("the provider's answer held no text")
    return value.strip()


async def complete(
    client: httpx.AsyncClient,
    ai: AiConfig,
    key: str,
    history: Sequence[ChatMessage],
    text: str,
) -> str:
    """The reply to ``text`` after ``history`` (oldest first)."""
    if ai.provider == "gemini":
        return await _gemini(client, ai, key, history, text)
    if ai.assistant_id:
        return await _assistant(client, ai, key, history, text)
    return await _chat(client, ai, key, history, text)


async def _chat(
    client: httpx.AsyncClient, ai: AiConfig, key: str, history: Sequence[ChatMessage], text: str
) -> str:
    messages = [{"role": "system", "content": ai.system_prompt}] if ai.system_prompt else []
    messages += [{"role": m.role, "content": m.body} for m in history]
    messages.append({"role": "user", "content": text})
    body: dict[str, Any] = {"model": ai.model_name, "messages": messages}
    if ai.temperature is not None:
        body["temperature"] = ai.temperature
    if ai.max_tokens is not None:
        body["max_tokens"] = ai.max_tokens
    answer = await _post(
        client,
        "openai",
        "POST",
        f"{ai.endpoint}/chat/completions",
        key,
        {"Authorization": f"Bearer {key}"},
        ai.timeout_seconds,
        body,
    )
    return _text(answer, "choices", 0, "message", "content")


async def _gemini(
    client: httpx.AsyncClient, ai: AiConfig, key: str, history: Sequence[ChatMessage], text: str
) -> str:
    contents = [
        {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.body}]}
        for m in history
    ]
    contents.append({"role": "user", "parts": [{"text": text}]})
    body: dict[str, Any] = {"contents": contents}
    if ai.system_prompt:
        body["systemInstruction"] = {"parts": [{"text": ai.system_prompt}]}
    generation: dict[str, Any] = {}
    if ai.temperature is not None:
        generation["temperature"] = ai.temperature
    if ai.max_tokens is not None:
        generation["maxOutputTokens"] = ai.max_tokens
    if generation:
        body["generationConfig"] = generation
    answer = await _post(
        client,
        "gemini",
        "POST",
        f"{ai.endpoint}/models/{ai.model_name}:generateContent",
        key,
        {"x-goog-api-key": key},  # a header, not ?key=, so it never sits in a URL or log
        ai.timeout_seconds,
        body,
    )
    parts = answer.get("candidates", [{}])[0].get("content", {}).get("parts", [])
    if not isinstance(parts, list):
        raise ProviderError("the provider's answer held no text")
    joined = "".join(p.get("text", "") for p in parts if isinstance(p, dict))
    return _text(joined)


_RUN_DONE = frozenset({"completed"})
_RUN_FAILED = frozenset({"failed", "cancelled", "expired", "incomplete", "requires_action"})


async def _assistant(
    client: httpx.AsyncClient, ai: AiConfig, key: str, history: Sequence[ChatMessage], text: str
) -> str:
    """An OpenAI assistant: a thread with the history and the message, one run polled
    until it completes (within ``timeout_seconds`` in all), its newest message."""
    headers = {"Authorization": f"Bearer {key}", "OpenAI-Beta": "assistants=v2"}
    deadline = time.monotonic() + ai.timeout_seconds
    messages = [{"role": m.role, "content": m.body} for m in history]
    messages.append({"role": "user", "content": text})
    body: dict[str, Any] = {"assistant_id": ai.assistant_id, "thread": {"messages": messages}}
    if ai.temperature is not None:
        body["temperature"] = ai.temperature
    run = await _post(
        client, "openai", "POST", f"{ai.endpoint}/threads/runs", key, headers,
        ai.timeout_seconds, body,
    )  # fmt: skip
    thread, run_id = run.get("thread_id"), run.get("id")
    if not all(isinstance(v, str) and _ID.fullmatch(v) for v in (thread, run_id)):
        raise ProviderError("the provider's answer held no run")
    status = run.get("status")
    while status not in _RUN_DONE:
        if status in _RUN_FAILED:
            raise ProviderError(f"the assistant's run ended {status}")
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProviderError(f"openai did not answer within {ai.timeout_seconds:g} s")
        await asyncio.sleep(min(0.5, left))
        run = await _post(
            client, "openai", "GET", f"{ai.endpoint}/threads/{thread}/runs/{run_id}", key,
            headers, max(0.1, deadline - time.monotonic()),
        )  # fmt: skip
        status = run.get("status")
    listed = await _post(
        client, "openai", "GET", f"{ai.endpoint}/threads/{thread}/messages?order=desc&limit=1",
        key, headers, max(0.1, deadline - time.monotonic()),
    )  # fmt: skip
    return _text(listed, "data", 0, "content", 0, "text", "value")
