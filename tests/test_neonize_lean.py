"""A neonize runner loads neonize (and with it httpx) at start, but neither httpx's
command line client (click, rich and pygments: ~100 modules, ~4.4 MB of every neonize
runner; runner/__main__.py's without_httpx_cli) nor neonize's synchronous client (~0.8
MB; neonize_client.without_the_sync_client). A real runner, offline (there is no route
to WhatsApp here: its Go client dials and retries), lists what it loaded when it
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
    "neonize.client": "neonize's synchronous client: the connector uses neonize.aioze",
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


def fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` run by a new interpreter: what it imports is its own."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


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
    done = fresh_python(code)
    assert done.returncode == 1, done.stderr
    assert "pip install 'httpx[cli]'" in done.stdout


def test_neonize_without_its_sync_client_still_gives_every_name() -> None:
    """neonize.aioze is imported without neonize's __init__; the package's own names
    are there the first time something asks for one."""
    code = (
        "import sys\n"
        "from runner.connectors.neonize_client import without_the_sync_client\n"
        "without_the_sync_client()\n"
        "from neonize.aioze.client import NewAClient\n"
        "from neonize.proto import Neonize_pb2\n"
        "assert 'neonize.client' not in sys.modules\n"
        "import neonize\n"
        "from neonize import NewClient, extract_text\n"
        "assert neonize.__version__ and 'neonize.client' in sys.modules\n"
        "assert NewClient.__module__ == 'neonize.client' and NewAClient and extract_text\n"
        "print('ok')\n"
    )
    done = fresh_python(code)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
