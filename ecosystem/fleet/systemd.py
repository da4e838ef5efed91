"""The systemd unit a host of the fleet gets where it may have one: the same unit
scripts/install-systemd.sh installs (`zapvisor serve` as the SSH user), as a system unit
when that user is root, else as a user unit of that user's own systemd."""

from __future__ import annotations

import re
import shlex
from importlib import resources
from pathlib import Path

from ecosystem.errors import HostError
from ecosystem.fleet.connect import Endpoint
from ecosystem.fleet.remote import Probe
from ecosystem.fleet.ssh import SSHPool

UNIT_NAME = "zapvisor.service"
_TEMPLATE = "zapvisor.service.in"
_SAFE = re.compile(r"[A-Za-z0-9_./+@:-]+")


def unit_template() -> str:
    """The template shipped in the wheel, or the repository's when run from a checkout."""
    packaged = resources.files("ecosystem.fleet").joinpath(_TEMPLATE)
    if packaged.is_file():
        return packaged.read_text("utf-8")
    checkout = Path(__file__).resolve().parents[2] / "scripts" / "systemd" / _TEMPLATE
    return checkout.read_text("utf-8")


def render_unit(*, user: str, home: str, workdir: str, zapvisor: str, user_mode: bool) -> str:
    """The unit's text. ``user_mode``: for `systemctl --user`, which has no User= and no
    network-online.target, and starts with the user's manager (default.target)."""
    for value in (user, home, workdir, zapvisor):
        if not _SAFE.fullmatch(value):
            raise HostError(
                f"{value!r} has characters a systemd unit cannot hold safely (spaces, '%', "
                "quotes…): no unit installed"
            )
    text = (
        unit_template()
        .replace("@USER@", user)
        .replace("@HOME@", home)
        .replace("@WORKDIR@", workdir)
        .replace("@ZAPVISOR@", zapvisor)
    )
    # The host's settings reach serve through the wrapper (`~/.zapvisor/zapvisor` reads
    # its 0600 .env), so the unit names no EnvironmentFile of its own.
    lines = [
        ln
        for ln in text.splitlines()
        if not ln.startswith(("Documentation=", "EnvironmentFile=", "# the operator's settings"))
    ]
    if user_mode:
        dropped = ("User=", "After=network-online.target", "Wants=network-online.target")
        lines = [ln for ln in lines if not ln.startswith(dropped)]
        lines = [
            "WantedBy=default.target" if ln == "WantedBy=multi-user.target" else ln for ln in lines
        ]
    return "\n".join(lines) + "\n"


async def install_unit(
    pool: SSHPool, endpoint: Endpoint, probe: Probe, zapvisor: str, zapvisor_home: str
) -> str:
    """Install and start the unit on the host where systemd runs; one line saying what
    was done (or why not: never an error, supervisord is also started on demand)."""
    if not probe.systemd:
        return (
            f"no systemd on {endpoint.name}: supervisord is started there by any zapvisor "
            "command (`zapvisor hosts list` included)"
        )
    system = probe.uid == 0
    unit = render_unit(
        user=endpoint.user,
        home=zapvisor_home,
        workdir=probe.root,
        zapvisor=zapvisor,
        user_mode=not system,
    )
    folder = "/etc/systemd/system" if system else f"{probe.home}/.config/systemd/user"
    ctl = "systemctl" if system else "systemctl --user"
    async with pool.sftp(endpoint, timeout=30) as sftp:
        await sftp.makedirs(folder, exist_ok=True)
        async with sftp.open(f"{folder}/{UNIT_NAME}", "w") as fh:
            await fh.write(unit)
        await sftp.chmod(f"{folder}/{UNIT_NAME}", 0o644)
    # one supervisord per state dir: the one a zapvisor command started goes, and
    # systemd's takes over (it starts the sessions meant to run)
    script = (
        f"{shlex.quote(zapvisor)} shutdown >/dev/null 2>&1; {ctl} daemon-reload && "
        f"{ctl} enable --now {UNIT_NAME}"
    )
    done = await pool.run(endpoint, script, timeout=120)
    if done.exit_status != 0:
        why = (done.stderr.strip().splitlines() or ["no reason given"])[-1]
        return (
            f"wrote {folder}/{UNIT_NAME} but `{ctl} enable --now` failed ({why}): "
            "supervisord is started by zapvisor commands meanwhile"
        )
    if system:
        return f"installed and started the system unit {UNIT_NAME} on {endpoint.name}"
    linger = await pool.run(endpoint, f"loginctl enable-linger {endpoint.user}", timeout=30)
    if linger.exit_status != 0:
        return (
            f"installed and started the user unit {UNIT_NAME}; for it to start at boot, have "
            f"root run `loginctl enable-linger {endpoint.user}` on {endpoint.name}"
        )
    return f"installed and started the user unit {UNIT_NAME} (starts at boot)"
