"""Calls from zapvisor to a runner's HTTP API (stdlib only: the CLI stays quick)."""

from __future__ import annotations

import json
from typing import Any

from ecosystem.errors import NotPossibleNow, RunnerError, ZapvisorError


def api_host(bind: str) -> str:
    """Where to reach a runner bound on ``bind`` from this host."""
    if bind == "0.0.0.0":  # noqa: S104 - translating a wildcard bind to loopback
        return "127.0.0.1"
    if bind == "::":
        return "[::1]"
    return f"[{bind}]" if ":" in bind else bind


def call(
    bind: str,
    port: int,
    path: str,
    *,
    method: str = "GET",
    token: str | None = None,
    body: Any = None,
    timeout: float = 3.0,
) -> tuple[int, Any]:
    """(status, decoded JSON); RunnerError when nothing answers."""
    import http.client  # on use: the monitor and `list` import this module, not urllib
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{api_host(bind)}:{port}{path}", data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return resp.status, _decode(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _decode(exc.read())
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RunnerError(f"runner on port {port} did not answer: {reason}") from None
    except http.client.HTTPException as exc:
        # e.g. a TCP self-connect while the runner is not listening yet (a port in the
        # ephemeral range): our own request comes back as a "status line".
        raise RunnerError(f"runner on port {port} did not answer HTTP: {exc!r}") from None


def refusal(name: str, status: int, body: Any) -> ZapvisorError:
    """The error for a runner's 4xx/5xx answer: a 409 (not possible in the session's
    state) is NotPossibleNow, anything else RunnerError."""
    error = body.get("error") if isinstance(body, dict) else body
    kind = NotPossibleNow if status == 409 else RunnerError
    return kind(f"{name}: {error} (HTTP {status})")


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return {"raw": raw[:200].decode("utf-8", "replace")}


def healthy(bind: str, port: int, timeout: float = 1.0) -> bool:
    try:
        status, body = call(bind, port, "/health", timeout=timeout)
    except RunnerError:
        return False
    return status == 200 and isinstance(body, dict) and bool(body.get("ok"))
