"""The neonize connector: its event → state mapping with real neonize event objects, the
QR watchdog on a controllable clock, and a real neonize runner offline (there is no
route to WhatsApp here) under a real supervisord."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from neonize.proto import Neonize_pb2 as pb

from ecosystem.settings import make_settings
from ecosystem.states import Status
from runner.connectors.base import Inbound
from runner.connectors.neonize import AUTH_DB, NeonizeConnector
from runner.connectors.neonize_map import (
    Backoff,
    QrWatchdog,
    ack_status,
    inbound_from,
    transition_for,
)
from tests.conftest import Env, wait_for


def test_events_map_onto_the_seven_states() -> None:
    reason = pb.ConnectFailureReason.Value
    cases = [
        (pb.Connected(status=True), Status.CONNECTED, None),
        (pb.KeepAliveRestored(), Status.CONNECTED, None),
        (pb.Disconnected(status=True), Status.RECONNECTING, None),
        (pb.KeepAliveTimeout(ErrorCount=3), Status.RECONNECTING, None),
        (pb.StreamError(Code="515"), Status.RECONNECTING, None),
        (pb.LoggedOut(OnConnect=True), Status.PHONE_DISCONNECTED, "LOGGED_OUT"),
        (
            pb.LoggedOut(Reason=reason("MAIN_DEVICE_GONE")),
            Status.PHONE_DISCONNECTED,
            "MAIN_DEVICE_GONE",
        ),
        (
            pb.ConnectFailure(Reason=reason("LOGGED_OUT")),
            Status.PHONE_DISCONNECTED,
            "LOGGED_OUT",
        ),
        (pb.ConnectFailure(Reason=reason("TEMP_BANNED")), Status.ERROR, "TEMP_BANNED"),
        (pb.ConnectFailure(Reason=reason("CLIENT_OUTDATED")), Status.ERROR, "CLIENT_OUTDATED"),
        (
            pb.ConnectFailure(Reason=reason("SERVICE_UNAVAILABLE"), Message="try later"),
            Status.RECONNECTING,
            "CONNECT_FAILURE",
        ),
        (pb.StreamReplaced(), Status.DISCONNECTED, "STREAM_REPLACED"),
        (pb.TemporaryBan(Expire=3600), Status.ERROR, "TEMP_BANNED"),
        (pb.ClientOutdated(), Status.ERROR, "CLIENT_OUTDATED"),
        (pb.PairStatus(Status=pb.PairStatus.ERROR, Error="bad code"), None, "PAIR_FAILED"),
    ]
    for event, status, code in cases:
        t = transition_for(event)
        assert t is not None, event
        assert (t.status, t.code) == (status, code), type(event).__name__
    assert transition_for(pb.PairStatus(Status=pb.PairStatus.SUCCESS)) is None
    logged_out = transition_for(pb.LoggedOut())
    assert logged_out is not None and logged_out.forget_auth and not logged_out.recoverable
    temporary = transition_for(pb.ConnectFailure(Reason=reason("SERVICE_UNAVAILABLE")))
    assert temporary is not None and not temporary.stop and not temporary.forget_auth
    assert "try later" in str(
        transition_for(pb.ConnectFailure(Reason=reason("GENERIC"), Message="try later"))
    )


def test_receipts_and_messages_become_webhook_payloads() -> None:
    chat = pb.JID(User="5511977776666", Server="s.whatsapp.net")
    source = pb.MessageSource(Chat=chat, Sender=chat, IsFromMe=False)
    receipt = pb.Receipt(MessageSource=source, MessageIDs=["A", "B"], Type=pb.Receipt.READ)
    assert ack_status(receipt) == "read"
    receipt.Type = pb.Receipt.DELIVERED
    assert ack_status(receipt) == "delivered"
    receipt.Type = pb.Receipt.RETRY
    assert ack_status(receipt) is None
    mine = pb.Receipt(MessageSource=pb.MessageSource(Chat=chat, IsFromMe=True))
    assert ack_status(mine) is None

    event = pb.Message(
        Info=pb.MessageInfo(
            MessageSource=source, ID="3EB0AA", Type="text", Pushname="Maria", Timestamp=1739202900
        ),
    )
    event.Message.conversation = "Olá, tudo bem?"
    got = inbound_from(event, "5511999999999")
    assert got == Inbound(
        id="3EB0AA",
        sender="5511977776666",
        chat="5511977776666@c.us",
        to="5511999999999@c.us",
        body="Olá, tudo bem?",
        type="chat",
        timestamp=1739202900,
        sender_name="Maria",
    )
    event.Info.MessageSource.IsFromMe = True
    assert inbound_from(event, "5511999999999") is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_qr_watchdog_follows_whatsmeows_window() -> None:
    clock = FakeClock()
    dog = QrWatchdog(clock, grace=10)
    assert dog.remaining() is None and not dog.expired()
    assert dog.qr_shown() == 60
    clock.now += 69
    assert not dog.expired()
    for _ in range(5):  # each new code re-arms it for 20 s
        clock.now += 15
        assert dog.qr_shown() == 20
    clock.now += 29
    assert not dog.expired() and dog.remaining() == pytest.approx(1)
    clock.now += 1
    assert dog.expired()
    dog.pairing_code_issued()  # a pairing code gets its own time
    assert dog.remaining() == pytest.approx(180)
    dog.disarm()
    assert not dog.expired() and dog.remaining() is None
    backoff = Backoff(1, 8)
    assert [backoff.next() for _ in range(6)] == [1, 2, 4, 8, 8, 8]
    backoff.reset()
    assert backoff.next() == 1


class Recorder:
    """The runner side of ConnectorEvents, recording what the connector reports."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        async def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args))

        return record


