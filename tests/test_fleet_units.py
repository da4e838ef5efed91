"""The fleet's pure parts: names and targets, what a probe of a host says, the host's
settings file, the wheel shipped to hosts and the systemd unit they get."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from dotenv import dotenv_values

from ecosystem.errors import InvalidName, InvalidValue, RemoteZapvisorError, SupervisorError
from ecosystem.fleet import layout, wheel
from ecosystem.fleet.bootstrap import check_can_install
from ecosystem.fleet.knownhosts import KnownHosts, normalise_fingerprint
from ecosystem.fleet.records import check_port_range, parse_target, validate_host_name
from ecosystem.fleet.remote import parse_probe
from ecosystem.fleet.systemd import render_unit
from tests.conftest import ROOT


def test_host_names_and_targets() -> None:
    for good in ("vps2", "VPS-2", "srv_1.eu", "a" * 63):
        assert validate_host_name(good) == good
    for bad in ("", "-x", "../etc", "a b", "x;y", "ção", "a" * 64, "x/y"):
        with pytest.raises(InvalidName, match="invalid host name"):
            validate_host_name(bad)
    assert parse_target("deploy@203.0.113.7") == ("deploy", "203.0.113.7")
    assert parse_target("deploy@[2001:db8::1]") == ("deploy", "2001:db8::1")
    assert parse_target("deploy@vps2.example.com.") == ("deploy", "vps2.example.com")
    for bad, why in [
        ("deploy", "USER@ADDRESS"),
        ("@host", "USER@ADDRESS"),
        ("de ploy@host", "invalid SSH user"),
        ("a@b@host", "invalid SSH user"),
        ("deploy@host:2222", "--port"),
        ("deploy@ho_st;rm", "not a host name"),
    ]:
        with pytest.raises(InvalidValue, match=why):
            parse_target(bad)
    check_port_range(3001, 40)
    with pytest.raises(InvalidValue, match="past port 65535"):
        check_port_range(65500, 100)


def test_fingerprints_as_operators_paste_them() -> None:
    body = "nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"
    for text in (f"SHA256:{body}", f"sha256:{body}=", f"  {body}  "):
        assert normalise_fingerprint(text) == f"SHA256:{body}"
    for bad in ("MD5:aa:bb", "SHA256:short", ""):
        with pytest.raises(InvalidValue, match="not a SHA256 fingerprint"):
            normalise_fingerprint(bad)


def test_known_hosts_keeps_other_lines(tmp_path: Path) -> None:
    import asyncssh

    path = tmp_path / "known_hosts"
    path.write_text("# mine\nexample.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ\n")
    known = KnownHosts(path)
    key = asyncssh.generate_private_key("ssh-ed25519").convert_to_public()
    known.remember("10.0.0.5", 2222, key)
    known.remember("10.0.0.5", 2222, key)  # twice: one line
    known.remember("10.0.0.6", 22, key)
    text = path.read_text()
    assert text.count("[10.0.0.5]:2222 ssh-ed25519 ") == 1 and "\n10.0.0.6 ssh-ed25519 " in text
    assert [k.get_fingerprint() for k in known.lookup("10.0.0.5", 2222)] == [key.get_fingerprint()]
    assert known.lookup("10.0.0.5", 22) == []
    assert known.forget("10.0.0.5", 2222) == 1
    assert path.read_text().startswith("# mine\nexample.org ssh-ed25519")
    assert (path.stat().st_mode & 0o777) == 0o600


PROBE = """\
home=/home/deploy
uid=1000
python=0 3.9.2 /usr/bin/python3.9
python=1 3.12.1 /usr/bin/python3.12
python=1 3.11.2 /usr/bin/python3
free_kb=5242880
free_dir=/home/deploy
managed=zapvisor 0.0.9
systemd=1
end=1
"""


def test_what_a_probe_of_the_host_says() -> None:
    probe = parse_probe(PROBE)
    assert probe.home == "/home/deploy" and probe.uid == 1000 and probe.systemd
    assert probe.root == "/home/deploy/.zapvisor"
    assert probe.zapvisor == "/home/deploy/.zapvisor/zapvisor"
    assert probe.managed_version == "0.0.9" and probe.free_kb == 5242880
    assert check_can_install("vps2", probe) == "/usr/bin/python3.12"

    old = parse_probe("home=/root\nuid=0\npython=1 3.9.2 /usr/bin/python3\nend=1\n")
    assert old.managed_version is None and not old.systemd
    with pytest.raises(RemoteZapvisorError, match=r"no python3 3\.11 or newer with venv"):
        check_can_install("vps2", old)
    no_venv = parse_probe("home=/root\nuid=0\npython=0 3.11.2 /usr/bin/python3\nend=1\n")
    with pytest.raises(RemoteZapvisorError, match=r"/usr/bin/python3 3\.11\.2 without venv"):
        check_can_install("vps2", no_venv)
    full = parse_probe(PROBE.replace("free_kb=5242880", "free_kb=10240"))
    with pytest.raises(RemoteZapvisorError, match="has 10 MB free in /home/deploy") as err:
        check_can_install("vps2", full)
    assert err.value.exit_code == 73
    with pytest.raises(Exception, match="something else"):
        parse_probe("Welcome to my shell!\n")


def test_the_hosts_settings_file() -> None:
    text = layout.host_env(
        "vps2",
        3001,
        40,
        {"ZAPVISOR_DATABASE_URL": "postgresql://zv:p#w d$x@db:5432/zv"},
        home="/home/deploy/.local/share/zapvisor",
    )
    values = dotenv_values(stream=__import__("io").StringIO(text))
    assert values == {
        "ZAPVISOR_HOST_ID": "vps2",
        "BASE_PORT": "3001",
        "MAX_SESSIONS": "40",
        "ZAPVISOR_HOME": "/home/deploy/.local/share/zapvisor",
        "ZAPVISOR_DATABASE_URL": "postgresql://zv:p#w d$x@db:5432/zv",
    }
    with pytest.raises(SupervisorError, match="quote"):
        layout.host_env("vps2", 3001, 4, {"ZAPVISOR_DATABASE_URL": "postgresql://a:b'c@h/d"})


def test_an_upgrade_keeps_what_the_operator_wrote_in_the_hosts_settings() -> None:
    """`hosts add` / `hosts upgrade` write a host's .env again: the operator's own lines
    (another setting, a value with a quote, a comment) stay as they were, while the
    identity, ports and store are written afresh and nothing doubles up."""
    from ecosystem.fleet.host_changes import KEPT_VARIABLES, kept_settings

    store = {"ZAPVISOR_DATABASE_URL": "postgresql://zv@db/zv"}
    first = layout.host_env("vps2", 3001, 5, store, home="/srv/zv")
    edited = (
        first
        + "\n# the provider key for this host's bots\n"
        + 'OPENAI_API_KEY="sk-it\'s"\n'
        + "export LOG_LEVEL=debug\n"
        + "BASE_PORT=9999\n"
    )
    newer = {"ZAPVISOR_DATABASE_URL": "postgresql://zv@db2/zv"}
    text = edited
    for _ in range(2):
        hand = layout.hand_lines(text, KEPT_VARIABLES)
        kept = kept_settings(text)
        text = layout.host_env(
            "vps2", 4001, 8, newer, home=kept["ZAPVISOR_HOME"], kept=kept, hand=hand
        )
    values = dotenv_values(stream=__import__("io").StringIO(text))
    assert values == {
        "ZAPVISOR_HOST_ID": "vps2",
        "BASE_PORT": "4001",
        "MAX_SESSIONS": "8",
        "ZAPVISOR_HOME": "/srv/zv",
        "ZAPVISOR_DATABASE_URL": "postgresql://zv@db2/zv",
        "OPENAI_API_KEY": "sk-it's",
        "LOG_LEVEL": "debug",
    }
    assert "# the provider key for this host's bots\n" in text
    assert text.count(layout.HEADER) == 1 and text.count(layout.HAND_HEADER) == 1
    assert layout.host_env("vps2", 4001, 8, newer, home="/srv/zv", kept=kept, hand=hand) == text


def test_the_wheel_shipped_to_hosts_is_this_tree(tmp_path: Path) -> None:
    built = wheel.build_wheel(tmp_path)
    assert built.name == f"zapvisor-{wheel.installed_version()}-py3-none-any.whl"
    with zipfile.ZipFile(built) as archive:
        names = set(archive.namelist())
        info = f"zapvisor-{wheel.installed_version()}.dist-info"
        assert {f"{info}/METADATA", f"{info}/WHEEL", f"{info}/RECORD"} <= names
        assert "ecosystem/supctl/supervisord.conf.j2" in names
        assert "ecosystem/fleet/zapvisor.service.in" in names
        assert "tui/app.tcss" in names and "runner/__main__.py" in names
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        assert (
            archive.read("ecosystem/fleet/wheel.py")
            == (ROOT / "ecosystem" / "fleet" / "wheel.py").read_bytes()
        )
        assert "zapvisor = tui.cli.main:main" in archive.read(f"{info}/entry_points.txt").decode()
        for line in archive.read(f"{info}/RECORD").decode().splitlines():
            name, digest, size = line.split(",")
            if name.endswith("RECORD"):
                continue
            data = archive.read(name)
            want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == "sha256=" + want.decode() and int(size) == len(data)
    again = wheel.build_wheel(tmp_path / "again")
    assert again.read_bytes() == built.read_bytes()  # the same tree, the same wheel


def test_the_systemd_unit_of_a_host(tmp_path: Path) -> None:
    system = render_unit(
        user="deploy",
        home="/home/deploy/.local/share/zapvisor",
        workdir="/home/deploy/.zapvisor",
        zapvisor="/home/deploy/.zapvisor/zapvisor",
        user_mode=False,
    )
    assert "User=deploy" in system and "ExecStart=/home/deploy/.zapvisor/zapvisor serve" in system
    assert "WantedBy=multi-user.target" in system and "Documentation=" not in system
    user = render_unit(
        user="deploy",
        home="/home/deploy/.local/share/zapvisor",
        workdir="/home/deploy/.zapvisor",
        zapvisor="/home/deploy/.zapvisor/zapvisor",
        user_mode=True,
    )
    assert "User=" not in user and "WantedBy=default.target" in user
    assert "network-online" not in user and "Environment=ZAPVISOR_HOME=" in user
    with pytest.raises(Exception, match="cannot hold safely"):
        render_unit(user="deploy", home="/a b", workdir="/w", zapvisor="/z", user_mode=False)
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the unit's syntax is not checked")
    unit = tmp_path / "zapvisor.service"
    unit.write_text(
        system.replace("/home/deploy/.zapvisor/zapvisor", "/bin/true").replace(
            "User=deploy", "User=root"
        )
    )
    found = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    complaints = [ln for ln in found.stderr.splitlines() if unit.name in ln]
    assert found.returncode == 0 and not complaints, found.stderr


def test_the_control_side_links_to_the_fleet_only_when_its_store_can_hold_one(
    tmp_path: Path,
) -> None:
    """No store is opened and no host reached to build the door: a terminal app starts
    while its store is down, and a command that touches no other host pays nothing."""
    from ecosystem.fleet.control import control_side
    from ecosystem.fleet.sshlinks import SSHLinks
    from ecosystem.settings import make_settings

    alone = control_side(make_settings(home=tmp_path / "a", host_id="a"))
    assert alone.links is None and alone.fleet_hosts() == ["a"]
    alone.close()

    # nothing listens on port 1: building the door must not try
    dsn = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"
    fleet = control_side(make_settings(home=tmp_path / "b", host_id="b", database_url=dsn))
    try:
        assert isinstance(fleet.links, SSHLinks) and fleet._store is None
    finally:
        fleet.close()
        fleet.close()  # twice is harmless (the CLI and the app may both close it)


def test_the_fleets_hosts_are_read_from_the_store_at_most_every_few_seconds(
    tmp_path: Path,
) -> None:
    from ecosystem.fleet.records import NewHost
    from ecosystem.fleet.sshlinks import StoreHosts
    from ecosystem.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "zapvisor.db")
    store.migrate()
    reads = [0]

    def opened() -> SQLiteStore:
        reads[0] += 1
        return store

    def add(name: str) -> None:
        new = NewHost(
            name=name,
            address="127.0.0.1",
            ssh_user="deploy",
            ssh_port=22,
            base_port=3001,
            max_sessions=5,
            zapvisor_path="/home/deploy/.zapvisor/zapvisor",
        )
        store.add_host(new, actor="test")

    add("here")
    add("vps2")
    cached = StoreHosts(opened, "here", ttl=3600)
    assert cached() == ["vps2"] and reads == [1]
    add("vps3")
    assert cached() == ["vps2"] and reads == [1]  # a live view asks every second
    fresh = StoreHosts(opened, "here", ttl=0)
    assert sorted(fresh()) == ["vps2", "vps3"]
    store.remove_host("vps2", actor="test")
    assert fresh() == ["vps3"]
    store.close()


def test_an_upgrade_rewrites_the_hosts_own_settings_whatever_their_case() -> None:
    """Settings' names match whatever their case (ecosystem/settings.py), so a line the
    operator wrote as ``base_port=`` or ``zapvisor_database_url=`` is the same setting
    as the one `hosts upgrade` writes: kept as a hand line after it, it would win over
    the host's record (its ports, its store); and a kept setting written in lower case
    (``zapvisor_accept_failover=``) is carried, not lost."""
    import io

    from ecosystem.fleet.host_changes import KEPT_VARIABLES, kept_settings

    first = layout.host_env("vps2", 3001, 5, {"ZAPVISOR_DATABASE_URL": "postgresql://db1/zv"})
    edited = (
        first
        + "base_port=9999\nzapvisor_database_url=postgresql://old/zv\n"
        + "zapvisor_accept_failover=false\nlog_level=debug\n"
    )
    kept = kept_settings(edited)
    assert kept == {"ZAPVISOR_ACCEPT_FAILOVER": "false"}
    text = layout.host_env(
        "vps2",
        4001,
        8,
        {"ZAPVISOR_DATABASE_URL": "postgresql://db2/zv"},
        kept=kept,
        hand=layout.hand_lines(edited, KEPT_VARIABLES),
    )
    seen: dict[str, str | None] = {}
    for key, value in dotenv_values(stream=io.StringIO(text)).items():
        seen[key.upper()] = value  # as load_settings reads it: the later line wins
    assert seen["BASE_PORT"] == "4001"
    assert seen["ZAPVISOR_DATABASE_URL"] == "postgresql://db2/zv"
    assert seen["ZAPVISOR_ACCEPT_FAILOVER"] == "false"
    assert seen["LOG_LEVEL"] == "debug"
