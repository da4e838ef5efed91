"""Alerts say the current figure: the dead-letter alert counts every dead webhook event
(it said "1" while 4 were dead), and the app's disk figure is the alert's (and df's)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from ecosystem.metrics import host_stats
from tests.conftest import Env, wait_for
from tests.health_helpers import FAST, Look
from tests.test_session_api import call

pytestmark = pytest.mark.e2e


def test_the_dead_letter_alert_counts_every_dead_event(make_env: Callable[..., Env]) -> None:
    """A receiver that refuses everything and one attempt per event: every event is
    dead at once. The alert raised for the first ones follows the count in place."""
    env = make_env(max_sessions=1, **FAST, ZAPVISOR_WEBHOOK_RETRY_SCHEDULE="0")
    env.cli("create", "hooks", "--connector", "sim", "--webhook-url", "http://127.0.0.1:9/h")
    look = Look(env)
    port = look.session("hooks").port
    token = env.cli("token", "hooks").stdout.strip()

    def dead() -> int:
        return int(env.json("webhooks", "hooks")["counts"].get("dead", 0))

    def alert() -> dict[str, object] | None:
        found = [a for a in env.json("alerts") if a["key"] == "webhook_dead_letters"]
        return found[0] if found else None

    first = wait_for(alert, timeout=60)
    for _ in range(3):  # more events, each dead at once
        assert call(port, "/sim/disconnect", token, "POST", {"kind": "network", "seconds": 0})
    env.cli("sim-scan", "hooks")
    wait_for(lambda: dead() > int(first["value"]), timeout=30)  # type: ignore[call-overload]
    count = dead()

    def current() -> dict[str, object] | None:
        a = alert()
        return a if a and a["value"] == count else None

    now = wait_for(current, timeout=30)
    assert now["id"] == first["id"], "the same alert, not a new one"
    assert now["message"] == f"{count} webhook event(s) gave up after every retry"
    look.close()


def test_the_apps_disk_figure_is_the_alerts(tmp_path: object) -> None:
    """psutil's percent is used/(used+free), as df shows it (root's reserved blocks
    are not free to anyone else); used/total said less than the disk alert."""
    stats = host_stats(Path(str(tmp_path)))
    assert stats.disk_percent == pytest.approx(psutil.disk_usage(str(tmp_path)).percent, abs=0.2)
