"""The session naming rule, shared by the CLI, the TUI form and the store; and the
connectors' and the bot's providers' names (here rather than with the models, so
argument parsing and a runner's start need no pydantic)."""

from __future__ import annotations

import re

from ecosystem.errors import InvalidName

NAME_RULE = (
    "1-48 characters: lowercase letters, digits, '-' and '_', starting with a letter or digit"
)
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")
PROGRAM_PREFIX = "wa-"

CONNECTORS = ("neonize", "sim")
DEFAULT_CONNECTOR = "neonize"
PROVIDERS = ("openai", "gemini")
"""The bot's AI providers (ecosystem/botconfig.py)."""


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid session name, or None when it is."""
    if not name:
        return f"a session name is needed ({NAME_RULE})"
    if _NAME.fullmatch(name):
        return None
    shown = name if len(name) <= 60 else name[:57] + "..."
    return f"invalid session name {shown!r}: use {NAME_RULE}"


def validate_name(name: str) -> str:
    problem = name_problem(name)
    if problem:
        raise InvalidName(problem)
    return name


def program_name(name: str) -> str:
    return PROGRAM_PREFIX + name


def session_from_program(program: str) -> str | None:
    if program.startswith(PROGRAM_PREFIX):
        rest = program[len(PROGRAM_PREFIX) :]
        if _NAME.fullmatch(rest):
            return rest
    return None


def runner_session(cmdline: list[str], home: str) -> str | None:
    """The session whose runner of state dir ``home`` a process is, from its command
    line (``python -m runner --home HOME --session NAME --port PORT``); None when it is
    none. A runner forked from supervisord (supctl/forkspawn.py) shows that command as
    one string, its words joined by spaces (a home with spaces cannot be split back out
    of it): both forms are matched as the text of the words joined."""
    text = " ".join(word for word in cmdline if word)
    marker = f" -m runner --home {home} --session "
    at = text.find(marker)
    if at < 0:
        return None
    name = text[at + len(marker) :].split(" ", 1)[0]
    return name if _NAME.fullmatch(name) else None
