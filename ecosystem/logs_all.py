"""The door's one log stream: every session's lines in time order, of this host, of one
host of the fleet, or of every host (`zapvisor logs --all`, the app's `L` view)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator

from ecosystem import logstream
from ecosystem.errors import ZapvisorError
from ecosystem.fleet.door import FleetDoor
from ecosystem.fleet.routing import call_on_host
from ecosystem.logstream import LogEntry, Source

MERGE_WAIT = 0.25
"""Seconds the fleet-wide stream gathers its hosts' batches before it sorts and sends."""


class LogStreams(FleetDoor):
    # -- this host -----------------------------------------------------------------------

    def _log_sources(self) -> list[Source]:
        out = []
        for s in self.store.list_sessions(self.host_id):
            out.append(Source(s.name, self.paths.stdout_log(s.name), False))
            out.append(Source(s.name, self.paths.stderr_log(s.name), True))
        return out

    def host_logs(self, *, lines: int = 20, grep: str | None = None) -> list[LogEntry]:
        """The last ``lines`` lines (stdout and stderr) of each session of this host,
        merged in time order; with ``grep``, only the lines it matches."""
        wanted = logstream.matcher(grep)
        return self._stamped(logstream.tail(self._log_sources(), lines, wanted))

    def follow_host_logs(
        self, *, backlog: int = 0, grep: str | None = None
    ) -> Generator[list[LogEntry], None, None]:
        """``host_logs`` as a first batch, then the lines written since in time order, a
        batch at every look (empty when nothing came): never ends by itself."""
        stream = logstream.Stream(logstream.matcher(grep))
        for batch in logstream.follow(stream, self._log_sources, backlog=backlog):
            yield self._stamped(batch)

    def _stamped(self, entries: list[LogEntry]) -> list[LogEntry]:
        host = self.host_id
        return [LogEntry(e.session, e.ts, e.text, e.stderr, host) for e in entries]

    # -- any host, or all of them --------------------------------------------------------

    def _log_hosts(self, host: str | None) -> list[str]:
        if host is not None:
            self.check_host(host)
            return [host]
        return self.fleet_hosts()

    def all_logs(
        self, host: str | None = None, *, lines: int = 20, grep: str | None = None
    ) -> list[LogEntry]:
        """The last ``lines`` lines of every session (of ``host``, or of every host of
        the fleet), merged in time order. Raises for an unreachable host named; a silent
        host among many is left out with a progress line saying so."""
        logstream.matcher(grep)  # a bad expression is refused here, before any host
        hosts = self._log_hosts(host)
        out: list[LogEntry] = []
        for h in hosts:
            try:
                out.extend(self._host_tail(h, lines, grep))
            except ZapvisorError as exc:
                if len(hosts) == 1:
                    raise
                self.progress(f"{h}: left out: {exc}")
        return logstream.order(out)

    def follow_all_logs(
        self, host: str | None = None, *, backlog: int = 0, grep: str | None = None
    ) -> Iterator[list[LogEntry]]:
        """``all_logs`` as a first batch, then every host's new lines, merged, a batch
        at every look (empty when nothing came): never ends by itself."""
        logstream.matcher(grep)
        hosts = self._log_hosts(host)
        if len(hosts) == 1:
            return self._host_stream(hosts[0], backlog, grep)
        return self._merged(hosts, backlog, grep)

    def _host_tail(self, host: str, lines: int, grep: str | None) -> list[LogEntry]:
        if host == self.host_id:
            return self.host_logs(lines=lines, grep=grep)
        kwargs = {"lines": lines, "grep": grep}
        found: list[LogEntry] = call_on_host(self, host, LogStreams.host_logs, (), kwargs)
        return found

    def _host_stream(self, host: str, backlog: int, grep: str | None) -> Iterator[list[LogEntry]]:
        if host == self.host_id:
            return self.follow_host_logs(backlog=backlog, grep=grep)
        kwargs = {"backlog": backlog, "grep": grep}
        stream: Iterator[list[LogEntry]] = call_on_host(
            self, host, LogStreams.follow_host_logs, (), kwargs
        )
        return stream

    def _merged(
        self, hosts: list[str], backlog: int, grep: str | None
    ) -> Generator[list[LogEntry], None, None]:
        """Every host's followed stream read by a thread of its own; their batches
        gathered, sorted and handed out together. Closing the generator stops them."""
        inbox: queue.Queue[list[LogEntry] | ZapvisorError] = queue.Queue()
        stop = threading.Event()

        def pump(host: str) -> None:
            try:
                source = self._host_stream(host, backlog, grep)
                for batch in source:
                    if stop.is_set():
                        close = getattr(source, "close", None)
                        if close is not None:
                            close()
                        return
                    if batch:
                        inbox.put(batch)
            except ZapvisorError as exc:
                inbox.put(exc)

        for h in hosts:
            threading.Thread(target=pump, args=(h,), name=f"logs-{h}", daemon=True).start()
        try:
            while True:
                got: list[LogEntry] = []
                try:
                    item = inbox.get(timeout=MERGE_WAIT)
                    while True:
                        if isinstance(item, ZapvisorError):
                            self.progress(f"log stream: {item}")
                        else:
                            got.extend(item)
                        item = inbox.get_nowait()
                except queue.Empty:
                    pass
                yield logstream.order(got)
        finally:
            stop.set()
