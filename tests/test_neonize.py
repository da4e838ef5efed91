"""The neonize connector: its event → state mapping with real neonize event objects
(`neonize.proto`), the QR watchdog on a controllable clock, and a real neonize runner
offline (there is no route to WhatsApp here) under a real supervisord."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any

import psutil
import pytest
from neonize.proto import Neonize_pb2 as pb

from ecosystem.states import Status
from runner.connectors.neonize import AUTH_DB
from runner.connectors.neonize_map import QrWatchdog, transition_for
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
            pb.ConnectFailure(Reason=reason("GENERIC"), Message="try later"),
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
    # whatsmeow sends ConnectFailure only for reasons it does not handle (500/503 it
    # retries silently) and then blocks its own reconnect: stop and retry
    unknown = transition_for(pb.ConnectFailure(Reason=reason("EXPERIMENTAL")))
    assert unknown is not None and unknown.stop and unknown.retry and not unknown.forget_auth
    for event in (pb.StreamReplaced(), pb.LoggedOut(), pb.TemporaryBan()):
        t = transition_for(event)
        assert t is not None and t.stop and not t.retry, "these wait for POST /start"
    assert "try later" in str(
        transition_for(pb.ConnectFailure(Reason=reason("GENERIC"), Message="try later"))
    )


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
    dog.disarm()
    # a pairing code gets WhatsApp's 3 minutes, but not past whatsmeow's QR window:
    # its login socket closes 160 s after the first code
    dog.qr_shown()
    clock.now += 5
    assert dog.pairing_code_issued() == pytest.approx(155)
    assert dog.remaining() == pytest.approx(155 + 10)
    clock.now += 100
    assert dog.pairing_code_issued() == pytest.approx(55)
    dog.disarm()
    assert dog.pairing_code_issued() == pytest.approx(180), "no QR yet: no window to cap"
    dog.disarm()
    assert not dog.expired() and dog.remaining() is None


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
