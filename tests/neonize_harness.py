"""The in-process harness of the neonize connector's tests: a stand-in for neonize's
client carrying neonize's real `Event` (see tests/test_neonize_connector.py), a recorder
of what the connector reports to the runner, and the wiring between them.

WhatsApp's servers cannot be reached here: `StandIn` replaces neonize's client only.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neonize.aioze import events as neonize_events
from neonize.events import EVENT_TO_INT
from neonize.proto import Neonize_pb2 as pb
from neonize.utils.jid import build_jid

from ecosystem.settings import make_settings
from runner.connectors.neonize import AUTH_DB, NeonizeConnector
from runner.connectors.neonize_store import ClientStore
from tests.test_neonize_messages import LID, PHONE, wire

OWN = "5511999999999"


class Recorder:
    """The runner side of ConnectorEvents, recording what the connector reports."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail_on: str | None = None

    def __getattr__(self, name: str) -> Any:
        async def record(*args: Any, **kwargs: Any) -> None:
            if name == self.fail_on:
                raise RuntimeError(f"{name} broke")
            self.calls.append((name, args))

        return record

    def named(self, name: str) -> list[Any]:
        return [args for n, args in self.calls if n == name]


class StandIn:
    def __init__(self, *, ends_on_stop: bool, me: Any = None, fail: Exception | None = None):
        self.ends_on_stop = ends_on_stop
        self.fail = fail
        # neonize's connect() points its dispatch at the running loop (once a process)
        neonize_events.event_global_loop = asyncio.get_running_loop()
        self.event = neonize_events.Event(self)
        self.me = me
        self.get_me_calls = 0
        self.stops = 0
        self.blocker = asyncio.Event()
        self.sent: list[Any] = []
        self.release = asyncio.Event()
        self.release.set()

    async def connect(self) -> asyncio.Future[Any]:
        if self.fail is not None:
            raise self.fail
        await self.event._qr(self, b"2@fake-qr-payload")
        return asyncio.ensure_future(self.blocker.wait())

    async def stop(self) -> None:
        self.stops += 1
        if self.ends_on_stop:
            self.blocker.set()

    async def PairPhone(self, phone: str, notify: bool, **kw: Any) -> str:
        self.sent.append((phone, notify, kw))
        return "ABCD-EFGH"

    async def emit(self, event: Any) -> None:
        """What neonize's Go side does with an event: hand its bytes to Event.execute,
        which schedules the registered handler and returns at once."""
        data = wire(event)
        buf = ctypes.create_string_buffer(data, len(data))
        self.event.execute(0, ctypes.addressof(buf), len(data), EVENT_TO_INT[type(event)])

    async def get_pn_from_lid(self, lid: pb.JID) -> pb.JID:
        """whatsmeow's LID → number store, which knows one contact."""
        if lid.User != LID:
            raise RuntimeError("no mapping")
        return build_jid(PHONE)

    async def get_me(self) -> pb.Device:
        """A round trip to the Go side: other events are scheduled meanwhile."""
        self.get_me_calls += 1
        await asyncio.sleep(0.05)
        return pb.Device(JID=build_jid(OWN))

    async def send_message(self, to: Any, message: Any) -> Any:
        await self.release.wait()
        self.sent.append(message)
        return pb.SendResponse(ID="3EB0SENT")


async def until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def connector(
    tmp_path: Path, events: Recorder, clients: list[StandIn], make: Callable[[], StandIn], **kw: Any
) -> NeonizeConnector:
    def factory(db: str, uuid: str, session: str, where: ClientStore | None) -> StandIn:
        assert db == str(tmp_path / "tokens" / "s1" / AUTH_DB) and session == "s1"
        assert where is None, "no context: the session's own SQLite file"
        assert uuid == f"s1#{len(clients) + 1}", "one neonize uuid per client generation"
        clients.append(make())
        return clients[-1]

    settings = make_settings(home=tmp_path)
    return NeonizeConnector(
        "s1", tmp_path / "tokens" / "s1", events, settings, client_factory=factory, **kw
    )


Running = tuple[NeonizeConnector, "asyncio.Task[None]", Recorder, list[StandIn]]


def running(tmp_path: Path, *, ends_on_stop: bool, me: Any = None, **kw: Any) -> Running:
    events, clients = Recorder(), list[StandIn]()
    make = functools.partial(StandIn, ends_on_stop=ends_on_stop, me=me)
    c = connector(tmp_path, events, clients, make, **kw)
    return c, asyncio.create_task(c.run()), events, clients


def text_message(message_id: str, text: str) -> pb.Message:
    source = pb.MessageSource(Chat=build_jid("5511977776666"), Sender=build_jid("5511977776666"))
    event = pb.Message(Info=pb.MessageInfo(MessageSource=source, ID=message_id, Timestamp=1000))
    event.Message.conversation = text
    return event
