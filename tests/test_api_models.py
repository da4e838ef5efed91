"""The runner API's request models: what a body must hold, and the one-line 400 each
mistake gets. The same models generate the OpenAPI document (checked against a real
runner in test_session_api.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runner import api_models as m
from runner.http import HTTPError, Request
from runner.openapi import reply


def request(body: Any) -> Request:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Request("POST", "/x", {}, {}, raw)


def refusal(body: Any, model: type[m.Body]) -> str:
    with pytest.raises(HTTPError) as caught:
        m.parse(request(body), model)
    assert caught.value.status == 400
    return caught.value.message


def test_a_good_body_reads_as_the_model() -> None:
    sent = m.parse(request({"phone": "5511999999999", "message": "Olá", "extra": 1}), m.SendMessage)
    assert (sent.phone, sent.message, sent.isGroup) == ("5511999999999", "Olá", False)
    inbound = m.parse(request({"from": "5511", "body": "hi"}), m.SimInbound)
    assert inbound.sender == "5511" and inbound.name == ""
    assert m.parse(request(b""), m.SimDisconnect).kind == "network", "an empty body is {}"


@pytest.mark.parametrize(
    ("body", "model", "said"),
    [
        (b"{nope", m.SendMessage, "the body is not valid JSON"),
        ([1, 2], m.SendMessage, "the body must be a JSON object"),
        ({"phone": "1"}, m.SendMessage, "message is required"),
        ({"phone": "1", "message": 5}, m.SendMessage, "message must be a string"),
        ({"phone": "1", "message": "  "}, m.SendMessage, "message must not be empty"),
        (
            {"phone": "1", "message": "x" * (m.MAX_TEXT + 1)},
            m.SendMessage,
            f"message is {m.MAX_TEXT + 1} characters; at most {m.MAX_TEXT}",
        ),
        ({"phone": "1", "message": "x", "isGroup": "yes"}, m.SendMessage, "isGroup must be true"),
        (
            {"phone": "1", "imageUrl": "ftp://h/x"},
            m.SendImage,
            "imageUrl must be an http:// or https://",
        ),
        ({"phone": "1", "fileUrl": "http://h:99999/"}, m.SendFile, "fileUrl is not a valid URL"),
        (
            {"phone": "1", "fileUrl": "http://h/x", "fileName": "../etc"},
            m.SendFile,
            "fileName must be a plain file name",
        ),
        ({"seconds": "5"}, m.SimDisconnect, "seconds must be a number"),
        ({"seconds": True}, m.SimDisconnect, "seconds must be a number"),
        ({"seconds": 3601}, m.SimDisconnect, "seconds must be at most 3600"),
        ({"kind": "moon"}, m.SimDisconnect, "kind 'moon' is not one of"),
        ({"events": ["nope"]}, m.PutWebhook, "events.0 'nope' is not one of"),
        ({"url": 5}, m.PutWebhook, "url must be a string"),
    ],
)
def test_each_mistake_is_one_line_naming_the_field(
    body: Any, model: type[m.Body], said: str
) -> None:
    message = refusal(body, model)
    assert message.startswith(said), message
    assert "\n" not in message


def test_what_a_webhook_change_left_out_stays_unset() -> None:
    body = m.parse(request({"url": None}), m.PutWebhook)
    assert body.model_fields_set == {"url"} and body.url is None
    assert m.parse(request({}), m.PutWebhook).model_fields_set == set()


def test_answers_keep_the_fields_they_were_given_nulls_included() -> None:
    response = reply(m.QrCode(sessionId="a", status="waiting_scan", qrCode=None))  # type: ignore[arg-type]
    assert json.loads(response.body) == {"sessionId": "a", "status": "waiting_scan", "qrCode": None}
