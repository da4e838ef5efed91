"""`python -m tests.neonize_standin --home H --session S --port P`: the real runner
(`runner.__main__.main`) on the neonize connector, with neonize's client replaced by a
stand-in whose connect call blocks a real thread of the default executor forever, as
an unpaired neonize client's Neonize() call does (whatsmeow's QR loop checks no
cancellation), and whose stop() returns without ending it, as neonize's Stop does then.
WhatsApp's servers cannot be reached here; everything else is the real runner.

`ZV_STANDIN_QR_SECONDS` shortens whatsmeow's QR window (first code and watchdog grace),
so a test sees it end in seconds. `ZV_STANDIN_EXECUTOR_THREADS=N` gives the loop a
default executor of N threads, and the blocked call takes one as the client is made
(before the runner's other tasks first run): with 1, the default executor is held for
good, as leaked QR loops would hold it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class BlockedClient:
    """Stands in for neonize's NewAClient before pairing."""

    def __init__(self) -> None:
        self.event = self
        self.qr_cb: Any = None
        self.never = threading.Event()
        loop = asyncio.get_running_loop()
        threads = os.environ.get("ZV_STANDIN_EXECUTOR_THREADS")
        if threads:
            loop.set_default_executor(ThreadPoolExecutor(int(threads)))
        # neonize runs Neonize() with asyncio.to_thread: the default executor's thread
        self.call = loop.run_in_executor(None, self.never.wait)

    def qr(self, cb: Any) -> None:
        self.qr_cb = cb

    def __call__(self, _kind: Any) -> Any:
        return lambda _handler: None

    async def connect(self) -> asyncio.Future[Any]:
        await self.qr_cb(self, b"2@standin-qr-payload")
        return self.call

    async def stop(self) -> None:
        """neonize's Stop: disconnects, but the QR loop goes on."""


def main() -> int:
    from runner.__main__ import main as runner_main
    from runner.connectors import neonize, neonize_client, neonize_map

    neonize_client.new_client = lambda db, uuid, session, where=None: BlockedClient()
    seconds = os.environ.get("ZV_STANDIN_QR_SECONDS")
    if seconds:
        neonize_map.FIRST_QR_SECONDS = float(seconds)
        neonize.QrWatchdog = functools.partial(  # type: ignore[attr-defined,assignment]
            neonize_map.QrWatchdog, grace=0.2
        )
    return runner_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
