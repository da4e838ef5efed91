"""The runner process: open the store (waiting out one that is down), serve, leave."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from ecosystem.backoff import Backoff
from ecosystem.errors import StoreError
from ecosystem.paths import StatePaths
from ecosystem.runtime_env import read_runtime_settings
from ecosystem.settings import Settings
from ecosystem.store import Store, open_store
from runner.core import Runner

log = logging.getLogger("runner")


async def _connect(settings: Settings, name: str, port: int) -> Runner | None:
    """Open the store and build the runner, waiting out a store that is down.

    Exiting instead would make supervisord give up on the session (FATAL) during a
    database outage; waiting keeps it one step from serving again. Returns None when
    asked to stop while waiting.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    backoff = Backoff(1.0, 30.0)
    try:
        while True:
            store: Store | None = None
            try:
                store = await asyncio.to_thread(open_store, settings)
                # the store answers (the row read once: the runner starts from it)
                session = await asyncio.to_thread(store.get_session, name)
                return Runner(settings, store, name, port, session)
            except StoreError as exc:
                if store is not None:
                    store.close()
                delay = backoff.next()
                log.warning(
                    "store unavailable, retrying in %.0f s: %s",
                    delay,
                    exc,
                    extra={"event": "store_retry"},
                )
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return None
            except TimeoutError:
                pass
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def run(home: Path, name: str, port: int) -> int:
    settings = read_runtime_settings(StatePaths(home).runtime_env, home)
    runner = await _connect(settings, name, port)
    if runner is None:
        return 0
    try:
        code = await runner.serve()
    finally:
        runner.store.close()
    if runner.connector.leaves_thread:
        # Everything is flushed and closed; what is left is a native call blocking a
        # thread that nothing can end, which asyncio.run and the interpreter would wait
        # for forever (until supervisord's SIGKILL). Leave without joining it.
        log.info("leaving a blocked native call behind", extra={"event": "hard_exit"})
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
