"""The neonize connector's life, in-process: QR watchdog, recycling when a client cannot
be ended, retries, event order and errors, stop.

Real: the connector, the events it receives (real neonize protos: `neonize.proto`), its
handover file, the QR watchdog (on a controllable clock). Stands in: neonize's client,
since WhatsApp's servers cannot be reached here. `StandIn` carries neonize's real
`Event` (handlers register on it; an event reaches them as the Go side delivers it:
serialised bytes through `Event.execute`, which decodes them, keeps a `Device` as
``client.me`` and schedules the handler with ``run_coroutine_threadsafe`` without
awaiting it), shows a QR on connect and returns a connect task that ends on stop() only
when told to: a paired neonize client's Neonize() call returns after Stop, an unpaired
one's never does (whatsmeow's QR loop checks no cancellation).
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from neonize.proto import Neonize_pb2 as pb
from neonize.utils.jid import build_jid

from ecosystem.backoff import Backoff
from ecosystem.models import utcnow
from ecosystem.states import Status
from runner.connectors.base import NotConnected, Recipient, RestartRunner
from runner.connectors.neonize import AUTH_DB
from runner.connectors.neonize_handover import HANDOVER, MAX_CLIENTS
from runner.connectors.neonize_map import QrWatchdog
from tests.neonize_harness import OWN, Recorder, StandIn, connector, running, text_message, until
from tests.test_neonize import FakeClock
from tests.test_neonize_messages import PHONE, lid_source, message


def test_qr_window_ends_and_start_opens_a_new_one(tmp_path: Path) -> None:
    """A client whose connect returns after stop (as a paired one does) is ended in
    this process: no recycle."""

    async def scenario() -> None:
        clock, events, clients = FakeClock(), Recorder(), list[StandIn]()
        c = connector(
            tmp_path,
            events,
            clients,
            lambda: StandIn(ends_on_stop=True),
            watchdog=QrWatchdog(clock),
        )
        task = asyncio.create_task(c.run())
        await until(lambda: events.named("qr"))
        assert events.named("qr")[0][0] == "2@fake-qr-payload"
        clock.now += 60 + 10  # the first code's 60 s and the grace pass with no scan
        await until(lambda: events.named("disconnected"))
        status, reason = events.named("disconnected")[-1]
        assert status == Status.DISCONNECTED and "not scanned" in reason
        assert clients[0].stops == 1 and not c.leaves_thread and len(clients) == 1
        await c.start()
        await until(lambda: len(clients) == 2 and len(events.named("qr")) == 2)
        # logout while showing a QR: client stopped, auth folder emptied, paired again
        (tmp_path / "tokens" / "s1" / AUTH_DB).write_text("x")
        await c.logout()
        await until(lambda: len(clients) == 3)
        assert clients[1].stops == 1 and not (tmp_path / "tokens" / "s1" / AUTH_DB).exists()
        assert events.named("logged_out") == [()]
        task.cancel()
        await c.close()

    asyncio.run(scenario())


def test_an_unpaired_client_that_cannot_end_recycles_the_runner(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        c, task, events, clients = running(
            tmp_path, ends_on_stop=False, watchdog=QrWatchdog(clock), stop_wait=0.1
        )
        await until(lambda: events.named("qr"))
        clock.now += 70
        with pytest.raises(RestartRunner, match="cannot be ended"):
            await asyncio.wait_for(task, 10)
        assert clients[0].stops == 1 and c.leaves_thread, "the runner must not join it"
        status, reason = events.named("disconnected")[-1]
        assert status == Status.DISCONNECTED and "not scanned" in reason
        saved = json.loads((tmp_path / "tokens" / "s1" / HANDOVER).read_text())
        assert saved["wait"] is None and saved["reason"] == reason
        await c.close()

        # the next runner: no client until POST /start, the same reason on show
        c, task, events, clients = running(tmp_path, ends_on_stop=True)
        await until(lambda: events.named("disconnected"))
        assert events.named("disconnected") == [(Status.DISCONNECTED, reason)]
        assert not (tmp_path / "tokens" / "s1" / HANDOVER).exists(), "used once"
        await asyncio.sleep(0.2)
        assert clients == []
        await c.start()
        await until(lambda: events.named("qr"))
        task.cancel()
        await c.close()

    asyncio.run(scenario())


def test_logout_while_a_stuck_qr_shows_pairs_again_in_a_fresh_runner(tmp_path: Path) -> None:
    async def scenario() -> None:
        c, task, events, _ = running(tmp_path, ends_on_stop=False, stop_wait=0.1)
        await until(lambda: events.named("qr"))
        auth = tmp_path / "tokens" / "s1"
        (auth / AUTH_DB).write_text("old device")
        await c.logout()
        with pytest.raises(RestartRunner):
            await asyncio.wait_for(task, 10)
        assert (auth / AUTH_DB).exists(), "not removed under a running client"
        await c.close()

        c, task, events, clients = running(tmp_path, ends_on_stop=True)
        await until(lambda: events.named("qr"))
        assert not (auth / AUTH_DB).exists() and len(clients) == 1
        task.cancel()
        await c.close()

    asyncio.run(scenario())


def test_after_max_clients_the_runner_recycles_keeping_the_backoff(tmp_path: Path) -> None:
    async def scenario() -> None:
        events, clients = Recorder(), list[StandIn]()
        c = connector(
            tmp_path,
            events,
            clients,
            lambda: StandIn(ends_on_stop=True, fail=OSError("no route to host")),
            backoff=Backoff(0.001, 0.004),
        )
        with pytest.raises(RestartRunner, match=f"{MAX_CLIENTS} clients used"):
            await asyncio.wait_for(c.run(), 10)
        assert len(clients) == MAX_CLIENTS
        status, reason = events.named("disconnected")[-1]
        assert status == Status.RECONNECTING and "no route to host; retrying in" in reason
        saved = json.loads((tmp_path / "tokens" / "s1" / HANDOVER).read_text())
        assert saved["wait"] == 0.004 and saved["failures"] == MAX_CLIENTS
        await c.close()

        # the next runner waits that delay first, and goes on from the same step
        events, clients = Recorder(), list[StandIn]()
        backoff = Backoff(0.001, 0.004)
        c = connector(
            tmp_path, events, clients, lambda: StandIn(ends_on_stop=True), backoff=backoff
        )
        task = asyncio.create_task(c.run())
        await until(lambda: events.named("qr"))
        assert events.named("disconnected")[0] == (status, reason)
        assert backoff.failures == MAX_CLIENTS, "not back to the first delay"
        task.cancel()
        await c.close()

    asyncio.run(scenario())


def test_connect_failure_stops_the_client_and_retries(tmp_path: Path) -> None:
    async def scenario() -> None:
        c, task, events, clients = running(tmp_path, ends_on_stop=True, backoff=Backoff(0.01, 0.01))
        await until(lambda: clients)
        # whatsmeow sends its Device before Connected; neonize keeps it as client.me
        await clients[0].emit(pb.Device(JID=build_jid(OWN)))
        await clients[0].emit(pb.Connected(status=True))
        await until(lambda: events.named("connected"))
        assert events.named("connected") == [(OWN,)]
        assert clients[0].get_me_calls == 0, "client.me, no get_me() round trip"
        reason = pb.ConnectFailureReason.Value("GENERIC")
        await clients[0].emit(pb.ConnectFailure(Reason=reason, Message="bad"))
        await until(lambda: len(clients) == 2)
        assert clients[0].stops == 1
        assert (events.named("error")[0][:2]) == (
            "CONNECT_FAILURE",
            "WhatsApp refused the connection: GENERIC (bad)",
        )
        # the old client's late events change nothing
        before = list(events.calls)
        await clients[0].emit(pb.Connected(status=True))
        await clients[0].emit(pb.LoggedOut())
        await asyncio.sleep(0.1)
        assert events.calls == before
        # a connect call that ends by itself (neonize 0.5.2's Go side ends its event
        # loop when it cannot encode an event): that client is stopped too, and retried
        clients[1].blocker.set()
        await until(lambda: len(clients) == 3)
        assert clients[1].stops == 1
        task.cancel()
        await c.close()

    asyncio.run(scenario())


def test_events_are_handled_in_order_and_failures_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        c, task, events, clients = running(tmp_path, ends_on_stop=True)
        await until(lambda: clients)
        client = clients[0]
        # scheduled back to back, as neonize does; Connected's handler asks the Go side
        # for the own number (no Device came), and Disconnected must still win
        await client.emit(pb.Connected(status=True))
        await client.emit(pb.Disconnected(status=True))
        await until(lambda: events.named("disconnected"))
        await asyncio.sleep(0.1)
        assert client.get_me_calls == 1
        assert [n for n, _ in events.calls if n != "qr"] == ["connected", "disconnected"]
        with pytest.raises(NotConnected):
            await c.send_text(Recipient("5511977776666"), "x")
        await client.emit(pb.KeepAliveRestored())
        await until(lambda: len(events.named("connected")) == 2)

        events.fail_on = "message_received"
        await client.emit(text_message("M1", "one"))
        await until(lambda: "handling a Message event failed" in caplog.text)
        events.fail_on = None
        await client.emit(text_message("M2", "two"))
        await until(lambda: events.named("message_received"))
        assert events.named("message_received")[0][0].id == "M2", "the pump goes on"
        task.cancel()
        await c.close()

    caplog.set_level(logging.ERROR, logger="runner.neonize")
    asyncio.run(scenario())
    failed = [r for r in caplog.records if "handling a Message event failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].exc_info, "with its traceback"


def test_close_takes_the_link_down_first_and_waits_for_calls(tmp_path: Path) -> None:
    async def scenario() -> None:
        me = pb.Device(JID=build_jid(OWN))
        c, task, events, clients = running(tmp_path, ends_on_stop=True, me=me)
        await until(lambda: clients)
        client = clients[0]
        await client.emit(pb.Connected(status=True))
        await until(lambda: events.named("connected"))
        client.release.clear()  # a send in flight inside the Go side
        sending = asyncio.create_task(c.send_text(Recipient("5511977776666"), "olá"))
        await until(lambda: c._gate.calls == 1)
        # a message whatsmeow delivered just before the stop is still reported
        await client.emit(text_message("LATE", "late"))
        task.cancel()
        closing = asyncio.create_task(c.close())
        await asyncio.sleep(0.1)
        with pytest.raises(NotConnected):
            await c.contacts()  # the API's next request: refused, never reaches Go
        assert client.stops == 0, "the stop waits for the call in flight"
        client.release.set()
        sent = await sending
        await closing
        assert client.stops == 1 and sent.id == "3EB0SENT"
        assert client.sent[0].conversation == "olá"
        assert [m[0].id for m in events.named("message_received")] == ["LATE"]
        assert not c.leaves_thread

    asyncio.run(scenario())


def test_a_pairing_code_expires_with_the_qr_window(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        c, task, events, clients = running(tmp_path, ends_on_stop=True, watchdog=QrWatchdog(clock))
        await until(lambda: events.named("qr"))
        clock.now += 100  # whatsmeow closes the login socket 160 s after the first code
        assert await c.pair_phone("5511977776666") == "ABCD-EFGH"
        left = (c.pair_code_expires_at() - utcnow()).total_seconds()
        assert 58 <= left <= 60, "not WhatsApp's 3 minutes: the window's last 60 s"
        phone, notify, kw = clients[0].sent[0]
        assert (phone, notify, kw["client_type"].name) == ("5511977776666", True, "Chrome")
        await clients[0].emit(pb.Connected(status=True))
        await until(lambda: events.named("connected"))
        with pytest.raises(NotConnected, match="not waiting to be paired"):
            await c.pair_phone("5511977776666")
        task.cancel()
        await c.close()

    asyncio.run(scenario())


def test_a_lid_is_reported_by_its_number_from_whatsmeows_store(tmp_path: Path) -> None:
    """A contact addressed by LID with no number in the event (no sender_pn): the
    linked client's store gives the number for the message and for the acks, which
    come for every id, also ones typed on the phone that the API never returned."""

    async def scenario() -> None:
        c, task, events, clients = running(tmp_path, ends_on_stop=True)
        await until(lambda: clients)
        client = clients[0]
        await client.emit(pb.Device(JID=build_jid(OWN)))
        await client.emit(pb.Connected(status=True))
        await until(lambda: events.named("connected"))
        event = message(lid_source(alt=False))
        event.Message.conversation = "oi"
        await client.emit(event)
        read = pb.Receipt(
            MessageSource=lid_source(alt=False),
            MessageIDs=["3EB0PHONE1", "3EB0PHONE2"],
            Type=pb.Receipt.READ,
        )
        await client.emit(read)
        await until(lambda: len(events.named("message_ack")) == 2)
        (got,) = events.named("message_received")
        assert (got[0].chat, got[0].sender, got[0].timestamp) == (
            f"{PHONE}@c.us",
            PHONE,
            1739202900,
        )
        assert events.named("message_ack") == [
            ("3EB0PHONE1", "read", f"{PHONE}@c.us"),
            ("3EB0PHONE2", "read", f"{PHONE}@c.us"),
        ]
        task.cancel()
        await c.close()

    asyncio.run(scenario())
