"""What zapvisor puts on a host, under the SSH user's home (`~/.zapvisor/`):

    venv -> venv-0.1.0-<id>/   the current install (a symlink, switched atomically)
    venv-0.1.0-<id>/           one venv per install; the previous one is kept
    .env                       the host's settings: its ZAPVISOR_HOST_ID, ports and the
                               fleet's store (0600: it holds the store's password)
    zapvisor                   the command the control side runs: it reads that .env

Pure text and paths: the bootstrap writes these over SFTP, and the test fixtures write
the same for hosts they set up themselves.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence

from ecosystem.settings import Settings
from ecosystem.supctl.statefiles import dotenv_quote

HEADER = "# written by `zapvisor hosts add` / `hosts upgrade` on the control side\n"
HAND_HEADER = "# this host's own settings, kept as they were by `hosts add` / `hosts upgrade`:\n"
IDENTITY_VARIABLES = ("ZAPVISOR_HOST_ID", "BASE_PORT", "MAX_SESSIONS", "ZAPVISOR_HOME")
STORE_VARIABLES = ("ZAPVISOR_DATABASE_URL", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY")
"""The settings every host of a fleet shares: where the store is."""

WRAPPER = """\
#!/bin/sh
# zapvisor on this host of a fleet (written by `zapvisor hosts add`): it runs in this
# folder so that the settings in its .env (host id, ports, the fleet's store) are read.
cd "$(dirname "$0")" || exit 69
exec ./venv/bin/zapvisor "$@"
"""


def remote_root(user_home: str) -> str:
    return posixpath.join(user_home, ".zapvisor")


def wrapper_path(root: str) -> str:
    return posixpath.join(root, "zapvisor")


def store_variables(settings: Settings) -> dict[str, str]:
    """The control side's store settings, as the host needs them."""
    out: dict[str, str] = {}
    if settings.database_url is not None:
        out["ZAPVISOR_DATABASE_URL"] = settings.database_url.get_secret_value()
    if settings.supabase_url:
        out["SUPABASE_URL"] = settings.supabase_url
    if settings.supabase_service_role_key is not None:
        out["SUPABASE_SERVICE_ROLE_KEY"] = settings.supabase_service_role_key.get_secret_value()
    return out


def host_env(
    name: str,
    base_port: int,
    max_sessions: int,
    store: Mapping[str, str],
    *,
    home: str | None = None,
    kept: Mapping[str, str] | None = None,
    hand: Sequence[str] = (),
) -> str:
    """The host's `.env`: its identity and ports, its own settings ``kept`` from the .env
    it had, then the fleet's store, then the lines the operator wrote there by hand
    (``hand``, from hand_lines: as they were, comments included)."""
    values = {
        "ZAPVISOR_HOST_ID": name,
        "BASE_PORT": str(base_port),
        "MAX_SESSIONS": str(max_sessions),
    }
    if home is not None:
        values["ZAPVISOR_HOME"] = home
    values.update({k: v for k, v in (kept or {}).items() if k != "ZAPVISOR_HOME"})
    values.update(store)
    text = HEADER + "".join(f"{k}={dotenv_quote(v)}\n" for k, v in values.items())
    if hand:
        text += HAND_HEADER + "".join(f"{line}\n" for line in hand)
    return text


def hand_lines(env_text: str, owned: Iterable[str]) -> list[str]:
    """The lines of a host's .env that zapvisor did not write (another setting, a
    comment), kept as they are when `hosts add` or `hosts upgrade` writes it again; the
    variables in ``owned`` and the identity, ports and store are written afresh, whatever
    the case of their names (settings match them in any case: ``base_port=`` kept after
    the fresh ``BASE_PORT=`` would win over it)."""
    mine = {v.upper() for v in (*owned, *IDENTITY_VARIABLES, *STORE_VARIABLES)}
    out: list[str] = []
    for line in env_text.splitlines():
        bare = line.strip()
        if bare in (HEADER.strip(), HAND_HEADER.strip()):
            continue
        name = bare.removeprefix("export ").split("=", 1)[0].strip()
        if bare and not bare.startswith("#") and name.upper() in mine:
            continue
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    while out and not out[0].strip():
        out.pop(0)
    return out