class BlockingClient:
    """Stands in for neonize's client in the QR phase (WhatsApp's servers cannot be
    reached here): connect() shows a QR and blocks, as whatsmeow does, until stop()."""

    def __init__(self) -> None:
        self.qr_cb: Any = None
        self.stopped = asyncio.Event()
        self.event = self

    def qr(self, cb: Any) -> None:
        self.qr_cb = cb

    def __call__(self, _kind: Any) -> Any:
        return lambda _f: None

    async def connect(self) -> asyncio.Task[None]:
        await self.qr_cb(self, b"2@fake-qr-payload")
        return asyncio.ensure_future(self.stopped.wait())  # type: ignore[arg-type]

    async def stop(self) -> None:
        self.stopped.set()


def test_watchdog_ends_a_silent_qr_window_and_start_opens_a_new_one(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        events = Recorder()
        clients: list[BlockingClient] = []

        def factory(db: str, uuid: str, session: str) -> BlockingClient:
            assert db == str(tmp_path / "tokens" / "s1" / AUTH_DB) and session == "s1"
            clients.append(BlockingClient())
            return clients[-1]

        connector = NeonizeConnector(
            "s1",
            tmp_path / "tokens" / "s1",
            events,
            make_settings(home=tmp_path),
            watchdog=QrWatchdog(clock),
            client_factory=factory,
        )
        task = asyncio.create_task(connector.run())
        await asyncio.sleep(0.1)
        assert events.calls[0][0] == "qr" and events.calls[0][1][0] == "2@fake-qr-payload"
        clock.now += 60 + 10  # the first code's 60 s and the grace pass with no scan
        for _ in range(40):
            await asyncio.sleep(0.1)
            if clients[0].stopped.is_set():
                break
        assert clients[0].stopped.is_set()
        last = events.calls[-1]
        assert last[0] == "disconnected" and last[1][0] == Status.DISCONNECTED
        assert "not scanned" in last[1][1]
        assert len(clients) == 1  # idle: no new QR until asked
        await connector.start()
        await asyncio.sleep(0.1)
        assert len(clients) == 2 and events.calls[-1][0] == "qr"
        # logout while showing a QR: client stopped, auth folder emptied, paired again
        (tmp_path / "tokens" / "s1" / AUTH_DB).write_text("x")
        await connector.logout()
        await asyncio.sleep(0.2)
        assert clients[1].stopped.is_set() and not (tmp_path / "tokens" / "s1" / AUTH_DB).exists()
        assert ("logged_out", ()) in events.calls and len(clients) == 3
        task.cancel()

    asyncio.run(scenario())


@pytest.mark.e2e
def test_offline_neonize_runner_backs_off_without_crashing(make_env: Any) -> None:
    """For real: neonize's Go client dials WhatsApp, which cannot be reached here."""
    zv: Env = make_env()
    created = zv.json("create", "real")
    assert created["connector"] == "neonize", "the default for new sessions"
    pid = created["pid"]
    log = zv.home / "logs" / "wa-real.log"

    def delays() -> list[float]:
        text = log.read_text() if log.exists() else ""
        return [float(m) for m in re.findall(r'"delay": ([0-9.]+)', text)]

    wait_for(lambda: len(delays()) >= 4, timeout=40)
    assert delays()[:4] == [1.0, 2.0, 4.0, 8.0]
    shown = zv.json("show", "real")
    assert shown["status"] == "reconnecting" and shown["pid"] == pid
    assert "retrying in" in shown["last_error"]

    # no QR and no pairing code while offline: both say why, in one line
    no_qr = zv.cli("qr", "real", "--wait", "1", check=False)
    assert no_qr.returncode == 69 and len(no_qr.stderr.splitlines()) == 1
    assert no_qr.stderr.startswith("zapvisor: error: real has no QR code after 1 s: ")
    assert "it cannot reach WhatsApp yet (" in no_qr.stderr
    assert "the QR appears once it gets through" in no_qr.stderr
    pair = zv.cli("pair", "real", "--phone", "5511988887777", check=False)
    assert pair.returncode == 69 and len(pair.stderr.splitlines()) == 1
    assert "real cannot take a pairing code now: it cannot reach WhatsApp" in pair.stderr

    # no busy loop: between attempts the runner sleeps
    proc = psutil.Process(pid)
    before = sum(proc.cpu_times()[:2])
    time.sleep(4)
    used = sum(proc.cpu_times()[:2]) - before
    assert used < 0.8, f"runner used {used:.2f} s of CPU in 4 s while waiting"

    # auth inside tokens/<name>/, private; the log stays one JSON object per line
    auth = zv.home / "tokens" / "real"
    assert (auth / AUTH_DB).is_file()
    assert auth.stat().st_mode & 0o777 == 0o700
    assert (auth / AUTH_DB).stat().st_mode & 0o077 == 0
    lines = [json.loads(line) for line in log.read_text().splitlines() if line]
    assert any("web.whatsapp.com" in rec["msg"] for rec in lines if rec.get("delay"))
    assert all(rec["session"] == "real" for rec in lines)
    # the API stays up and tells a sender why
    port = shown["port"]
    from ecosystem import runner_client

    token = zv.cli("token", "real").stdout.strip()
    status, body = runner_client.call(
        "127.0.0.1",
        port,
        "/send-message",
        method="POST",
        token=token,
        body={"phone": "5511999999999", "message": "x"},
    )
    assert status == 503 and body["status"] == "reconnecting"
    status, body = runner_client.call("127.0.0.1", port, "/contacts", token=token)
    assert status == 503  # never reaches whatsmeow's store, which would crash unpaired
    assert zv.json("show", "real")["pid"] == pid
    assert datetime.fromisoformat(zv.json("show", "real")["updated_at"])
