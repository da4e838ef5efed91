"""`zapvisor backup` and `zapvisor restore`: one archive with everything this host's
sessions need to come back connected elsewhere."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from ecosystem.backup_archive import ENCRYPTED_MAGIC
from ecosystem.errors import Aborted, InvalidValue
from ecosystem.models import utcnow
from ecosystem.orchestrator import Orchestrator
from ecosystem.settings import load_settings
from tui.cli import output
from tui.cli.registry import SubParsers, add_command

PASSPHRASE_VAR = "ZAPVISOR_BACKUP_PASSPHRASE"  # noqa: S105 - the variable's name

BACKUP_EPILOG = f"""\
The archive (0600) holds this host's sessions: their rows, WhatsApp auth (tokens/NAME/),
API tokens, webhook signing secrets and undelivered webhook events. Keep it as safe as
the state dir: anyone with it can run these WhatsApp numbers. --encrypt seals it with a
passphrase (AES-256-GCM, scrypt), read from {PASSPHRASE_VAR}, from stdin with
--passphrase-stdin, or else asked on the terminal; never from the command line."""

RESTORE_EPILOG = f"""\
Everything is checked before anything changes: a corrupt, truncated or tampered archive,
or a wrong passphrase, is refused. Sessions keep their ports when free here. An
encrypted archive's passphrase is read from {PASSPHRASE_VAR}, from stdin with
--passphrase-stdin, or else asked on the terminal."""


def register(sub: SubParsers) -> None:
    p = add_command(
        sub, "backup", "write this host's sessions to one archive", backup, epilog=BACKUP_EPILOG
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where (default: zapvisor-backup-HOST-YYYYMMDD-HHMMSS.tar.gz here)",
    )
    p.add_argument("--encrypt", action="store_true", help="seal it with a passphrase")
    p.add_argument("--passphrase-stdin", action="store_true", help="read the passphrase from stdin")

    p = add_command(
        sub,
        "restore",
        "bring back the sessions of a backup, connected, without a new QR",
        restore,
        epilog=RESTORE_EPILOG,
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--force", action="store_true", help="replace sessions of the same name (auth included)"
    )
    p.add_argument("--passphrase-stdin", action="store_true", help="read the passphrase from stdin")


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
        print(
            f"wrote {report.path}: {len(report.sessions)} session(s), {report.files} file(s), "
            f"{report.webhooks} undelivered webhook event(s), {report.bytes} bytes{sealed}"
        )
    return 0


def restore(args: argparse.Namespace) -> int:
    orch = Orchestrator(load_settings(), progress=output.progress)
    source = Path(args.file)
    passphrase = None
    try:
        with source.open("rb") as fh:
            sealed = fh.read(len(ENCRYPTED_MAGIC)) == ENCRYPTED_MAGIC
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
