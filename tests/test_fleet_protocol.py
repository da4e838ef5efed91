"""The wire protocol on its own, over in-memory streams: errors come back as the same
class with the same exit code, anything that is not the protocol is refused in one line,
and a host whose protocol or action revision differs is refused naming both versions."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

from ecosystem import __version__
from ecosystem.errors import (
    HostUnreachable,
    InvalidName,
    PortsExhausted,
    ProtocolError,
    RemoteError,
    SessionNotFound,
    VersionSkew,
    ZapvisorError,
)
from ecosystem.fleet import protocol
from ecosystem.fleet.client import AgentClient
from ecosystem.supctl.rpc import SupervisorDown
from tests.conftest import ROOT, Env


def test_errors_travel_as_their_own_class_and_exit_code() -> None:
    for exc in (
        SessionNotFound("no session named x"),
        PortsExhausted("every port is taken", [3001]),
        InvalidName("bad name"),
        SupervisorDown("supervisord is down"),
    ):
        back = protocol.make_error(protocol.error_body(exc))
        assert type(back) is type(exc)
        assert str(back) == str(exc) and back.exit_code == exc.exit_code
    odd = protocol.make_error({"type": "NewerError", "message": "m", "exit_code": 70})
    assert isinstance(odd, RemoteError) and odd.exit_code == 70
    bug = protocol.error_body(KeyError("phone"))
    assert bug["type"] == "RemoteError" and "KeyError" in bug["message"]
    assert isinstance(protocol.make_error("nonsense"), ProtocolError)


def test_lines_that_are_not_the_protocol_are_refused() -> None:
    for line in (b"Welcome to Ubuntu!\n", b"[1, 2]\n", b'{"id": 1, "resu'):
        with pytest.raises(ProtocolError, match="not a protocol"):
            protocol.load(line)
    assert protocol.load(protocol.dump({"id": 1, "result": "ção"})) == {"id": 1, "result": "ção"}


class Pipe:
    """One direction of an in-memory link."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def write(self, data: bytes) -> None:
        self.queue.put_nowait(data)

    async def drain(self) -> None:
        pass

    async def readline(self) -> bytes:
        return await self.queue.get()


async def _client_with(hello: dict[str, Any]) -> tuple[AgentClient, Pipe, Pipe]:
    to_client, to_agent = Pipe(), Pipe()
    client = AgentClient(to_client, to_agent, "vps2")
    to_client.write(protocol.dump(hello))
    await client.handshake(1.0)
    return client, to_client, to_agent


def _hello(protocol_version: int = protocol.PROTOCOL, **methods: int) -> dict[str, Any]:
    revisions = dict(protocol.METHODS) | methods
    return {
        "hello": {
            "version": "9.9.9",
            "protocol": protocol_version,
            "host_id": "vps2",
            "methods": revisions,
        }
    }


def test_another_protocol_is_refused_naming_both_versions() -> None:
    async def scenario() -> None:
        with pytest.raises(VersionSkew) as caught:
            await _client_with(_hello(protocol.PROTOCOL + 1))
        text = str(caught.value)
        assert "vps2 runs zapvisor 9.9.9" in text and __version__ in text
        assert "zapvisor hosts upgrade vps2" in text and caught.value.exit_code == 69

    asyncio.run(scenario())


