"""The health monitor's rules, pure: a made-up clock, made-up observations."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ecosystem.health import policy
from ecosystem.health.alerts import (
    CpuTracker,
    Thresholds,
    dead_letter_alerts,
    host_alerts,
    reconcile,
    session_alerts,
    store_dead_letters,
)
from ecosystem.health.model import Alert, AlertKind, SessionHealth, Severity
from ecosystem.metrics import HostStats
from ecosystem.models import Session
from ecosystem.states import RUNNER_RECYCLE_EXIT, DesiredState, ProcessState, Status
from ecosystem.store.base import Store
from ecosystem.store.sqlite import SQLiteStore
from ecosystem.supctl.rpc import ProcessInfo

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


POLICY = policy.Policy(crash_window=600, crash_max_exits=5, backoff_base=1, backoff_max=8)


def test_backoff_is_immediate_then_doubles_up_to_the_cap() -> None:
    assert [policy.backoff_delay(POLICY, n) for n in range(1, 8)] == [0, 1, 2, 4, 8, 8, 8]
    assert policy.backoff_delay(policy.Policy(backoff_base=0.5, backoff_max=60), 3) == 1.0


def crash(
    h: SessionHealth, t: float, stderr: str | None = None
) -> tuple[SessionHealth, policy.ExitDecision]:
    return policy.on_exit(
        POLICY, h, at(t), what="exited with status 1", exit_status=1, stderr_tail=stderr
    )


def test_exits_in_the_window_delay_restarts_then_park() -> None:
    h = SessionHealth(name="s")
    delays = []
    for i in range(4):
        h, d = crash(h, i * 10)
        assert not d.park and d.exits_in_window == i + 1
        assert h.next_restart_at == at(i * 10 + d.delay)
        delays.append(d.delay)
        h = policy.restarted(h, at(i * 10 + d.delay))
    assert delays == [0, 1, 2, 4]
    assert h.restarts == 4 and h.exits == 4 and h.next_restart_at is None
    stderr = "\n".join(f"line {i}" for i in range(30)) + "\nValueError: boom\n\n"
    h, d = crash(h, 45, stderr)
    assert d.park and d.reason == "crash loop: 5 exits in 10 minutes"
    assert h.parked_at == at(45) and h.next_restart_at is None
    assert h.why_down is not None and h.why_down.startswith("crash loop: 5 exits in 10 minutes")
    assert "line 29 | ValueError: boom" in h.why_down
    assert h.stderr_tail is not None
    lines = h.stderr_tail.splitlines()
    assert len(lines) == policy.STDERR_LINES and lines[-1] == "ValueError: boom"

    h = policy.unpark(h)
    assert h.parked_at is None and h.recent_exits == [] and h.why_down is None
    assert h.exits == 5 and h.restarts == 4, "history survives un-parking"
    h, d = crash(h, 50)
    assert not d.park and d.delay == 0, "a fresh window after an operator's start"


def test_exits_leave_the_sliding_window() -> None:
    h = SessionHealth(name="s")
    for t in (0, 100, 200, 300):
        h, _ = crash(h, t)
    # the exit at t=0 is 600 s old at t=600: out of the window, so 4 in it, no park
    h, d = crash(h, 600)
    assert not d.park and d.exits_in_window == 4 and len(h.recent_exits) == 4
    assert d.delay == 4


def test_forced_restarts_back_off_and_park_like_crashes() -> None:
    """A runner that hangs (or bloats, or gets stuck) again after every restart loops
    like a crash loop: same window, same backoff, parked instead of restarted forever."""
    h = SessionHealth(name="s")
    h, d = crash(h, 0)  # a crash and forced restarts share one window
    delays = []
    for t in (30, 60, 90):
        h, d = policy.on_forced_restart(POLICY, h, at(t), reason="hung: /health failed 3 checks")
        assert not d.park and h.next_restart_at == at(t + d.delay)
        assert h.why_down == h.last_restart_reason == "hung: /health failed 3 checks"
        delays.append(d.delay)
        h = policy.restarted(h, at(t + d.delay))
    assert delays == [1, 2, 4] and h.exits == 1, "a forced restart is not a crash"
    h, d = policy.on_forced_restart(
        POLICY, h, at(120), reason="memory: 900 MB PSS over the 500 MB cap"
    )
    assert d.park and d.reason == "crash loop: 5 exits in 10 minutes"
    assert h.parked_at == at(120) and h.next_restart_at is None
    assert h.why_down == "crash loop: 5 exits in 10 minutes; memory: 900 MB PSS over the 500 MB cap"
    # one restart an hour (a slow leak) never parks
    h = SessionHealth(name="s")
    for hour in range(10):
        h, d = policy.on_forced_restart(POLICY, h, at(hour * 3600), reason="memory")
        assert not d.park and d.delay == 0 and len(h.recent_exits) == 1


def test_describe_exit() -> None:
    assert policy.describe_exit("EXITED", 1) == "exited with status 1"
    assert policy.describe_exit("EXITED", -1) == "killed by a signal"
    assert policy.describe_exit(
        "FATAL", 2, "Exited too quickly (process log may have details)"
    ) == ("exited with status 2 right after starting")
    assert policy.describe_exit("FATAL", 0, "can't find command 'x'") == (
        "could not start: can't find command 'x'"
    )
    assert policy.window_text(60) == "1 minute" and policy.window_text(90) == "1.5 minutes"


def test_only_an_exit_with_the_recycle_status_is_a_recycle() -> None:
    assert policy.recycled("EXITED", RUNNER_RECYCLE_EXIT)
    assert not policy.recycled("EXITED", 1) and not policy.recycled("EXITED", 0)
    # one that did not even stay up for supervisord's startsecs is a failed start
    assert not policy.recycled("FATAL", RUNNER_RECYCLE_EXIT)


def test_hung_after_consecutive_failures_only() -> None:
    t = policy.HungTracker(failures=3, start_timeout=20)
    results = ("failed", "failed", "ok", "failed", "failed")
    assert [t.observe("a", 7, r, 30, at(i)) for i, r in enumerate(results)] == [1, 2, 0, 1, 2]
    assert not t.hung("a")
    t.observe("a", 7, "failed", 30, at(6))
    assert t.hung("a")
    t.forget("a")
    assert not t.hung("a") and t.observe("a", 7, "failed", 30, at(7)) == 1


def test_a_starting_runner_is_not_hung() -> None:
    t = policy.HungTracker(failures=2, start_timeout=20)
    # a new runner (pid 8) that has not answered yet: failures do not count...
    assert [t.observe("a", 8, "failed", up, at(up)) for up in (1, 5, 19)] == [0, 0, 0]
    assert not t.hung("a") and not t.up("a", 8)
    # ...until it has been up for start_timeout without ever answering
    assert t.observe("a", 8, "failed", 21, at(21)) == 1
    assert t.observe("a", 8, "failed", 22, at(22)) == 2 and t.hung("a")
    # once it answered, the next failures count at once
    t.forget("a")
    t.observe("a", 9, "ok", 1, at(30))
    assert t.up("a", 9) and not t.up("a", 8)
    assert t.observe("a", 9, "failed", 2, at(31)) == 1


def test_a_refusing_runner_is_exiting_not_hung() -> None:
    t = policy.HungTracker(failures=2, start_timeout=20)
    t.observe("a", 5, "ok", 100, at(0))
    # it closed its server and is exiting by itself: that is for the exit to tell
    assert [t.observe("a", 5, "refused", 100, at(s)) for s in (1, 2, 10, 20)] == [0, 0, 0, 0]
    assert not t.hung("a")
    # refusing for longer than start_timeout: its server is gone, the process stays
    assert t.observe("a", 5, "refused", 100, at(21)) == 1
    assert t.observe("a", 5, "refused", 100, at(22)) == 2 and t.hung("a")


def test_memory_cap() -> None:
    capped = policy.Policy(memory_cap_mb=200)
    assert policy.memory_reason(capped, 150 * 2**20) is None
    assert policy.memory_reason(capped, 250 * 2**20) == "memory: 250 MB PSS over the 200 MB cap"
    assert policy.memory_reason(policy.Policy(), 10**12) is None, "no cap by default"


def session(**kw: object) -> Session:
    base: dict[str, object] = {"name": "s", "host": "h", "port": 3001}
    base.update(kw)
    return Session.model_validate(base)


def test_stuck_states() -> None:
    rules = policy.Policy(reconnecting_timeout=300, qr_grace=60)
    clock = policy.StatusClock()
    rec = session(status=Status.RECONNECTING)
    since = clock.observe("s", rec.status, at(0))
    assert clock.observe("s", rec.status, at(200)) == since == at(0)
    assert policy.stuck_reason(rules, rec, since, at(299)) is None
    assert policy.stuck_reason(rules, rec, since, at(301)) == "stuck: reconnecting for 301 s"
    # back to connected and then reconnecting again: the clock starts over
    clock.observe("s", Status.CONNECTED, at(302))
    assert clock.observe("s", Status.RECONNECTING, at(303)) == at(303)

    # waiting_scan: a QR that keeps being renewed is fine; one left expired is not
    fresh = session(status=Status.WAITING_SCAN, qr_expires_at=at(1000))
    assert policy.stuck_reason(rules, fresh, at(0), at(990)) is None
    stale = session(status=Status.WAITING_SCAN, qr_expires_at=at(20))
    assert policy.stuck_reason(rules, stale, at(0), at(79)) is None
    assert policy.stuck_reason(rules, stale, at(0), at(81)) == (
        "stuck: waiting_scan with no fresh QR for 61 s"
    )
    # with no record of when the status began, a monitor counts from its own start
    assert policy.stuck_reason(rules, stale, at(500), at(540)) is None
    assert policy.stuck_reason(rules, session(status=Status.CONNECTED), at(0), at(10**6)) is None


def test_a_restarted_monitor_dates_a_status_from_the_trail() -> None:
    asked: list[str] = []

    def trail(t: float | None) -> Callable[[], datetime | None]:
        def first_seen() -> datetime | None:
            asked.append("trail")
            return None if t is None else at(t)

        return first_seen

    clock = policy.StatusClock()  # a monitor started at t=400, the status began at t=100
    assert clock.observe("s", Status.RECONNECTING, at(400), trail(100)) == at(100)
    assert clock.observe("s", Status.RECONNECTING, at(405), trail(0)) == at(100)
    assert asked == ["trail"], "read once, then kept"
    # a change seen between two checks is dated by the check, not by the trail
    clock.observe("s", Status.CONNECTED, at(410), trail(0))
    assert clock.observe("s", Status.RECONNECTING, at(415), trail(0)) == at(415)
    assert asked == ["trail"], "connected is not a status that can get stuck"
    # no record, or one from the future (clock skew): from now
    assert policy.StatusClock().observe("t", Status.WAITING_SCAN, at(9), trail(None)) == at(9)
    assert policy.StatusClock().observe("t", Status.WAITING_SCAN, at(9), trail(50)) == at(9)


TH = Thresholds(ram_percent=85, cpu_percent=80, cpu_seconds=300, disk_percent=85)


def host(ram: float = 10, cpu: float = 10, disk: float = 10) -> HostStats:
    return HostStats(cpu, 2, 0.5, int(ram * 10), 1000, int(disk * 10), 1000, disk)


def keys(alerts: list) -> set[str]:  # type: ignore[type-arg]
    return {a.key for a in alerts}


def test_host_thresholds_with_hysteresis_and_sustained_cpu() -> None:
    cpu = CpuTracker()
    assert keys(host_alerts("h", TH, host(ram=86, disk=90), cpu, at(0), set())) == {"ram", "disk"}
    # active RAM alert holds until RAM falls 5 points below the threshold
    assert keys(host_alerts("h", TH, host(ram=82), cpu, at(1), {"ram"})) == {"ram"}
    assert keys(host_alerts("h", TH, host(ram=79), cpu, at(2), {"ram"})) == set()
    assert keys(host_alerts("h", TH, host(ram=82), cpu, at(3), set())) == set()

    # CPU must stay above 80% for 300 s; one dip resets the clock
    cpu = CpuTracker()
    assert keys(host_alerts("h", TH, host(cpu=95), cpu, at(0), set())) == set()
    assert keys(host_alerts("h", TH, host(cpu=95), cpu, at(200), set())) == set()
    assert keys(host_alerts("h", TH, host(cpu=50), cpu, at(250), set())) == set()
    assert keys(host_alerts("h", TH, host(cpu=95), cpu, at(260), set())) == set()
    out = host_alerts("h", TH, host(cpu=95), cpu, at(560), set())
    assert keys(out) == {"cpu"} and "for 300 s" in out[0].message
    assert keys(host_alerts("h", TH, host(cpu=77), cpu, at(565), {"cpu"})) == {"cpu"}
    assert keys(host_alerts("h", TH, host(cpu=70), cpu, at(570), {"cpu"})) == set()
    crit = host_alerts("h", TH, host(disk=97), CpuTracker(), at(0), set())[0]
    assert crit.severity == Severity.CRITICAL


def proc(state: str, uptime: int = 100, spawnerr: str = "") -> ProcessInfo:
    return ProcessInfo("wa-s", ProcessState(state), 1, 1000, 1000 + uptime, 0, 1, spawnerr, "")


def test_session_alerts_error_parked_and_fatal() -> None:
    err = session(status=Status.ERROR, last_error="auth corrupt")
    # a runner that is up and says error: alert; one restarting after a crash: not yet
    out = session_alerts("h", TH, [err], {"wa-s": proc("RUNNING")}, {}, set())
    assert keys(out) == {"session_error:s"} and "auth corrupt" in out[0].message
    assert session_alerts("h", TH, [err], {"wa-s": proc("RUNNING", uptime=2)}, {}, set()) == []
    assert session_alerts("h", TH, [err], {"wa-s": proc("EXITED")}, {}, set()) == []
    # parked by a crash loop: critical, even though its desired state is now stopped
    parked = session(status=Status.ERROR, desired_state=DesiredState.STOPPED, last_error="x")
    health = {"s": SessionHealth(name="s", parked_at=at(0))}
    out = session_alerts("h", TH, [parked], {"wa-s": proc("EXITED")}, health, set())
    assert keys(out) == {"session_error:s"} and out[0].severity == Severity.CRITICAL
    # stopped by the operator in error: no alert
    assert session_alerts("h", TH, [parked], {"wa-s": proc("STOPPED")}, {}, set()) == []

    ok = session(status=Status.CONNECTED)
    fatal = {"wa-s": proc("FATAL", spawnerr="Exited too quickly")}
    out = session_alerts("h", TH, [ok], fatal, {}, set())
    assert keys(out) == {"runner_fatal:s"} and out[0].kind == AlertKind.RUNNER_FATAL
    # held while it cycles through a restart, cleared once it runs settled
    active = {"runner_fatal:s"}
    assert keys(session_alerts("h", TH, [ok], {"wa-s": proc("STARTING", 0)}, {}, active)) == active
    assert session_alerts("h", TH, [ok], {"wa-s": proc("RUNNING", 60)}, {}, active) == []


def alert(key: str) -> Alert:
    return Alert(id=1, host="h", key=key, kind=AlertKind.RAM, message="m", raised_at=T0)


def test_reconcile_and_dead_letters_hook() -> None:
    wanted = host_alerts("h", TH, host(ram=90, disk=90), CpuTracker(), at(0), set())
    to_raise, to_clear = reconcile(wanted, [alert("ram"), alert("session_error:gone")])
    assert keys(to_raise) == {"disk"} and to_clear == ["session_error:gone"]

    assert dead_letter_alerts("h", None) == [] and dead_letter_alerts("h", 0) == []
    assert keys(dead_letter_alerts("h", 3)) == {"webhook_dead_letters"}

    class WithOutbox(SQLiteStore):
        def count_dead_letters(self, host: str) -> int:
            return 7 if host == "h" else 0

    class NoOutbox(SQLiteStore):
        count_dead_letters = Store.count_dead_letters

    with tempfile.TemporaryDirectory() as tmp:
        plain = NoOutbox(Path(tmp) / "a.db")
        assert store_dead_letters(plain, "h")() is None, "a store without an outbox"
        outbox = WithOutbox(Path(tmp) / "b.db")
        assert store_dead_letters(outbox, "h")() == 7
        plain.close()
        outbox.close()


def test_process_table_follows_events_and_resyncs() -> None:
    from ecosystem.health.proctable import ProcessTable

    fetched = []
    clock = [1000.0]

    def fetch() -> dict[str, ProcessInfo]:
        fetched.append(clock[0])
        return {"wa-s": ProcessInfo("wa-s", ProcessState.RUNNING, 10, 900, 1000, 0, 0, "", "")}

    table = ProcessTable(fetch, resync=60, clock=lambda: clock[0])
    assert table.snapshot()["wa-s"].pid == 10 and len(fetched) == 1
    table.apply("PROCESS_STATE_EXITED", {"processname": "wa-s", "pid": "10", "expected": "0"})
    clock[0] += 1
    info = table.snapshot()["wa-s"]
    assert info.state == "EXITED" and info.uptime is None and len(fetched) == 1
    table.note("wa-s", ProcessState.STARTING)
    table.apply("PROCESS_STATE_RUNNING", {"processname": "wa-s", "pid": "11"})
    clock[0] += 5
    info = table.snapshot()["wa-s"]  # `now` is its last change's: ask at a time
    assert (info.state, info.pid, info.uptime_at(int(clock[0]))) == ("RUNNING", 11, 5)
    table.apply("PROCESS_STATE_STARTING", {"processname": "wa-new"})  # unknown: reread
    assert table.snapshot()["wa-s"].pid == 10 and len(fetched) == 2
    clock[0] += 61
    table.snapshot()
    assert len(fetched) == 3, "read again after the resync period"
    # without events (resync 0) every snapshot reads the table
    plain = ProcessTable(fetch, clock=lambda: clock[0])
    plain.snapshot()
    plain.snapshot()
    assert len(fetched) == 5
