"""The hosts half of a fleet file's plan, as data: a host's accepts_failover is compared
with its heartbeat, and a host that has sent none (its monitor never ran, or it is new)
is not shown as differing, plan after plan; a changed login is a change apply makes (a
re-point in place), the session ports one it refuses."""

from __future__ import annotations

import io

from ecosystem import fleetfile
from ecosystem.declare_hosts import host_steps
from ecosystem.fleet.records import HostRecord
from ecosystem.models import utcnow

FILE = """\
[hosts.vps2]
target = "deploy@192.0.2.7:2222"
base_port = 3001
max_sessions = 5
accepts_failover = false
"""


def _record(**changes: object) -> HostRecord:
    row = {
        "name": "vps2",
        "address": "192.0.2.7",
        "ssh_user": "deploy",
        "ssh_port": 2222,
        "base_port": 3001,
        "max_sessions": 5,
        "zapvisor_path": "/home/deploy/.zapvisor/zapvisor",
        "added_at": utcnow(),
    }
    return HostRecord.model_validate(row | changes)


def test_accepts_failover_against_the_heartbeat_only() -> None:
    [declared] = fleetfile.parse(FILE).hosts or []
    assert declared.accepts_failover is False
    records = {"vps2": _record()}
    for _ in range(2):  # no heartbeat: not a change, however often planned
        steps, same = host_steps([declared], records, "control", "f", {})
        assert (steps, same) == ([], ["vps2"])
    steps, same = host_steps([declared], records, "control", "f", {"vps2": False})
    assert (steps, same) == ([], ["vps2"])
    [step] = host_steps([declared], records, "control", "f", {"vps2": True})[0]
    assert (step.action, step.fields, step.detail) == (
        "change",
        ["accepts_failover"],
        ["accepts_failover: true → false"],
    )
    assert step.refused is None


def test_a_new_login_is_repointed_the_ports_are_refused() -> None:
    [declared] = fleetfile.parse(FILE.replace("accepts_failover = false\n", "")).hosts or []
    old = {"vps2": _record(address="198.51.100.9", ssh_port=22)}
    [step] = host_steps([declared], old, "control", "f")[0]
    assert step.fields == ["target"] and step.refused is None
    assert step.detail == ["target: deploy@198.51.100.9 → deploy@192.0.2.7:2222"]
    ports = {"vps2": _record(base_port=4001)}
    [step] = host_steps([declared], ports, "control", "f")[0]
    assert step.fields == ["base_port"] and step.refused and "base_port" in step.refused


def test_a_hosts_failover_switch_survives_an_upgrade() -> None:
    """`hosts failover` writes ZAPVISOR_ACCEPT_FAILOVER into the host's .env; `hosts
    upgrade` writes that .env again and must keep it (and the state dir)."""
    from dotenv import dotenv_values

    from ecosystem.fleet.host_changes import kept_settings, with_setting
    from ecosystem.fleet.layout import host_env

    store = {"ZAPVISOR_DATABASE_URL": "postgresql://zv@db/zv"}
    first = host_env("vps2", 3001, 5, store, home="/srv/zv")
    on = with_setting(first, "ZAPVISOR_ACCEPT_FAILOVER", True)
    switched = with_setting(on, "ZAPVISOR_ACCEPT_FAILOVER", False)
    assert switched.count("ZAPVISOR_ACCEPT_FAILOVER") == 1
    kept = kept_settings(switched)
    assert kept == {"ZAPVISOR_HOME": "/srv/zv", "ZAPVISOR_ACCEPT_FAILOVER": "false"}
    again = host_env("vps2", 3001, 5, store, home=kept["ZAPVISOR_HOME"], kept=kept)
    values = dict(dotenv_values(stream=io.StringIO(again)))
    assert values["ZAPVISOR_ACCEPT_FAILOVER"] == "false" and values["ZAPVISOR_HOME"] == "/srv/zv"
    assert values["ZAPVISOR_DATABASE_URL"] == store["ZAPVISOR_DATABASE_URL"]
