"""The handlers of `zapvisor backup` and `zapvisor restore` (their arguments are in
tui/cli/backup.py)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from ecosystem.backup_seal import MAGIC_LEN, is_sealed
from ecosystem.errors import Aborted, InvalidValue
from ecosystem.orchestrator import Orchestrator
from ecosystem.session import utcnow
from ecosystem.settings import load_settings
from tui.cli import output
from tui.cli.backup import PASSPHRASE_VAR


def _passphrase(args: argparse.Namespace, *, confirm: bool) -> str:
    if args.passphrase_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
    elif os.environ.get(PASSPHRASE_VAR):
        value = os.environ[PASSPHRASE_VAR]
    elif sys.stdin.isatty():
        value = getpass.getpass("Backup passphrase: ")
        if confirm and getpass.getpass("Again: ") != value:
            raise Aborted("the two passphrases differ: nothing done")
    else:
        raise InvalidValue(
            f"no passphrase: set {PASSPHRASE_VAR} or pass --passphrase-stdin "
            "(no terminal to ask on)"
        )
    if not value:
        raise InvalidValue("the passphrase is empty")
    return value


def backup(args: argparse.Namespace) -> int:
    orch = Orchestrator(load_settings(), progress=output.progress)
    passphrase = _passphrase(args, confirm=True) if args.encrypt else None
    if args.passphrase_stdin and not args.encrypt:
        raise InvalidValue("--passphrase-stdin is for --encrypt")
    if args.output:
        dest = Path(args.output)
    else:
        stamp = utcnow().strftime("%Y%m%d-%H%M%S")
        suffix = ".tar.gz.enc" if args.encrypt else ".tar.gz"
        dest = Path(f"zapvisor-backup-{orch.host_id}-{stamp}{suffix}")
    report = orch.backup(dest, passphrase=passphrase)
    if args.json:
        output.emit_json(report.to_json())
    else:
        sealed = ", encrypted" if report.encrypted else ""
        devices = f", {report.whatsmeow_devices} whatsmeow device(s)" * bool(
            report.whatsmeow_devices
        )
        stored = f" ({report.store_auth} with their auth from the store{devices})" * bool(
            report.store_auth
        )
        print(
            f"wrote {report.path}: {len(report.sessions)} session(s){stored}, "
            f"{report.files} file(s), {report.webhooks} undelivered webhook event(s), "
            f"{report.bytes} bytes{sealed}"
        )
    return 0


def restore(args: argparse.Namespace) -> int:
    orch = Orchestrator(load_settings(), progress=output.progress)
    source = Path(args.file)
    passphrase = None
    try:
        with source.open("rb") as fh:
            sealed = is_sealed(fh.read(MAGIC_LEN))
    except OSError:
        sealed = False  # restore says why it cannot read it
    if sealed:
        passphrase = _passphrase(args, confirm=False)
    report = orch.restore(source, passphrase=passphrase, force=args.force)
    if args.json:
        output.emit_json(report.to_json())
    else:
        moved = {n: p for n, p in report.ports.items()}
        print(
            f"restored {len(report.sessions)} session(s) from {report.backup_host} "
            f"({report.backup_created_at[:19]}): "
            + ", ".join(f"{n} (port {p})" for n, p in moved.items())
        )
        if report.replaced:
            print(f"replaced: {', '.join(report.replaced)}")
        for name, why in report.failed.items():
            print(f"{name}: not healthy yet: {why}", file=sys.stderr)
    return 1 if report.failed else 0
