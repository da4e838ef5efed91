"""The heartbeat file (ecosystem/heartbeat.py): a runner's beat, and whether its port
was full, read back by the monitor; a slot written in the earlier layout still reads."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

from ecosystem.heartbeat import SLOT, Beat, Heartbeats
from runner.http import MAX_CONNECTIONS, Router, Server


def test_a_beat_reads_back_with_its_full_port(tmp_path: Path) -> None:
    beats = Heartbeats(tmp_path / "heartbeats", 3000, 4)
    assert beats.last(3001) is None  # never beaten
    beats.beat(3001, 4242, 12.5, full=128)
    beats.beat(3002, 4343, 13.0)
    assert beats.last(3001) == Beat(12.5, 4242, 128)
    assert beats.last(3002) == Beat(13.0, 4343, 0)
    assert beats.last(3000) is None and beats.last(3004) is None  # outside: no slot
    # another process (the monitor) maps the same file and reads the same beats
    assert Heartbeats(tmp_path / "heartbeats", 3000, 4).last(3001) == Beat(12.5, 4242, 128)


def test_a_slot_of_the_earlier_layout_reads_as_not_full(tmp_path: Path) -> None:
    """A runner started before an upgrade wrote (time, 64-bit pid): same slot size, so
    the new monitor reads its pid and no full port, and never a neighbour's slot."""
    assert SLOT.size == struct.calcsize("=dq")
    path = tmp_path / "heartbeats"
    Heartbeats(path, 3000, 2)
    with path.open("r+b") as fh:
        fh.seek(SLOT.size)
        fh.write(struct.pack("=dq", 7.0, 31337))
    assert Heartbeats(path, 3000, 2).last(3001) == Beat(7.0, 31337, 0)


def test_the_server_says_when_its_port_is_full() -> None:
    """full(), what each beat carries: 0, then the connections held while clients hold
    every connection the port allows, then 0 once they let go. Real sockets."""

    async def run() -> list[int]:
        server = Server(Router(), max_body=1024)
        await server.start("127.0.0.1", 0)
        assert server._server is not None
        port = server._server.sockets[0].getsockname()[1]
        seen = [server.full()]
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(MAX_CONNECTIONS)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 10)
        assert answer.startswith(b"HTTP/1.1 503"), answer[:40]
        writer.close()
        seen += [server.full(), server.full()]  # turned one away; still full
        for _, w in held:
            w.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while (now := server.full()) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        seen.append(now)
        await server.close()
        return seen

    assert asyncio.run(run()) == [0, MAX_CONNECTIONS, MAX_CONNECTIONS, 0]
