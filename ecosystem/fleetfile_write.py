"""Writing a fleet file (`zapvisor export`): the hosts and sessions as fleetfile.py
reads them back, so a plan of the file written changes nothing."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ecosystem.errors import InvalidValue
from ecosystem.fleet.records import HostRecord
from ecosystem.lease import AuthKind
from ecosystem.redact import redact_url


def dump(
    sessions: Sequence[Mapping[str, Any]],
    header: str,
    hosts: Sequence[HostRecord] = (),
    accepts: Mapping[str, bool] | None = None,
) -> tuple[str, list[str]]:
    """A fleet file declaring these hosts (``accepts``: accepts_failover of those with a
    heartbeat) and sessions (dicts with name, host, state, auth, failover and FIELDS);
    also the environment variables it refers to (webhook URLs that carry a secret are
    written as references, never as values)."""
    accepts = accepts or {}
    out = [f"# {line}" if line else "#" for line in header.splitlines()]
    refs: list[str] = []
    for h in hosts:
        out += ["", f"[hosts.{h.name}]", f"target = {_str(h.target)}"]
        out += [f"base_port = {h.base_port}", f"max_sessions = {h.max_sessions}"]
        if h.host_key:
            out.append(f"host_key = {_str(h.host_key)}")
        if h.identity_file:
            out.append(f"identity = {_str(h.identity_file)}")
        if h.name in accepts:
            out.append(f"accepts_failover = {_inline(accepts[h.name], h.name)}")
    for s in sessions:
        name = s["name"]
        out.append("")
        out.append(f"[sessions.{name}]")
        out.append(f"host = {_str(s['host'])}")
        out.append(f"connector = {_str(s['connector'])}")
        out.append(f"state = {_str(str(s['state']))}")
        if "auth" in s:
            out.append(f"auth = {_str(str(s['auth']))}")
            if s["auth"] == AuthKind.STORE:  # with local auth there is nothing to switch
                out.append(f"failover = {_inline(bool(s['failover']), name)}")
        if s["description"]:
            out.append(f"description = {_str(s['description'])}")
        url = s["webhook_url"]
        if url and redact_url(url) != url:
            var = "WEBHOOK_URL_" + name.upper().replace("-", "_")
            refs.append(var)
            out.append(f'webhook_url = {{ env = "{var}" }}  # it carries a secret')
        elif url:
            out.append(f"webhook_url = {_str(url)}")
        if s["webhook_events"] is not None:
            out.append(f"webhook_events = [{', '.join(_str(e) for e in s['webhook_events'])}]")
        for table in ("ai_config", "timing_config"):
            if s[table]:
                out.append(f"{table} = {_inline(s[table], f'{name}.{table}')}")
    return "\n".join(out) + "\n", refs


def _str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def _inline(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v, where) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{_str(str(k))} = {_inline(v, where)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    if value is None:
        raise InvalidValue(f"{where} holds a null, which TOML cannot write: remove it first")
    raise InvalidValue(f"{where} holds a {type(value).__name__}, which TOML cannot write")
