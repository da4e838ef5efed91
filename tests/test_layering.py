"""The house's layering, checked in fresh interpreters: the core imports no UI, the
runner imports nothing of the UI side, and headless commands do not pay for textual;
and neither the core nor the runner keeps a protocol parser of its own."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import ROOT, Env

_LOADED = """
import importlib, pkgutil, sys
for target in {targets!r}:
    module = importlib.import_module(target)
    if hasattr(module, "__path__"):
        for info in pkgutil.walk_packages(module.__path__, target + "."):
            importlib.import_module(info.name)
print("\\n".join(sorted(sys.modules)))
"""


def _modules_after_importing(*targets: str) -> set[str]:
    return _modules_after_running(_LOADED.format(targets=list(targets)))


def _modules_after_running(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    return set(out.stdout.split())


def _tops(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("ecosystem", {"textual", "tui", "runner"}), ("runner", {"textual", "tui"})],
)
def test_package_does_not_import(package: str, forbidden: set[str]) -> None:
    loaded = _tops(_modules_after_importing(package))
    assert package in loaded
    assert not loaded & forbidden, f"{package} pulled in {sorted(loaded & forbidden)}"


def test_headless_commands_do_not_import_textual() -> None:
    loaded = _tops(_modules_after_importing("tui.cli.main", "tui.cli.commands"))
    assert "textual" not in loaded


def test_the_app_does_import_textual() -> None:
    # the check above would pass vacuously if the app lived somewhere else
    assert "textual" in _tops(_modules_after_importing("tui.app"))


def _constants(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Every str/bytes constant that is not a docstring, with its line."""
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in docstrings:
            value = node.value
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            if isinstance(value, str):
                yield node.lineno, value


HTTP_WIRE = re.compile(r"\r\n\r\n|\bHTTP/1\.[01]\b|^(GET|POST|PUT|DELETE|HEAD) /")


