"""zapvisor's XML-RPC client (ecosystem/supctl/wire.py) says and reads what xmlrpc.client
and supervisord do: its calls are read by supervisord's own parser, the answers
supervisord's own marshaller writes read back as xmlrpc.client reads them, and every
way a call can fail says the same as before, against a real supervisord."""

from __future__ import annotations

import socket
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest
from supervisor.xmlrpc import supervisor_xmlrpc_handler, xmlrpc_marshal

from ecosystem.errors import SupervisorError
from ecosystem.paths import StatePaths
from ecosystem.supctl import daemon, wire
from ecosystem.supctl.rpc import BAD_NAME, Fault, Supervisor, SupervisorDown
from tests.conftest import Env

PROCESS = {
    "name": "wa-a1",
    "group": "wa-a1",
    "statename": "RUNNING",
    "state": 20,
    "pid": 4242,
    "start": 1_796_300_187,
    "stop": 0,
    "now": 1_796_300_502,
    "exitstatus": 0,
    "spawnerr": "",
    "description": "pid 4242, uptime 0:05:15",
    "logfile": "/tmp/x & <y>.log",
}

ANSWERS: list[Any] = [
    [PROCESS, {**PROCESS, "name": "wa-é☃", "pid": 0, "statename": "FATAL"}],
    "",
    "a & b < c > d\né ☃ \t",
    0,
    -5,
    2**31 - 1,
    True,
    False,
    1.5,
    [],
    {},
    [[["wa-a"], [], ["wa-b", "wa-c"]]],  # reloadConfig
    ["some stderr", 812, False],  # tailProcessStderrLog
]


@pytest.mark.parametrize("value", ANSWERS, ids=range(len(ANSWERS)))
def test_answers_read_as_xmlrpc_client_reads_them(value: Any) -> None:
    body = xmlrpc_marshal(value).encode()  # what supervisord sends
    assert wire.loads(body) == value
    assert wire.loads(body) == xmlrpc.client.loads(body)[0][0]


def test_a_fault_comes_back_with_its_code_and_text() -> None:
    body = xmlrpc_marshal(xmlrpc.client.Fault(BAD_NAME, "BAD_NAME: wa-x")).encode()
    with pytest.raises(Fault) as caught:
        wire.loads(body)
    assert (caught.value.faultCode, caught.value.faultString) == (BAD_NAME, "BAD_NAME: wa-x")
    assert str(caught.value) == str(xmlrpc.client.Fault(BAD_NAME, "BAD_NAME: wa-x"))


@pytest.mark.parametrize(
    "args",
    [(), ("wa-a1",), ("wa-a1", True), ("wa-a1", 0, 4096), (-65536, 0), ("a&<b>é ☃", False)],
)
def test_calls_read_as_supervisord_reads_them(args: tuple[object, ...]) -> None:
    body = wire.dumps("supervisor.startProcess", args)
    handler = object.__new__(supervisor_xmlrpc_handler)
    assert handler.loads(body.decode()) == (args, "supervisor.startProcess")
    assert xmlrpc.client.loads(body) == (args, "supervisor.startProcess")


def test_what_xmlrpc_cannot_carry_is_refused_before_sending() -> None:
    with pytest.raises(TypeError, match="cannot send a NoneType"):
        wire.dumps("supervisor.getState", (None,))
    with pytest.raises(OverflowError):
        wire.dumps("supervisor.readLog", (2**31, 0))


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<html>not found</html>", "unknown element <html>"),
        (b"<methodResponse><params>", "not XML-RPC"),
        (b"<methodResponse><params><param><value><boolean>2</boolean>", "bad boolean"),
        (
            b"<methodResponse><params><param><value><dateTime.iso8601>20261203T12:00:00"
            b"</dateTime.iso8601></value></param></params></methodResponse>",
            "unknown element <dateTime.iso8601>",
        ),
        (b"<methodResponse><params></params></methodResponse>", "holds 0 values"),
    ],
)
def test_an_answer_that_is_not_xmlrpc_says_so(body: bytes, why: str) -> None:
    with pytest.raises(wire.BadAnswer, match=why):
        wire.loads(body)


@pytest.mark.e2e
def test_a_real_supervisord_through_every_failure(zv: Env, tmp_path: Path) -> None:
    """Faults keep the connection; a supervisord restarted under a kept connection is
    reached again; wrong credentials, no socket and a socket that never answers each
    say what is wrong, as the xmlrpc.client transport did."""
    zv.cli("create", "a1", "--connector", "sim", "--stopped")
    paths = StatePaths(zv.home)
    sup = daemon.client(paths)
    assert sup.state() == "RUNNING" and sup.process_info("wa-a1") is not None
    assert sup.process_info("wa-nope") is None  # BAD_NAME, answered on the same connection
    with pytest.raises(SupervisorError, match="could not start wa-nope: BAD_NAME: wa-nope"):
        sup.start("wa-nope")
    with pytest.raises(Fault, match="UNKNOWN_METHOD"):
        sup.call("noSuchMethod")
    first = sup.pid()

    zv.cli("shutdown")
    zv.cli("list")  # brings supervisord up again; the client's kept socket is dead
    assert sup.state() == "RUNNING" and sup.pid() != first

    creds = daemon.credentials(paths)
    wrong = Supervisor(paths.socket, creds.username, creds.password + "x")
    with pytest.raises(SupervisorError, match="refused zapvisor's credentials"):
        wrong.state()

    with pytest.raises(SupervisorDown, match=r"supervisord is not running \(no answer on "):
        Supervisor(tmp_path / "none.sock", "u", "p").state()

    mute = tmp_path / "mute.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(mute))
        listener.listen()  # connects, never answers
        with pytest.raises(SupervisorError, match=r"did not answer within 0.3 s"):
            Supervisor(mute, "u", "p", timeout=0.3).state()
