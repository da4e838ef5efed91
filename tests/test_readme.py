"""The README against the program it describes: every command in its table, every exit
status the CLI can end with in its list, every setting in its table, and `--json` where
it says so. An operator reads the README, not the parser."""

from __future__ import annotations

import argparse
import dataclasses
import re

from ecosystem.errors import ZapvisorError
from ecosystem.settings import Settings
from tests.conftest import ROOT
from tui.cli.main import build_parser

README = (ROOT / "README.md").read_text("utf-8")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _exit_codes(cls: type[ZapvisorError]) -> set[int]:
    codes = {cls.exit_code} if isinstance(cls.__dict__.get("exit_code"), int) else set()
    for sub in cls.__subclasses__():
        codes |= _exit_codes(sub)
    return codes


def _exit_paragraph() -> str:
    start = README.index("Exit status:")
    return README[start : README.index("\n\n", start)]


def test_every_command_is_in_the_command_table() -> None:
    """`events` was missing from it."""
    table = {m for m in re.findall(r"^\| `([a-z-]+)", README, re.M)}
    table |= set(re.findall(r"^\| `[^|]*?` / `([a-z-]+)", README, re.M))
    table |= set(re.findall(r"^\| `[^|]*?` / `[^|]*?` / `([a-z-]+)", README, re.M))
    commands = set(_subcommands(build_parser()))
    assert commands - table == set(), "commands the README's table does not list"


def test_every_exit_status_is_listed() -> None:
    """1 (`doctor` found a FAIL) was missing; each error class's code, and 2 for usage."""
    listed = {int(n) for n in re.findall(r"\b(\d{1,3}) ", _exit_paragraph())}
    wanted = _exit_codes(ZapvisorError) | {1, 2}
    assert wanted - listed == set(), f"exit statuses the README does not list: {listed}"


def test_the_commands_without_json_are_the_ones_the_readme_names() -> None:
    without = []
    for name, parser in _subcommands(build_parser()).items():
        subs = _subcommands(parser)
        for full, p in [(f"{name} {s}", sp) for s, sp in subs.items()] or [(name, parser)]:
            if "--json" not in {o for a in p._actions for o in a.option_strings}:
                without.append(full)
    sentence = README[README.index("Every command but") :].split(" takes `--json`")[0]
    assert sorted(without) == sorted(re.findall(r"`([a-z -]+)`", sentence))


def test_every_setting_is_in_the_settings_table() -> None:
    names = set()
    for field in dataclasses.fields(Settings):
        names |= set(field.metadata["vars"])
    missing = sorted(n for n in names if f"`{n}`" not in README)
    assert missing == [], "settings the README does not list"