def test_one_action_of_another_revision_is_refused_the_others_work() -> None:
    async def scenario() -> None:
        client, to_client, to_agent = await _client_with(_hello(restart=2))
        with pytest.raises(VersionSkew) as caught:
            await client.call("restart", {"name": "a"}, timeout=1)
        assert "restart on vps2 refused" in str(caught.value)
        assert "9.9.9 (restart: revision 2)" in str(caught.value)
        assert to_agent.queue.empty(), "nothing was sent for the refused action"

        # another action goes through; replies are matched by id, in any order
        first = asyncio.ensure_future(client.call("show", {"name": "a"}, timeout=1))
        second = asyncio.ensure_future(client.call("show", {"name": "b"}, timeout=1))
        sent = [protocol.load(await to_agent.readline()) for _ in range(2)]
        assert [m["params"]["name"] for m in sent] == ["a", "b"]
        to_client.write(protocol.dump({"id": sent[1]["id"], "result": "B"}))
        error = protocol.error_body(SessionNotFound("no session named a"))
        to_client.write(protocol.dump({"id": sent[0]["id"], "error": error}))
        assert await second == "B"
        with pytest.raises(SessionNotFound, match="no session named a"):
            await first

        # a silent host: the call gives up after its timeout, naming the host
        with pytest.raises(HostUnreachable, match=r"vps2 did not answer show within 0\.2 s"):
            await client.call("show", {"name": "c"}, timeout=0.2)
        # the link drops: calls in flight fail at once, and later ones too
        waiting = asyncio.ensure_future(client.call("show", {"name": "d"}, timeout=5))
        await asyncio.sleep(0.05)
        to_client.write(b"")
        with pytest.raises(ZapvisorError, match="link closed"):
            await waiting
        with pytest.raises(HostUnreachable):
            await client.call("show", {"name": "e"}, timeout=1)
        await client.close()

    asyncio.run(scenario())


def test_a_call_given_up_on_leaves_nothing_behind_and_its_late_reply_is_dropped() -> None:
    """A link lives for hours: calls that time out or whose caller is cancelled must not
    stay in the table of calls in flight, and their late replies must go nowhere."""

    async def scenario() -> None:
        client, to_client, to_agent = await _client_with(_hello())
        with pytest.raises(HostUnreachable):
            await client.call("show", {"name": "a"}, timeout=0.05)
        late = protocol.load(await to_agent.readline())
        cancelled = asyncio.ensure_future(client.call("show", {"name": "b"}, timeout=30))
        sent = protocol.load(await to_agent.readline())
        assert len(client._pending) == 1, "the call in flight is tracked"
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert client._pending == {}, "a cancelled call left its entry behind"
        for message in (late, sent):
            to_client.write(protocol.dump({"id": message["id"], "result": "late"}))
        answered = asyncio.ensure_future(client.call("show", {"name": "c"}, timeout=1))
        third = protocol.load(await to_agent.readline())
        to_client.write(protocol.dump({"id": third["id"], "result": "C"}))
        assert await answered == "C", "late replies to given-up calls disturbed the link"
        assert client._pending == {} and client.alive
        await client.close()

    asyncio.run(scenario())


def test_the_agent_answers_every_line_and_leaves_when_the_link_closes(zv: Env) -> None:
    """The real `zapvisor agent --stdio` (on the embedded store): hello first, then
    one answer per request whatever it holds; stdin closed, it exits 0."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli.main", "agent", "--stdio"],
        env=zv.vars | {"ZAPVISOR_HOST_ID": "vps9"},
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        hello = protocol.Hello.from_json(protocol.load(proc.stdout.readline()))
        assert (hello.host_id, hello.version, hello.protocol) == ("vps9", __version__, 1)
        assert hello.methods == protocol.METHODS

        def ask(line: bytes) -> dict[str, Any]:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(line)
            proc.stdin.flush()
            return protocol.load(proc.stdout.readline())

        garbage = ask(b"Welcome to Ubuntu 24.04\n")
        assert garbage["id"] is None and garbage["error"]["type"] == "ProtocolError"
        shell = ask(protocol.dump({"id": 1, "method": "__init__", "params": {}}))
        assert shell["error"]["type"] == "ProtocolError" and "not an action" in str(shell)
        odd = ask(protocol.dump({"id": 2, "method": "show", "params": {"name": "a", "x": 1}}))
        assert odd["error"]["type"] == "ProtocolError" and "unexpected parameter" in str(odd)
        bad = ask(protocol.dump({"id": 3, "method": "show", "params": {"name": "../etc"}}))
        assert bad["error"]["type"] == "InvalidName" and bad["error"]["exit_code"] == 65
        missing = ask(protocol.dump({"id": 4, "method": "show", "params": {"name": "nope"}}))
        assert missing["error"]["type"] == "SessionNotFound"
        assert missing["error"]["exit_code"] == 66
        proc.stdin.close()
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_agent_refuses_a_terminal_and_needs_stdio(zv: Env) -> None:
    out = zv.cli("agent", check=False)
    assert out.returncode == 65 and "needs --stdio" in out.stderr
