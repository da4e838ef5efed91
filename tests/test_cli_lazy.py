"""The command line builds the parser of the command it runs, not all ~45 (main.py):
what that parser accepts, prints and refuses must be what the whole parser's does."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest

from tests.test_readme import _subcommands
from tui.cli.main import build_parser, main


def _nested_help(parser: argparse.ArgumentParser) -> list[str]:
    """The help of ``parser`` and of every subcommand under it."""
    out = [parser.format_help()]
    for sub in _subcommands(parser).values():
        out += _nested_help(sub)
    return out


FULL = build_parser()
COMMANDS = sorted(_subcommands(FULL))


def test_every_command_alone_builds_what_the_whole_parser_builds() -> None:
    assert len(COMMANDS) > 30 and {"restart", "hosts", "db"} <= set(COMMANDS)
    full = _subcommands(FULL)
    for name in COMMANDS:
        lazy = build_parser(name)
        subs = _subcommands(lazy)
        assert set(subs) == {name}, "only the command asked for is built"
        assert _nested_help(subs[name]) == _nested_help(full[name]), name
        assert lazy.format_help() == FULL.format_help(), "the command list stays whole"


@pytest.mark.parametrize(
    "argv",
    [
        ["restart", "s1"],
        ["--debug", "stop", "s1", "--json"],
        ["create", "c1", "--connector", "sim", "--timing-config", "{}", "--stopped"],
        ["hosts", "list", "--json"],
        ["db", "status"],
        ["logs", "s1", "-n", "5"],
    ],
)
def test_arguments_parse_as_the_whole_parser_parses_them(argv: list[str]) -> None:
    command = next(a for a in argv if not a.startswith("-"))
    assert vars(build_parser(command).parse_args(argv)) == vars(FULL.parse_args(argv))


def _run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, err.getvalue()


def test_an_unknown_command_is_refused_with_the_whole_list() -> None:
    """A typo builds every parser, so the error names the commands there are."""
    assert build_parser("restat").format_help() == FULL.format_help()
    code, text = _run(["restat", "s1"])
    assert code == 2
    assert "invalid choice: 'restat'" in text and "'restart'" in text and "'hosts'" in text


def test_a_command_missing_its_argument_says_so() -> None:
    code, text = _run(["restart"])
    assert code == 2
    assert "zapvisor restart: error: the following arguments are required: NAME" in text
