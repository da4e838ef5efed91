"""A neonize runner loads neonize (and with it httpx) at start, but not httpx's command
line client: click, rich and pygments, ~100 modules and ~4.4 MB of every neonize
runner (runner/__main__.py's without_httpx_cli). A real runner, offline (there is no
route to WhatsApp here: its Go client dials and retries), lists what it loaded when it
leaves."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.conftest import ROOT, Env, wait_for
from tests.test_runner_lean import _RUN_AND_LIST

NEVER_IN_A_RUNNER = {
    "click": "only httpx's command line client imports it",
    "pygments": "only httpx's command line client imports it",
    "rich": "only httpx's command line client imports it",
}
"""(httpx._main is listed: the mark that keeps it out is an entry of sys.modules.)"""


@pytest.mark.e2e
def test_a_neonize_runner_loads_neonize_but_not_httpxs_command_line(
    make_env: Callable[..., Env],
) -> None:
    zv = make_env()
    port = zv.json("create", "lean", "--connector", "neonize")["port"]
    zv.cli("stop", "lean")
    log = zv.home / "logs" / "lean-own.log"
    out = zv.home.parent / "modules.txt"
    words = ["--home", str(zv.home), "--session", "lean", "--port", str(port)]
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-c", _RUN_AND_LIST, *words],
            cwd=ROOT,
            env={**zv.vars, "LEAN_MODULES_OUT": str(out)},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        # its first connect attempt has come back: neonize and its Go side are loaded
        wait_for(lambda: '"reconnect_wait"' in log.read_text(), timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    loaded = set(out.read_text().split())
    assert {"runner.connectors.neonize", "neonize.aioze.client", "httpx"} <= loaded
    found = {m: why for m, why in NEVER_IN_A_RUNNER.items() if m in loaded}
    assert not found, f"a neonize runner loaded {found}"


def test_httpx_without_its_command_line_is_whole() -> None:
    """What a runner's httpx is: its client as always, and the `main` httpx itself
    gives when its command line's dependencies are missing."""
    code = (
        "import sys\n"
        "from runner.__main__ import without_httpx_cli\n"
        "without_httpx_cli()\n"
        "import httpx\n"
        "assert 'click' not in sys.modules and 'pygments' not in sys.modules\n"
        "r = httpx.Response(200, json={'ok': True})\n"
        "assert r.json() == {'ok': True} and httpx.AsyncClient and httpx.Client\n"
        "httpx.main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    assert "pip install 'httpx[cli]'" in done.stdout
