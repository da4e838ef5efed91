"""Placement's score: how much room a host has for one more session."""

from __future__ import annotations

from datetime import UTC, datetime

from ecosystem.fleet.door import room
from ecosystem.hostview import HostReport
from ecosystem.metrics import HostStats

GIB = 1 << 30


def report(mem_percent: float, load1: float = 0.2, max_sessions: int = 10) -> HostReport:
    used = int(16 * GIB * mem_percent / 100)
    stats = HostStats(
        cpu_percent=5.0,
        cpu_count=2,
        load1=load1,
        mem_used=used,
        mem_total=16 * GIB,
        disk_used=1,
        disk_total=10,
        disk_percent=10.0,
    )
    return HostReport(
        host_id="h",
        version="0",
        taken_at=datetime.now(UTC),
        supervisord_up=True,
        max_sessions=max_sessions,
        base_port=20000,
        stats=stats,
    )


def test_session_count_still_counts_when_memory_is_the_scarcer_figure() -> None:
    # two hosts of one machine (same memory, 60% used): the emptier one has more room
    empty, busy = room(report(60), 0)[0], room(report(60), 2)[0]
    assert empty > busy
    assert round(empty / busy, 2) == 1.25  # 10 free slots against 8


def test_memory_and_load_lower_the_room() -> None:
    assert room(report(20), 0)[0] > room(report(80), 0)[0]
    calm, loaded = room(report(20, load1=0.5), 0)[0], room(report(20, load1=4.0), 0)[0]
    assert calm > loaded
    assert "RAM 20% used" in room(report(20), 3)[1] and "3/10 sessions" in room(report(20), 3)[1]
