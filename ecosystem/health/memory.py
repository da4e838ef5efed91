"""Runner memory as PSS, measured only when it can matter.

PSS (`memory_full_info`) reads /proc/PID/smaps and costs ~0.3 ms per process; RSS is
cheap and never below PSS. So RSS is read every check and PSS only for a runner whose
RSS is over the cap. ``psutil.Process`` objects are kept between checks.
"""

from __future__ import annotations

from collections.abc import Iterable

import psutil


class MemoryMeter:
    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def prune(self, live: Iterable[int]) -> None:
        keep = set(live)
        for pid in list(self._procs):
            if pid not in keep:
                del self._procs[pid]

    def _proc(self, pid: int) -> psutil.Process:
        proc = self._procs.get(pid)
        if proc is None:
            proc = self._procs[pid] = psutil.Process(pid)
        return proc

    def pss_over(self, pid: int, cap_bytes: int) -> int | None:
        """The runner's PSS in bytes when its RSS is over ``cap_bytes`` (else its RSS,
        which is below the cap anyway); None when the process is gone."""
        try:
            proc = self._proc(pid)
            rss = int(proc.memory_info().rss)
            if rss <= cap_bytes:
                return rss
            full = proc.memory_full_info()
            pss = getattr(full, "pss", None) or getattr(full, "uss", None)
            return int(pss) if pss is not None else rss
        except psutil.AccessDenied:
            return None
        except psutil.NoSuchProcess:
            self._procs.pop(pid, None)
            return None
