"""Runners and the health monitor forked from supervisord (supctl/forkspawn.py): what
a forked runner looks like from outside (its command line, its name, its parent), that
it starts, restarts and stops as an exec'd one does, that ZAPVISOR_FORK_RUNNERS=false
exec's them again, and that code changed on disk is exec'd rather than forked stale."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from ecosystem.errors import RunnerError
from ecosystem.names import runner_session
from ecosystem.supctl import forkspawn
from tests.conftest import Env, wait_for


def _raw_cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def _words(env: Env, name: str, port: int) -> list[str]:
    """The runner's command as render.runner_command writes it."""
    home = str(env.home)
    return [sys.executable, "-m", "runner", "--home", home, "--session", name, "--port", str(port)]


@pytest.mark.e2e
def test_a_forked_runner_shows_its_command_and_starts_restarts_and_stops(zv: Env) -> None:
    zv.cli("create", "alpha", "--connector", "sim")
    shown = zv.json("show", "alpha")
    pid, port = shown["pid"], shown["port"]
    command = _words(zv, "alpha", port)
    # forked: the command is one string of the words (setproctitle), not NUL-separated
    raw = _raw_cmdline(pid)
    assert raw.rstrip(b"\0") == " ".join(command).encode(), raw
    proc = psutil.Process(pid)
    assert proc.name() == os.path.basename(sys.executable)
    assert proc.ppid() == zv.supervisord_pid()
    assert runner_session(proc.cmdline(), str(zv.home)) == "alpha"
    assert runner_session(proc.cmdline(), str(zv.home) + "x") is None
    zv.cli("qr", "alpha", "--wait", "20")  # the runner works: its connector made a QR

    zv.cli("restart", "alpha")
    again = zv.json("show", "alpha")["pid"]
    assert again != pid and _raw_cmdline(again).rstrip(b"\0") == raw.rstrip(b"\0")
    zv.cli("stop", "alpha")
    assert not psutil.pid_exists(again) or psutil.Process(again).status() == "zombie"
    assert zv.json("show", "alpha")["process_state"] == "STOPPED"


@pytest.mark.e2e
def test_runners_are_execd_with_fork_runners_off(make_env: Any) -> None:
    env = make_env(ZAPVISOR_FORK_RUNNERS="false")
    env.cli("create", "beta", "--connector", "sim")
    shown = env.json("show", "beta")
    words = _words(env, "beta", shown["port"])
    assert _raw_cmdline(shown["pid"]) == b"\0".join(w.encode() for w in words) + b"\0"
    assert "fork_runners" not in (env.home / "supervisord.conf").read_text()
    assert runner_session(psutil.Process(shown["pid"]).cmdline(), str(env.home)) == "beta"


def test_the_session_of_a_runner_command_in_either_form() -> None:
    """Exec'd: one word per argument; forked: one string, words joined by spaces (a
    home with spaces included)."""
    home = "/srv/zap visor"
    words = ["/v/bin/python", "-m", "runner", "--home", home, "--session", "s-1", "--port", "3001"]
    assert runner_session(words, home) == "s-1"
    assert runner_session([" ".join(words), ""], home) == "s-1"
    assert runner_session([" ".join(words)], "/srv/zap") is None
    assert runner_session(["/v/bin/python", "-m", "ecosystem.health", "--home", home], home) is None
    bad = [*words[:6], "../x", "--port", "1"]
    assert runner_session(bad, home) is None


def test_code_changed_on_disk_is_execd_not_forked_stale(tmp_path: Path) -> None:
    """A pip upgrade in place (or an edited checkout) since supervisord loaded the
    runner: the child exec's the command, which loads the code now on disk. Only the
    exec side is called here: the fork side becomes the runner and never returns."""
    execd: list[tuple[str, list[str]]] = []
    fork_exec = forkspawn.ForkExec(lambda f, argv, env: execd.append((f, argv)))
    module = tmp_path / "core.py"
    module.write_text("A = 1\n")
    fork_exec.files = [str(module)]
    fork_exec.loaded = forkspawn.stamp(fork_exec.files)
    runner = [sys.executable, "-m", "runner", "--home", "/h", "--session", "a", "--port", "1"]
    assert fork_exec.forks(sys.executable, runner) == "runner"
    health = [sys.executable, "-m", "ecosystem.health", "--home", "/h"]
    assert fork_exec.forks(sys.executable, health) == "ecosystem.health"
    module.write_text("A = 22\n")
    fork_exec(sys.executable, runner, {})
    other = ["/usr/bin/python3", *runner[1:]]
    assert fork_exec.forks("/usr/bin/python3", other) is None
    fork_exec("/usr/bin/python3", other, {})
    script = [sys.executable, "-m", "http.server", "1"]
    assert fork_exec.forks(sys.executable, script) is None
    assert [f for f, _ in execd] == [sys.executable, "/usr/bin/python3"]


def test_a_supervisord_that_cannot_load_the_runner_execs_runners(tmp_path: Path) -> None:
    """No runtime.env where supervisord's config is (the runners' store unknown): it
    says why in its log and leaves runners to be exec'd."""
    said: list[str] = []

    def execve(filename: str, argv: list[str], env: dict[str, str]) -> None:
        raise AssertionError("not called here")

    options = SimpleNamespace(configfile=str(tmp_path / "supervisord.conf"), execve=execve)
    assert forkspawn.install(options, said.append) is False
    assert options.execve is execve
    assert len(said) == 1 and "exec'd, not forked" in said[0] and "runtime.env" in said[0]


@pytest.mark.e2e
def test_a_forked_runner_that_fails_exits_with_its_own_status(zv: Env) -> None:
    """The exit status supervisord reads is the runner's own (RunnerError's 69), not
    the 127 of a child that failed to become the runner: a runner whose port another
    process holds says so on stderr and exits as an exec'd one does."""
    zv.cli("create", "gamma", "--connector", "sim", "--stopped")
    port = zv.json("show", "gamma")["port"]
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        failed = zv.cli("start", "gamma", check=False)
    assert failed.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}: is in use" in failed.stderr, failed.stderr
    assert "exit status 69" in failed.stderr, failed.stderr
    # as the health monitor recorded the exit (it reads it from supervisord's event)
    wait_for(lambda: zv.json("show", "gamma")["last_exit_status"] == RunnerError.exit_code == 69)
