"""XML-RPC to supervisord over its unix socket: the HTTP spoken by h11, the XML by expat.

``xmlrpc.client`` brings ``http.client`` with it, and that brings ``email`` and ``ssl``:
about a tenth of a short command's time, for a socket that is never TLS and answers
that never carry a MIME message. This speaks exactly what supervisord's XML-RPC
interface uses: calls with string, int and boolean arguments; answers made of structs,
arrays, strings, ints, booleans and doubles, or a fault.
"""

from __future__ import annotations

import binascii
import socket
from typing import Any
from xml.parsers import expat

import h11

MAX_ANSWER = 64 * 1024 * 1024
"""Bytes an answer may take (getAllProcessInfo at 200 programs is ~250 KB)."""

_INT_LIMITS = range(-(2**31), 2**31)


class Fault(Exception):
    """supervisord refused the call: ``faultCode`` is one of supervisor.xmlrpc.Faults."""

    def __init__(self, faultCode: int, faultString: str) -> None:
        super().__init__(faultCode, faultString)
        self.faultCode = faultCode
        self.faultString = faultString

    def __str__(self) -> str:
        return f"<Fault {self.faultCode}: {self.faultString!r}>"


class HTTPRefused(Exception):
    """supervisord answered the request with an HTTP status other than 200."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason


class BadAnswer(Exception):
    """What came back is not an XML-RPC answer this client can read."""


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _value(arg: object) -> str:
    if isinstance(arg, bool):
        return f"<boolean>{int(arg)}</boolean>"
    if isinstance(arg, int):
        if arg not in _INT_LIMITS:
            raise OverflowError(f"{arg} exceeds XML-RPC's 32-bit int")
        return f"<int>{arg}</int>"
    if isinstance(arg, str):
        return f"<string>{_escape(arg)}</string>"
    raise TypeError(f"cannot send a {type(arg).__name__} to supervisord")


def dumps(method: str, args: tuple[object, ...]) -> bytes:
    """The body of a call of ``method`` with ``args``."""
    params = "".join(f"<param><value>{_value(a)}</value></param>\n" for a in args)
    return (
        "<?xml version='1.0'?>\n<methodCall>\n"
        f"<methodName>{_escape(method)}</methodName>\n<params>\n{params}</params>\n</methodCall>\n"
    ).encode()


class _Reader:
    """Builds the answer from expat's events, as xmlrpc.client's Unmarshaller does."""

    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.text: list[str] = []
        self.bare = False  # inside <value> with no type element yet: a string
        self.fault = False

    def start(self, tag: str, _attrs: dict[str, str]) -> None:
        if tag in ("array", "struct"):
            self.marks.append(len(self.stack))
        self.text = []
        self.bare = tag == "value"

    def data(self, text: str) -> None:
        self.text.append(text)

    def end(self, tag: str) -> None:
        text = "".join(self.text)
        if tag in ("string", "name") or (tag == "value" and self.bare):
            self.stack.append(text)
        elif tag in ("int", "i4", "i8"):
            self.stack.append(int(text))
        elif tag == "boolean":
            if text not in ("0", "1"):
                raise BadAnswer(f"bad boolean {text!r}")
            self.stack.append(text == "1")
        elif tag == "double":
            self.stack.append(float(text))
        elif tag == "array":
            mark = self.marks.pop()
            self.stack[mark:] = [self.stack[mark:]]
        elif tag == "struct":
            mark = self.marks.pop()
            items = self.stack[mark:]
            self.stack[mark:] = [dict(zip(items[::2], items[1::2], strict=True))]
        elif tag == "fault":
            self.fault = True
        elif tag not in ("value", "member", "data", "param", "params", "methodResponse"):
            raise BadAnswer(f"supervisord answered an unknown element <{tag}>")
        self.bare = False


def loads(body: bytes) -> Any:
    """The value an answer carries; raises Fault when it is a fault."""
    reader = _Reader()
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.data
    try:
        parser.Parse(body, True)
    except (expat.ExpatError, ValueError) as exc:
        raise BadAnswer(f"supervisord's answer is not XML-RPC: {exc}") from None
    if len(reader.stack) != 1:
        raise BadAnswer(f"supervisord's answer holds {len(reader.stack)} values, not one")
    value = reader.stack[0]
    if reader.fault:
        if not isinstance(value, dict):
            raise BadAnswer("supervisord's fault is not a struct")
        raise Fault(int(value["faultCode"]), str(value["faultString"]))
    return value


class Connection:
    """One kept-open connection to supervisord's socket, opened on first use, each
    socket operation bounded by ``timeout`` (TimeoutError). Not thread-safe: the
    caller serialises calls."""

    def __init__(self, path: str, username: str, password: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        token = binascii.b2a_base64(f"{username}:{password}".encode(), newline=False)
        self._headers = [
            ("Host", "localhost"),
            ("Authorization", "Basic " + token.decode("ascii")),
            ("Content-Type", "text/xml"),
        ]
        self._sock: socket.socket | None = None
        self._http: h11.Connection | None = None

    def call(self, method: str, args: tuple[object, ...]) -> Any:
        body = dumps(method, args)
        if self._sock is not None:
            # As xmlrpc.client does: a kept connection that supervisord has closed since
            # fails before any answer, and that call is sent once more, on a new one.
            try:
                return loads(self._exchange(body))
            except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
                pass
        return loads(self._exchange(body))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._http = None

    def _open(self) -> tuple[socket.socket, h11.Connection]:
        if self._sock is None or self._http is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.path)
            except OSError:
                sock.close()
                raise
            self._sock = sock
            self._http = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_ANSWER)
        return self._sock, self._http

    def _exchange(self, body: bytes) -> bytes:
        sock, http = self._open()
        headers = [*self._headers, ("Content-Length", str(len(body)))]
        try:
            request = http.send(h11.Request(method="POST", target="/RPC2", headers=headers))
            sock.sendall((request or b"") + (http.send(h11.Data(data=body)) or b""))
            sock.sendall(http.send(h11.EndOfMessage()) or b"")
            status, reason, answer = self._answer(sock, http)
        except h11.ProtocolError as exc:
            self.close()
            raise BadAnswer(f"supervisord's answer is not HTTP: {exc}") from None
        except BaseException:
            self.close()
            raise
        if http.our_state is h11.DONE and http.their_state is h11.DONE:
            http.start_next_cycle()
        else:
            self.close()
        if status != 200:
            raise HTTPRefused(status, reason)
        return answer

    @staticmethod
    def _answer(sock: socket.socket, http: h11.Connection) -> tuple[int, str, bytes]:
        status, reason, encoding = 0, "", b""
        chunks: list[bytes] = []
        size = 0
        while True:
            event = http.next_event()
            if event is h11.NEED_DATA:
                data = sock.recv(1 << 20)
                if not data and status == 0:
                    raise ConnectionResetError("Remote end closed connection without response")
                http.receive_data(data)
            elif isinstance(event, h11.Response):
                status, reason = event.status_code, event.reason.decode("latin-1")
                encoding = dict(event.headers).get(b"content-encoding", b"")
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > MAX_ANSWER:
                    raise BadAnswer(f"supervisord's answer is over {MAX_ANSWER} bytes")
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionResetError("Remote end closed connection without response")
        if encoding not in (b"", b"identity"):
            raise BadAnswer(f"supervisord's answer is encoded {encoding.decode('latin-1')}")
        return status, reason, b"".join(chunks)
