"""A runner's stop sequence, in-process on the SQLite store with a real port: a request
still in flight when the stop begins finishes and its event reaches the outbox, and an
event emitted after the store thread is shut is logged and dropped, never a
"cannot schedule new futures after shutdown" traceback. (In-process so the stop can be
caught between its steps; the supervised path is covered by the health and webhook
end-to-end tests.)"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

import pytest

from ecosystem.apitoken import hash_token, new_token
from ecosystem.errors import RunnerError
from ecosystem.models import NewSession
from ecosystem.paths import StatePaths
from ecosystem.states import Status
from ecosystem.store import open_store
from runner.core import Runner
from tests.conftest import Env

pytestmark = pytest.mark.e2e

NAME = "stopper"
PHONE = "5511988887777"


async def until(predicate: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def handler_in_flight() -> bool:
    return any(
        getattr(t.get_coro(), "__qualname__", "") == "Server._handle" for t in asyncio.all_tasks()
    )


async def refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


async def stop_with_a_request_in_flight(runner: Runner, token: str) -> bytes:
    serve = asyncio.create_task(runner.serve())
    await until(lambda: runner.live.status == Status.CONNECTED)
    body = json.dumps({"from": "5511900000001", "body": "sent while stopping"}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", runner.port)
    writer.write(
        (
            f"POST /sim/inbound HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    await until(handler_in_flight)  # the head is read: the request is accepted
    runner.request_stop()
    while not await refused(runner.port):  # the stop has begun: no longer listening
        await asyncio.sleep(0.01)
    writer.write(body)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 15)
    writer.close()
    assert await asyncio.wait_for(serve, 30) == 0
    # Events from a late connector callback (another thread, a timer) after the stop.
    await runner.events.message_ack("3EB0LATE", "read", f"{PHONE}@c.us")
    await runner.events.failed("late failure")
    with pytest.raises(RunnerError, match="stopping"):
        await runner.reporter.call(runner.store.get_session, NAME)
    return answer


def test_stop_finishes_requests_in_flight_and_drops_late_events(
    zv: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = zv.settings()
    store = open_store(settings)
    store.migrate()
    token = new_token()
    store.create_session(
        NewSession(name=NAME, connector="sim", webhook_url="http://127.0.0.1:9/hook"),
        host=settings.host_id,
        ports=range(zv.base_port, zv.base_port + zv.max_sessions),
        exclude_ports=(),
        max_sessions=zv.max_sessions,
        actor="test",
        api_token_hash=hash_token(token),
    )
    auth = StatePaths(settings.home).token_dir(NAME)
    auth.mkdir(parents=True, mode=0o700)
    (auth / "sim-auth.json").write_text(json.dumps({"phone": PHONE}))
    runner = Runner(settings, store, NAME, store.get_session(NAME).port)
    try:
        answer = asyncio.run(stop_with_a_request_in_flight(runner, token))
    finally:
        store.close()

    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer
    accepted = json.loads(payload)["message"]
    look = open_store(settings)
    try:
        rows = look.list_webhooks(NAME)
        session = look.get_session(NAME)
    finally:
        look.close()
    inbound = [r for r in rows if r.event == "message_received"]
    assert [r.payload["message"]["id"] for r in inbound] == [accepted["id"]]
    assert session.status == Status.DISCONNECTED, "the stop's last state reached the store"
    assert not any(r.event == "message_ack" or "late" in json.dumps(r.payload) for r in rows)

    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "cannot schedule new futures" not in text
    assert not [r for r in caplog.records if r.exc_info], "no traceback logged"
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert dropped == [
        "webhook event message_ack dropped: the runner is stopping",
        "webhook event connection_change dropped: the runner is stopping",
        "webhook event error dropped: the runner is stopping",
    ]
