"""zapvisor's models are built on their first use (``defer_build``), and that first use
may come from several threads at once (a runner's store, lease and API threads, the
monitor's workers, the TUI's): pydantic before 2.14 rebuilt a deferred model without a
lock, and a model first used by two threads together could validate with BaseModel's
validator ("BaseModel cannot be instantiated directly", every time with 2.11.0-2.11.4)
or fail with "dictionary changed size during iteration". Records (ecosystem/record.py)
build their validators on first use too, and must be as safe."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from packaging.requirements import Requirement
from packaging.version import Version

from tests.conftest import ROOT

THREAD_SAFE_REBUILD = Version("2.14")
"""The first pydantic whose model_rebuild takes a lock (pydantic.main._rebuild_lock)."""

_FIRST_USE = """
import threading
from datetime import UTC, datetime

from ecosystem.botconfig import AiConfig
from ecosystem.fleet.records import HostRecord
from ecosystem.models import Event, NewSession, Session

now = datetime.now(UTC)
jobs = [
    lambda: Session.model_validate({"name": "loja", "host": "h1", "port": "3001"}).port,
    lambda: Session(name="loja", host="h1", port=3001).auth,
    lambda: Event(id=1, ts=now, session_name="loja", actor="t", action="create").id,
    lambda: HostRecord.model_validate({"name": "h1"}),
    lambda: NewSession.model_validate({"name": "loja", "connector": "sim"}).connector,
    lambda: AiConfig.model_validate({"provider": "nope"}),
]
got, barrier = [], threading.Barrier(18)


def run(i: int) -> None:
    barrier.wait()
    try:
        got.append(repr(jobs[i % len(jobs)]()))
    except ValueError:  # pydantic's ValidationError and RecordError both are
        got.append("validated")  # without their fields: refused, as they must be
    except Exception as exc:
        got.append(f"{type(exc).__name__}: {str(exc)[:80]}")


threads = [threading.Thread(target=run, args=(i,)) for i in range(18)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("\\n".join(sorted(set(got))))
"""


def test_pydantic_is_one_that_rebuilds_deferred_models_under_a_lock() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (pydantic,) = (r for d in project["dependencies"] if (r := Requirement(d)).name == "pydantic")
    lowest = min(
        (Version(s.version) for s in pydantic.specifier if ">" in s.operator), default=None
    )
    assert lowest is not None and lowest >= THREAD_SAFE_REBUILD, (
        f"pyproject.toml allows {pydantic}: a deferred model first used by two threads "
        f"at once is not safe before pydantic {THREAD_SAFE_REBUILD}"
    )


def test_models_first_used_by_many_threads_at_once_validate() -> None:
    """A fresh interpreter (no model built yet), 16 threads released together."""
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_USE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.splitlines() == [
        "'sim'",
        "1",
        "3001",
        "<AuthKind.LOCAL: 'local'>",
        "validated",
    ]
