"""Credentials in a webhook URL never reach `show`, the JSON views or the audit trail."""

from __future__ import annotations

import pytest

from ecosystem.redact import redact_url
from tests.conftest import Env


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example/in", "https://hooks.example/in"),
        ("https://ana:s3cr%40t@hooks.example/in", "https://ana:***@hooks.example/in"),
        ("https://tok123@hooks.example:8443/in", "https://***@hooks.example:8443/in"),
        (
            "https://hooks.example/in?token=abc&page=2&apiKey=x",
            "https://hooks.example/in?token=***&page=2&apiKey=***",
        ),
        ("http://hooks.example/in?page=2", "http://hooks.example/in?page=2"),
        (None, None),
    ],
)
def test_redact_url(url: str | None, shown: str | None) -> None:
    assert redact_url(url) == shown


@pytest.mark.e2e
def test_show_json_and_events_hide_the_webhook_credentials(zv: Env) -> None:
    url = "https://ana:hunter2@hooks.example/in?token=zz-secret-zz"
    zv.cli("create", "alpha", "--connector", "sim", "--stopped")
    zv.cli("config", "alpha", "--webhook-url", url)
    shown = zv.json("show", "alpha")["webhook_url"]
    assert shown == "https://ana:***@hooks.example/in?token=***"
    outputs = [
        zv.cli("show", "alpha").stdout,
        zv.cli("list", "--json").stdout,
        zv.cli("events", "alpha", "--json").stdout,
        zv.cli("config", "alpha", "--webhook-url", "").stdout,
    ]
    for text in outputs:
        assert "hunter2" not in text and "zz-secret-zz" not in text
    events = zv.json("events", "alpha")
    configured = [e for e in events if e.get("detail", {}).get("webhook_url")]
    assert configured and configured[0]["detail"]["webhook_url"] == shown
