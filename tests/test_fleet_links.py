"""How a link opens, over in-memory streams: an agent slow to say hello (a host under
heavy load) is waited for past the connect timeout, and is not killed by a caller that
gives up on it; a host that never answers is still unreachable within the caller's own
timeout."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from ecosystem import __version__
from ecosystem.errors import HostUnreachable
from ecosystem.fleet import protocol
from ecosystem.fleet.links import AgentStreams, HostLinks


class _Pipe:
    """The agent's stdin as the client writes it: lines, for the fake agent to read."""

    def __init__(self) -> None:
        self.lines: asyncio.Queue[bytes] = asyncio.Queue()

    def write(self, data: bytes) -> None:
        for line in data.splitlines():
            self.lines.put_nowait(line)

    async def drain(self) -> None:
        pass


class FakeAgents:
    """Agents that say hello after ``hello_after`` seconds (never, when None), then
    answer every call with ``{"asked": METHOD}``, ``answer_after`` seconds after it."""

    def __init__(self, hello_after: float | None, answer_after: float = 0.0) -> None:
        self.hello_after = hello_after
        self.answer_after = answer_after
        self.opened = 0
        self.closed = 0

    async def open(self, host: str, timeout: float) -> AgentStreams:
        self.opened += 1
        reader = asyncio.StreamReader()
        stdin = _Pipe()

        async def serve() -> None:
            if self.hello_after is None:
                return
            await asyncio.sleep(self.hello_after)
            hello = protocol.Hello(__version__, protocol.PROTOCOL, host, protocol.METHODS)
            reader.feed_data(json.dumps(hello.to_json()).encode() + b"\n")
            while True:
                request = json.loads(await stdin.lines.get())
                await asyncio.sleep(self.answer_after)
                reply = {"id": request["id"], "result": {"asked": request["method"]}}
                reader.feed_data(json.dumps(reply).encode() + b"\n")

        task = asyncio.get_running_loop().create_task(serve())

        async def close() -> None:
            self.closed += 1
            task.cancel()
            reader.feed_eof()

        return AgentStreams(reader, stdin, close)


def links_to(agents: FakeAgents, **timeouts: float) -> HostLinks:
    return HostLinks(agents.open, hosts=lambda: ["vps-s"], **timeouts)


def test_an_agent_slow_to_say_hello_is_waited_for_past_the_connect_timeout() -> None:
    agents = FakeAgents(hello_after=1.5)
    links = links_to(agents, connect_timeout=0.5, hello_timeout=30)
    try:
        answer = links.call("vps-s", "host_report", {}, timeout=5)
        assert answer == {"asked": "host_report"}
        assert links.reach("vps-s").reachable is True and agents.opened == 1
    finally:
        links.close()


def test_a_caller_that_gives_up_leaves_the_link_opening_for_the_next_one() -> None:
    """A live view asks within HOST_TIMEOUT: past it the host shows unreachable, but the
    agent it started keeps starting and the next tick finds it (one agent, not one per
    tick, none of which would ever get to say hello on a slow host)."""
    agents = FakeAgents(hello_after=1.5)
    links = links_to(agents, connect_timeout=0.5, hello_timeout=30)
    try:
        started = time.monotonic()
        with pytest.raises(HostUnreachable, match=r"did not answer host_report within 0\.5 s"):
            links.loop.run(links.within("vps-s", "host_report", 0.5), 10)
        assert time.monotonic() - started < 1.4
        assert links.reach("vps-s").reachable is False
        deadline = time.monotonic() + 10
        answer: Any = None
        while answer is None and time.monotonic() < deadline:
            try:
                answer = links.loop.run(links.within("vps-s", "host_report", 0.5), 10)
            except HostUnreachable:
                continue
        assert answer == {"asked": "host_report"}
        assert agents.opened == 1 and agents.closed == 0
        assert links.reach("vps-s").reachable is True
    finally:
        links.close()
    assert agents.closed == 1


def test_a_link_that_opens_as_its_caller_gives_up_is_kept_for_the_next_one() -> None:
    """The agent says hello 0.3 s into a 0.5 s call and answers 0.5 s after being asked:
    the caller runs out of time on a link that had only 0.2 s to answer. That link
    is kept and answers the next call; no second agent is started (once dropped this
    way, a slow host's every new agent would meet the same end)."""
    agents = FakeAgents(hello_after=0.3, answer_after=0.5)
    links = links_to(agents, connect_timeout=0.5, hello_timeout=30)
    try:
        with pytest.raises(HostUnreachable, match=r"did not answer host_report within 0\.5 s"):
            links.loop.run(links.within("vps-s", "host_report", 0.5), 10)
        assert links.hello("vps-s") is not None, "the link that opened is still there"
        answer = links.loop.run(links.within("vps-s", "host_report", 5), 10)
        assert answer == {"asked": "host_report"}
        assert (agents.opened, agents.closed) == (1, 0)
    finally:
        links.close()


def test_a_host_that_never_says_hello_is_unreachable_within_the_callers_timeout() -> None:
    agents = FakeAgents(hello_after=None)
    links = links_to(agents, connect_timeout=0.5, hello_timeout=2)
    try:
        started = time.monotonic()
        with pytest.raises(HostUnreachable):
            links.loop.run(links.within("vps-s", "host_report", 1.0), 10)
        assert time.monotonic() - started < 2
        assert links.reach("vps-s").reachable is False
        # the opening it left gives up after hello_timeout, closing what it started
        with pytest.raises(HostUnreachable, match=r"no hello from its agent within 2 s"):
            links.call("vps-s", "host_report", {}, timeout=5)
        assert agents.opened == 1 and agents.closed == 1
    finally:
        links.close()
