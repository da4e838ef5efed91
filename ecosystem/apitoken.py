"""Per-session API tokens: the plaintext lives in a 0600 file on the session's host,
the store keeps only a SHA-256 hash, so a database reader cannot call a runner."""

from __future__ import annotations

from pathlib import Path

from ecosystem.errors import ZapvisorError
from ecosystem.paths import StatePaths, write_private

# hashlib and secrets (OpenSSL's bindings) load with the first token made or hashed:
# every command imports this module, few of them make or check a token.


def new_token() -> str:
    import secrets

    return "zv_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    import hashlib

    # Tokens are 256-bit random strings: a plain hash cannot be brute-forced.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def save_token(paths: StatePaths, name: str, token: str) -> Path:
    path = paths.api_token_file(name)
    write_private(path, token + "\n")
    return path


def read_token(paths: StatePaths, name: str) -> str:
    path = paths.api_token_file(name)
    try:
        return path.read_text("utf-8").strip()
    except FileNotFoundError:
        raise ZapvisorError(
            f"no API token for {name} on this host ({path} is missing): "
            f"`zapvisor token {name} --rotate` makes a new one"
        ) from None
