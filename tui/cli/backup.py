"""`zapvisor backup` and `zapvisor restore`: one archive with everything this host's
sessions need to come back connected elsewhere. The handlers are in
tui/cli/backup_commands.py, imported only when one runs."""

from __future__ import annotations

from tui.cli.registry import SubParsers, add_command

PASSPHRASE_VAR = "ZAPVISOR_BACKUP_PASSPHRASE"  # noqa: S105 - the variable's name

BACKUP_EPILOG = f"""\
The archive (0600) holds this host's sessions: their rows, WhatsApp auth (tokens/NAME/;
for a neonize session whose auth lives in the store, whatsmeow's own rows of its device
in ZAPVISOR_DATABASE_URL), API tokens, webhook signing secrets, their bots' own provider
keys and undelivered webhook events. Keep it as safe as the state dir: anyone with it
can run these WhatsApp numbers. --encrypt seals it with a passphrase (AES-256-GCM,
scrypt), read from {PASSPHRASE_VAR}, from stdin with --passphrase-stdin, or
else asked on the terminal; never from the command line."""

RESTORE_EPILOG = f"""\
Everything is checked before anything changes: a corrupt, truncated or tampered archive,
or a wrong passphrase, is refused. Sessions keep their ports when free here. neonize
sessions whose auth lives in the store need a PostgreSQL store here (a SQLite one is
refused: they could not run on it); whatsmeow's tables are created when missing, and a
device already in them is refused unless --force. An encrypted archive's passphrase is
read from {PASSPHRASE_VAR}, from stdin with --passphrase-stdin, or else asked
on the terminal."""


def _run(function: str) -> str:
    """The handler ``function`` of tui/cli/backup_commands.py, imported when it runs."""
    return f"tui.cli.backup_commands:{function}"


def register(sub: SubParsers) -> None:
    p = add_command(
        sub,
        "backup",
        "write this host's sessions to one archive",
        _run("backup"),
        epilog=BACKUP_EPILOG,
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
        _run("restore"),
        epilog=RESTORE_EPILOG,
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--force", action="store_true", help="replace sessions of the same name (auth included)"
    )
    p.add_argument("--passphrase-stdin", action="store_true", help="read the passphrase from stdin")
