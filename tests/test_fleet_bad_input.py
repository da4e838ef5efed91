"""`zapvisor hosts ...` with bad input, against real OpenSSH: each is one line on stderr,
a non-zero exit code, and nothing changed (no host in the store, no key trusted, nothing
written on the host)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import Env, free_port_block
from tests.fleet_fixtures import Fleet, RemoteHost
from tests.sshd import SshServer, as_user

pytestmark = pytest.mark.e2e


def refused(env: Env, *args: str, code: int) -> str:
    """Run a command that must fail; its one line of stderr."""
    proc = env.cli(*args, check=False)
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zapvisor: error: "), proc.stderr
    return lines[0]


def add_args(fleet: Fleet, host: RemoteHost, **changes: str) -> list[str]:
    args = host.add_args(fleet.key, "--trust")
    for flag, value in changes.items():
        args[args.index(f"--{flag}") + 1] = value
    return args


def nothing_changed(fleet: Fleet, host: RemoteHost | None = None) -> None:
    assert fleet.registered() == []
    known = fleet.control.home / "known_hosts"
    assert not known.exists() or known.read_text() == ""
    if host is not None and host.zapvisor is None:
        assert not (host.user.home / ".zapvisor").exists()


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that takes TCP connections and never says a word (a host that hangs)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", free_port_block(1)))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_unreachable_hosts_wrong_ports_and_refused_keys(fleet: Fleet) -> None:
    host = fleet.host("vps-x")
    free = free_port_block(1)
    line = refused(fleet.control, *add_args(fleet, host, port=str(free)), code=69)
    assert f"127.0.0.1:{free} refused the connection" in line and "--port" in line

    with silent_port() as port:
        started = time.monotonic()
        line = refused(fleet.control, *add_args(fleet, host, port=str(port)), code=69)
        assert time.monotonic() - started < 20
    assert f"127.0.0.1:{port} did not answer within 5 s" in line

    stranger = fleet.host("vps-y", authorized=False)
    line = refused(fleet.control, *stranger.add_args(fleet.key, "--trust"), code=77)
    assert f"{stranger.user.name}@127.0.0.1:{fleet.sshd.port} refused the identity" in line
    assert "authorized_keys" in line and "passwords are never used" in line

    missing_key = add_args(fleet, host, identity="/nonexistent/id_ed25519")
    line = refused(fleet.control, *missing_key, code=65)
    assert "identity file /nonexistent/id_ed25519 does not exist" in line
    nothing_changed(fleet)


def test_a_name_that_does_not_resolve(fleet: Fleet, tmp_path: Path) -> None:
    """DNS failure, with the resolver pointed at loopback (where nothing answers) in a
    mount namespace of its own: no query leaves the machine."""
    host = fleet.host("vps-d")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    args = add_args(fleet, host)
    args[args.index(host.target)] = f"{host.user.name}@vps-d.example.invalid"
    script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
    proc = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            script,
            str(resolv),
            sys.executable,
            "-m",
            "tui.cli.main",
            *args,
        ],
        env=fleet.control.vars,
        cwd=fleet.control.home.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if "unshare" in proc.stderr and proc.returncode != 69:
        pytest.skip(f"no mount namespace here: {proc.stderr.strip()}")
    assert proc.returncode == 69, proc.stderr
    assert "cannot resolve 'vps-d.example.invalid' (DNS" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    nothing_changed(fleet, host)


def test_zapvisor_missing_or_another_version_is_not_replaced_unasked(fleet: Fleet) -> None:
    bare = fleet.host("vps-m", installed=False)
    line = refused(fleet.control, *bare.add_args(fleet.key, "--trust"), code=69)
    assert f"zapvisor is not installed for {bare.user.name} on vps-m" in line
    assert "pass --install" in line
    nothing_changed(fleet, bare)

    old = fleet.host("vps-o")
    fake = old.user.home / "old-zapvisor"
    fake.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "zapvisor 0.0.9" && exit 0\nexit 1\n')
    fake.chmod(0o755)
    wrapper = Path(old.zapvisor or "")
    env_before = (wrapper.parent / ".env").read_text()
    (wrapper.parent / "venv").unlink()
    (wrapper.parent / "venv").mkdir()
    (wrapper.parent / "venv" / "bin").mkdir()
    (wrapper.parent / "venv" / "bin" / "zapvisor").symlink_to(fake)
    assert as_user(old.user, [str(wrapper), "--version"]).stdout.strip() == "zapvisor 0.0.9"
    old.zapvisor = None  # nothing to shut down there
    line = refused(fleet.control, *old.add_args(fleet.key, "--trust"), code=69)
    assert "zapvisor 0.0.9 runs for" in line and "pass --install to install 0.1.0" in line
    assert (wrapper.parent / ".env").read_text() == env_before
    assert fleet.registered() == []


def test_a_full_disk_on_the_host_stops_the_install_before_it_starts(fleet: Fleet) -> None:
    host = fleet.host("vps-f", installed=False)
    root = host.user.home / ".zapvisor"
    root.mkdir()
    mounted = subprocess.run(
        [
            "mount",
            "-t",
            "tmpfs",
            "-o",
            f"size=16m,mode=0700,uid={host.user.uid}",
            "tmpfs",
            str(root),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {mounted.stderr.strip()}")
    try:
        line = refused(fleet.control, *host.add_args(fleet.key, "--trust", "--install"), code=73)
        assert f"vps-f has 16 MB free in {root}" in line and "needs about 300 MB" in line
        assert list(root.iterdir()) == []
        assert fleet.registered() == []
    finally:
        subprocess.run(["umount", str(root)], check=False, capture_output=True)


def test_names_the_fleet_already_has_and_bad_names(fleet: Fleet) -> None:
    host = fleet.host("vps-n")
    fleet.add(host)
    other = fleet.host("vps-n2")
    args = other.add_args(fleet.key, "--trust")
    args[2] = "vps-n"
    line = refused(fleet.control, *args, code=73)
    assert "a host named 'vps-n' is already in the fleet" in line
    args[2] = "control"
    line = refused(fleet.control, *args, code=73)
    assert "'control' is this machine's ZAPVISOR_HOST_ID" in line
    for bad in ("../etc", "vps n", "vps;rm", "ção"):
        args[2] = bad
        assert "invalid host name" in refused(fleet.control, *args, code=65)
    args[2] = "vps-n2"
    args[3] = "no-user-part"
    assert "write it as USER@ADDRESS" in refused(fleet.control, *args, code=65)
    args[3] = f"{other.user.name}@127.0.0.1"
    args[args.index("--base-port") + 1] = "80"
    assert "--base-port must be 1024-65535" in refused(fleet.control, *args, code=65)
    assert fleet.registered() == ["vps-n"]

    for verb in ("check", "remove", "upgrade", "trust"):
        line = refused(fleet.control, "hosts", verb, "nope", code=66)
        assert "no host named 'nope' in the fleet" in line


def test_a_fleet_needs_a_shared_store(
    make_env: Callable[..., Env], sshd: SshServer, fleet: Fleet
) -> None:
    alone = make_env()  # SQLite
    host = fleet.host("vps-q")
    line = refused(alone, *host.add_args(fleet.key, "--trust"), code=78)
    assert "uses SQLite" in line and "zapvisor db copy --to postgres" in line
    assert not (alone.home / "known_hosts").exists()


def test_a_host_whose_sshd_died_is_unreachable_at_once(
    fleet: Fleet, make_sshd: Callable[[], SshServer]
) -> None:
    server = make_sshd()
    host = fleet.host("vps-z", sshd=server)
    fleet.add(host)
    server.stop()
    listed = {h["name"]: h for h in fleet.control.json("hosts", "list")}
    assert not listed["vps-z"]["reachable"]
    # at once: a refusal is the answer of the connect itself; waiting out the 8 s
    # per-host limit would say "no answer within 8 s" instead. (No wall-clock bound:
    # the CLI's own start takes 20 s and more on this shared, loaded machine.)
    assert "refused the connection" in listed["vps-z"]["error"]
    assert listed["vps-z"]["last_seen"] and listed["vps-z"]["cpu_percent"] is None
    table = fleet.control.cli("hosts", "list").stdout
    assert "vps-z: unreachable:" in table
    line = refused(fleet.control, "hosts", "check", "vps-z", code=69)
    assert "refused the connection" in line
