"""The suite's own port allocator keeps every worker's ports below the ephemeral range,
whatever the number of xdist workers (`-n`)."""

from __future__ import annotations

import pytest

from tests import conftest


@pytest.mark.parametrize("workers", [1, 2, 4, 8, 16])
def test_every_worker_gets_ports_below_the_ephemeral_range(
    monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(workers))
    seen: list[range] = []
    for index in range(workers):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{index}")
        share = conftest._worker_ports()
        assert share.start >= 1024 and share.stop <= 32768, share
        assert all(not set(share) & set(other) for other in seen), "workers share ports"
        seen.append(share)
        start = conftest.free_port_block(12)
        assert share.start <= start and start + 12 <= share.stop
