"""How the postgres and supabase stores call the schema's SQL functions, and how values
cross: one ``call_function`` each store implements (psycopg or PostgREST RPC), so the
webhook outbox (pg_outbox.py) and the health records (pg_health.py) are written once
for both stores, as their SQL functions are written once for both."""

from __future__ import annotations

import abc
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from ecosystem.record import Record, to_datetime

Returns = Literal["rows", "value", "nothing"]
M = TypeVar("M", bound=Record)


def ms(value: datetime | None) -> str | None:
    """A time as the functions take it: ISO 8601 cut to milliseconds, as the sqlite store
    keeps times, so a value reads back the same from every store."""
    return None if value is None else value.isoformat(timespec="milliseconds")


def utc(value: Any) -> Any:
    """Times (also inside lists) in UTC: a server whose TimeZone is not UTC answers in
    local time, and PostgREST answers in text."""
    if isinstance(value, datetime) and value.utcoffset():
        return value.astimezone(UTC)
    if isinstance(value, list):
        return [utc(v) for v in value]
    return value


def parse_time(value: Any) -> datetime | None:
    """A time a function returned (a datetime from psycopg, text from PostgREST)."""
    return None if value is None else utc(to_datetime(value))


def in_utc(model: M) -> M:
    for field in type(model).model_fields:
        value = getattr(model, field)
        fixed = utc(value)
        if fixed is not value:
            setattr(model, field, fixed)
    return model


class FunctionCaller(abc.ABC):
    """What the postgres and supabase stores give pg_outbox and pg_health."""

    @abc.abstractmethod
    def call_function(
        self,
        function: str,
        args: dict[str, Any],
        /,
        *,
        returns: Returns,
        write: bool,
        **context: Any,
    ) -> Any:
        """Call the SQL function ``function`` with named ``args`` (str, int, bool, None, or a
        dict/list for a jsonb argument; times as :func:`ms` strings). ``returns`` "rows":
        a list of dicts (a set-returning function); "value": the scalar result;
        "nothing": None. ``write`` says whether a lost connection may be retried
        (never for a write). ``context`` fills in the contract's error messages."""
