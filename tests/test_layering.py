"""The house's layering, checked in fresh interpreters: the core imports no UI, the
runner imports nothing of the UI side, and headless commands do not pay for textual."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

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
    out = subprocess.run(
        [sys.executable, "-c", _LOADED.format(targets=list(targets))],
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
