"""The smallest fair opponent: a Python asyncio worker answering GET /health with its pid.

    python health_worker.py --port PORT

PM2 and a plain supervisord run this in scripts/bench/vs_pm2.py; stdlib only, so its
start-up and memory are the interpreter's floor plus asyncio.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")
        body = json.dumps({"ok": True, "pid": os.getpid()}).encode()
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        pass
    finally:
        writer.close()


async def _serve(port: int) -> None:
    server = await asyncio.start_server(_handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    port = int(sys.argv[sys.argv.index("--port") + 1])
    asyncio.run(_serve(port))


if __name__ == "__main__":
    main()
