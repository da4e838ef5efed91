"""`zapvisor serve`: supervisord in the foreground, for a service manager.

systemd (scripts/install-systemd.sh) runs this at boot: it writes supervisord's config
from the store and becomes supervisord; the health monitor inside it then starts the
sessions meant to run, a few at a time, each resuming its saved auth."""

from __future__ import annotations

import argparse

from tui.cli.registry import SubParsers, add_command

EPILOG = """\
For systemd units (see scripts/install-systemd.sh); stop it with `zapvisor shutdown`
(every runner first, then supervisord). Needs the health monitor (ZAPVISOR_MONITOR),
which starts the sessions once supervisord is up."""


def register(sub: SubParsers) -> None:
    add_command(
        sub,
        "serve",
        "run supervisord in the foreground (for systemd)",
        run,
        json_flag=False,
        epilog=EPILOG,
    )


def run(args: argparse.Namespace) -> int:
    from ecosystem.errors import ConfigError
    from ecosystem.orchestrator import Orchestrator
    from ecosystem.settings import load_settings
    from ecosystem.supctl import daemon

    settings = load_settings()
    if not settings.monitor:
        raise ConfigError(
            "`zapvisor serve` needs the health monitor to start the sessions at boot: "
            "unset ZAPVISOR_MONITOR (or set it to true)"
        )
    orch = Orchestrator(settings)
    orch.write_boot_config()
    orch.close()
    daemon.exec_foreground(orch.paths)
