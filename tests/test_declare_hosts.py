"""The hosts half of a fleet file's plan, as data: a host's accepts_failover is compared
with its heartbeat, and a host that has sent none (its monitor never ran, or it is new)
is not shown as differing, plan after plan; a changed login is a change apply makes (a
re-point in place), the session ports one it refuses."""

from __future__ import annotations

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
