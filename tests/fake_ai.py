"""Fake AI providers on 127.0.0.1 for the bot's tests: no OpenAI or Gemini API can be
reached from here, so these real HTTP servers stand in for them. Each checks the
request shape the real API documents (and answers 400 with the problem, recording it,
when a request is off), answers the way the real API does, and can be told to fail
(any status, with the provider's error body) or to be slow (for timeouts).

- FakeOpenAI: `POST /v1/chat/completions` (Bearer key; model, messages with roles
  system/user/assistant) and the Assistants API v2 subset the bot uses
  (`POST /v1/threads/runs`, `GET /v1/threads/T/runs/R`, `GET /v1/threads/T/messages`,
  with `OpenAI-Beta: assistants=v2`).
- FakeGemini: `POST /v1beta/models/MODEL:generateContent` (`x-goog-api-key`; contents
  with roles user/model and text parts; systemInstruction; generationConfig).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from tests.conftest import free_port_block

KEY = "sk-test-0123456789abcdefSECRET"
"""The key the fakes accept (a test value, shaped like OpenAI's)."""


P = TypeVar("P", bound="FakeProvider")


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float


class FakeProvider:
    """A loopback HTTP server; ``status``, ``delay`` and ``reply`` steer its next answers."""

    key = ""

    def __init__(self, key: str, reply: str = "Resposta {n}") -> None:
        self.key = key
        self.reply = reply
        self.status = 200
        self.error_message = "something failed"
        self.delay = 0.0
        self.calls: list[Call] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self._served = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                call = Call(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
                status, answer = fake.handle(call)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port_block(1)), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def down(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(self, call: Call) -> tuple[int, Any]:
        with self._lock:
            self.calls.append(call)
        if self.delay:
            time.sleep(self.delay)
        problem = self.check(call)
        if problem:
            with self._lock:
                self.problems.append(problem)
            return 400, {"error": {"message": problem, "code": 400}}
        if self.status != 200:
            return self.status, self.error_body()
        return 200, self.answer(call)

    def next_reply(self) -> str:
        with self._lock:
            self._served += 1
            return self.reply.format(n=self._served)

    def check(self, call: Call) -> str | None:
        raise NotImplementedError

    def answer(self, call: Call) -> Any:
        raise NotImplementedError

    def error_body(self) -> Any:
        raise NotImplementedError

    def of(self, path_part: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if path_part in c.path]


def _messages_problem(messages: Any, roles: set[str]) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty array"
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in roles:
            return f"bad message role in {m!r}"
        if not isinstance(m.get("content"), str):
            return f"message content must be a string: {m!r}"
    return None


class FakeOpenAI(FakeProvider):
    """OpenAI's chat completions and Assistants v2, as documented (the subset used)."""

    def check(self, call: Call) -> str | None:
        if call.headers.get("authorization") != f"Bearer {self.key}":
            return "Authorization must be Bearer <key>"
        body = call.body
        if call.path == "/v1/chat/completions" and call.method == "POST":
            if not isinstance(body, dict) or not isinstance(body.get("model"), str):
                return "model is required"
            if set(body) - {"model", "messages", "temperature", "max_tokens"}:
                return f"unexpected fields {sorted(body)}"
            return _messages_problem(body.get("messages"), {"system", "user", "assistant"})
        if call.path.startswith("/v1/threads"):
            if call.headers.get("openai-beta") != "assistants=v2":
                return "OpenAI-Beta: assistants=v2 is required"
            if call.method == "POST" and call.path == "/v1/threads/runs":
                if not isinstance(body, dict) or not str(body.get("assistant_id", "")).startswith(
                    "asst_"
                ):
                    return "assistant_id is required"
                return _messages_problem(
                    body.get("thread", {}).get("messages"), {"user", "assistant"}
                )
            if call.method == "GET" and re.fullmatch(r"/v1/threads/thread_1/runs/run_1", call.path):
                return None
            if call.method == "GET" and call.path.startswith("/v1/threads/thread_1/messages"):
                return None
        return f"unknown route {call.method} {call.path}"

    def answer(self, call: Call) -> Any:
        if call.path == "/v1/chat/completions":
            return {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": call.body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": self.next_reply()},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
        if call.path == "/v1/threads/runs":
            return {
                "id": "run_1",
                "object": "thread.run",
                "thread_id": "thread_1",
                "status": "queued",
            }
        if "/runs/" in call.path:
            return {
                "id": "run_1",
                "object": "thread.run",
                "thread_id": "thread_1",
                "status": "completed",
            }
        text = {"value": self.next_reply(), "annotations": []}
        return {
            "object": "list",
            "data": [
                {"id": "msg_1", "role": "assistant", "content": [{"type": "text", "text": text}]}
            ],
        }

    def error_body(self) -> Any:
        return {"error": {"message": self.error_message, "type": "invalid_request_error"}}


class FakeGemini(FakeProvider):
    """Gemini's generateContent, as documented (the subset used)."""

    def check(self, call: Call) -> str | None:
        if call.headers.get("x-goog-api-key") != self.key:
            return "x-goog-api-key must hold the key"
        if "key=" in call.path:
            return "the key belongs in the header, not the URL"
        if call.method != "POST" or not re.fullmatch(
            r"/v1beta/models/[A-Za-z0-9._-]+:generateContent", call.path
        ):
            return f"unknown route {call.method} {call.path}"
        body = call.body
        if not isinstance(body, dict) or set(body) - {
            "contents",
            "systemInstruction",
            "generationConfig",
        }:
            return "unexpected fields"
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return "contents must be a non-empty array"
        for c in contents:
            parts = c.get("parts") if isinstance(c, dict) else None
            if c.get("role") not in ("user", "model") or not isinstance(parts, list):
                return f"bad content {c!r}"
            if not all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in parts):
                return f"bad parts {parts!r}"
        if contents[-1]["role"] != "user":
            return "the last content must be the user's"
        return None

    def answer(self, call: Call) -> Any:
        return {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": self.next_reply()}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5},
        }

    def error_body(self) -> Any:
        return {"error": {"code": self.status, "message": self.error_message, "status": "ERROR"}}


def serving(fake: P) -> Iterator[P]:
    """A fixture's body: the fake while the test runs, shut down after."""
    try:
        yield fake
    finally:
        fake.down()