@pytest.mark.parametrize("package", ["ecosystem", "runner"])
def test_no_protocol_parser_of_its_own(package: str) -> None:
    """HTTP is spoken through kept libraries (h11, httpx, http.client, xmlrpc, urllib):
    no module writes or splits the wire format by hand, which is where the
    request-smuggling kind of bug lives."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for line, text in _constants(tree):
            if HTTP_WIRE.search(text):
                found.append(f"{path.relative_to(ROOT)}:{line}: {text[:40]!r}")
    assert not found, "hand-written HTTP:\n" + "\n".join(found)


def test_building_the_command_line_imports_no_core() -> None:
    """Each command imports the core when it runs (tui/cli/registry.py): parsing the
    arguments must not load pydantic, the store or supervisord's client, which are most
    of a short command's time."""
    loaded = _modules_after_running(
        "import sys\nfrom tui.cli.main import build_parser\nbuild_parser()\n"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    assert "tui.cli.session_args" in loaded  # every command was registered
    heavy = {"pydantic", "ecosystem.orchestrator", "ecosystem.store", "xmlrpc.client", "qrcode"}
    assert not loaded & heavy, f"building the parser imported {sorted(loaded & heavy)}"


# What only backup/restore, plan/apply/export, doctor, the bot's keys, a host's figures
# or another host of the fleet need: none of them is loaded by opening the door.
_NOT_FOR_EVERY_COMMAND = {
    "ecosystem.backup_archive",
    "ecosystem.backup_store",
    "ecosystem.whatsmeow_dump",
    "ecosystem.whatsmeow_restore",
    "ecosystem.declare_plan",
    "ecosystem.declare_auth",
    "ecosystem.declare_hosts",
    "ecosystem.fleetfile",
    "ecosystem.fleetfile_write",
    "ecosystem.doctor",
    "ecosystem.doctor_state",
    "ecosystem.fleet.ssh",
    "ecosystem.fleet.sshlinks",  # the fleet's links: a store that can hold a fleet
    "asyncio",
    "asyncssh",
    "psutil",
    "psycopg",
    "jinja2",
    # rows and operator input are records (ecosystem/record.py): pydantic is for the
    # bot's settings, the runner API's bodies and the calls that cross to another host
    "pydantic",
}


def test_the_door_imports_only_what_every_command_uses() -> None:
    """`show`, `create`, `restart`, `stop` and `shutdown` import the handlers' module,
    the door (control.door(): the Orchestrator with its fleet links) and the
    SQLite store: the modules of commands they do not run stay unloaded, so a short
    command's time is not spent importing them (they load in the methods that use them)."""
    loaded = _modules_after_importing(
        "tui.cli.main",
        "tui.cli.commands",
        "ecosystem.fleet.control",
        "ecosystem.orchestrator",
        "ecosystem.store.sqlite",
    )
    assert "ecosystem.orchestrator" in loaded  # the door itself was imported
    found = sorted(m for m in loaded if {m, m.split(".")[0]} & _NOT_FOR_EVERY_COMMAND)
    assert not found, f"opening the door imported {found}"


def test_a_runner_starts_without_pydantic() -> None:
    """What a runner imports to start and answer `/health` (tests/test_runner_lean.py
    checks a live one): pydantic is ~13 MB of a runner and ~80 ms of its start."""
    loaded = _tops(
        _modules_after_running(
            "import sys\nimport runner.__main__, runner.startup\n"
            "print('\\n'.join(sorted(sys.modules)))"
        )
    )
    assert "runner" in loaded
    assert "pydantic" not in loaded and "pydantic_core" not in loaded


def test_the_monitor_speaks_the_listener_protocol_without_supervisors_client() -> None:
    """The health monitor answers supervisord's event protocol itself: supervisor's
    childutils would bring its XML-RPC server side, medusa, ElementTree and html
    (~2 MB of a process that runs for as long as the host does); urllib's client loads
    only in the commands that call a runner's API."""
    loaded = _modules_after_running(
        "import sys\nimport ecosystem.health.__main__, ecosystem.health.listener\n"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    assert "ecosystem.health.listener" in loaded
    heavy = {"supervisor.childutils", "supervisor.xmlrpc", "xml.etree.ElementTree", "html"}
    heavy |= {"urllib.request"}  # a runner's API is called by commands, not by the monitor
    # the config is rendered and applied by commands, and by a failover when one comes
    heavy |= {"ecosystem.supctl.apply", "ecosystem.supctl.render", "jinja2", "tempfile"}
    assert not loaded & heavy, sorted(loaded & heavy)


# What `list` does not load when supervisord is up: the XML-RPC talk goes through
# ecosystem/supctl/wire.py (h11 + expat); applying the config, starting runners,
# calling a runner, moving a session and asking another host load in the methods that
# do them; hashing and signing import hashlib (OpenSSL) where they hash; and a listing
# opens the door's reads alone (ecosystem/fleet/control.py: reading_side), not the
# modules of its other actions. Each of these was on list's path: together ~40% of
# its imports.
_NOT_FOR_A_LIST = {
    "ecosystem.orchestrator",
    "ecosystem.backups",
    "ecosystem.declare",
    "ecosystem.logs_all",
    "ecosystem.logstream",
    "ecosystem.failover_actions",
    "xmlrpc.client",
    "http.client",
    "email",
    "ssl",
    "concurrent",
    "logging",
    "ecosystem.supctl.apply",
    "ecosystem.supctl.render",
    "ecosystem.boot",
    "ecosystem.runner_client",
    "ecosystem.health.failover",
    "subprocess",
    "hashlib",
    "hmac",
    "secrets",
    "importlib.resources",  # the SQLite store's migrations are read as files
    "zipfile",
}


@pytest.mark.e2e
def test_list_imports_none_of_what_it_does_not_use(zv: Env) -> None:
    """A real `list --json` (one session, supervisord up), in a fresh interpreter that
    prints what it loaded once the command returned."""
    zv.cli("create", "a1", "--connector", "sim", "--stopped")
    code = (
        "import sys\nfrom tui.cli.main import main\ncode = main(['list', '--json'])\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\nsys.exit(code)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=zv.vars,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert [row["name"] for row in json.loads(out.stdout)] == ["a1"]
    loaded = set(out.stderr.split())
    assert "ecosystem.supctl.wire" in loaded  # it did ask supervisord
    found = sorted(m for m in loaded if {m, m.split(".")[0]} & _NOT_FOR_A_LIST)
    assert not found, f"`list --json` imported {found}"


def test_a_runner_imports_to_start_none_of_what_only_some_sessions_need() -> None:
    """The bot (with zoneinfo), the sim faults, the fleet's moves, the migrations,
    tempfile, argparse (for anything but supervisord's own options), dotenv (for a
    runtime.env zapvisor did not write) and uuid load where used, not with the runner:
    tests/test_runner_lean.py checks a live one, which also makes events and reads its
    runtime.env."""
    loaded = _modules_after_running(
        "import sys\nimport runner.__main__, runner.startup\nprint('\\n'.join(sorted(sys.modules)))"
    )
    assert "runner.core" in loaded
    lazy = {
        "argparse",
        "dotenv",
        "uuid",
        "zoneinfo",
        "runner.bot",
        "runner.bot.bot",
        "runner.connectors.sim_faults",
        "ecosystem.moves",
        "ecosystem.store.migrations",
        "tempfile",
    }
    assert not loaded & lazy, f"starting a runner imported {sorted(loaded & lazy)}"
