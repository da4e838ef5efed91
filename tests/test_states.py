"""supervisord's process states come from supervisor itself: the names zapvisor uses are
exactly those supervisor.states defines, and the groupings are supervisor's."""

from __future__ import annotations

from supervisor import states

from ecosystem.states import (
    PROCESS_UP,
    RUNNING_STATES,
    SIGNALLABLE_STATES,
    STOPPED_STATES,
    SUPERVISORD_RUNNING,
    ProcessState,
)
from ecosystem.supctl.rpc import ProcessInfo


def test_the_names_are_supervisors() -> None:
    codes = {k: v for k, v in vars(states.ProcessStates).items() if not k.startswith("_")}
    assert {m.value for m in ProcessState} == set(codes)
    for name, code in codes.items():
        assert ProcessState.of(code) == name
    assert SUPERVISORD_RUNNING == "RUNNING"


def test_the_groupings_are_supervisors() -> None:
    assert {"RUNNING", "STARTING", "BACKOFF"} == RUNNING_STATES
    assert {"STOPPED", "EXITED", "FATAL", "UNKNOWN"} == STOPPED_STATES
    assert {"RUNNING", "STARTING", "STOPPING"} == SIGNALLABLE_STATES
    assert set(ProcessState) == RUNNING_STATES | STOPPED_STATES | PROCESS_UP


def test_an_rpc_answer_reads_as_a_state_that_is_still_its_name() -> None:
    info = ProcessInfo.from_rpc(
        {
            "name": "wa-a",
            "statename": "BACKOFF",
            "state": 30,
            "pid": 0,
            "start": 5,
            "now": 9,
            "stop": 7,
            "exitstatus": 1,
        }
    )
    assert info.state is ProcessState.BACKOFF
    assert info.state == "BACKOFF" and f"{info.state}" == "BACKOFF"
    assert info.pid is None and info.uptime is None
