"""How a record becomes a dict (``model_dump``): made once per class, as dataclasses
make ``__init__``.

`list --json` dumps every session row, and more rows each time the fleet grows. Looping
over ``dataclasses.fields`` (a tuple built on each call) and sending every value through
the generic conversion cost ~13 µs a row (now ~6); a record class's dump is instead one dict
display made from its field names on its first dump, that keeps a plain value (a str, a
number, a bool, None; in python mode a datetime too) as it is and sends only the others
(nested records, lists, dicts, enums, json datetimes) through :func:`dump_value`. The
output is the same: tests/test_record_dump.py holds it against the loop it replaced.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Literal

Mode = Literal["python", "json"]
Dumper = Callable[[Any], dict[str, Any]]


def iso(value: datetime) -> str:
    """A datetime as JSON, the way pydantic writes it (`Z` for UTC)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


AS_IS = frozenset({str, int, float, bool, type(None)})
"""Types whose values a dump keeps as they are in either mode, checked by exact type (a
str enum or an int subclass goes through :func:`dump_value`)."""
AS_IS_PYTHON = AS_IS | {datetime}


def dump_value(value: Any, json: bool) -> Any:
    """A field's value as a dump holds it: records as dicts, lists and tuples as new
    lists, dicts as new dicts, and in ``json`` mode datetimes as ISO text and enums as
    their values."""
    if value.__class__ in AS_IS:
        return value
    if isinstance(value, Dumps):
        return value.model_dump(mode="json" if json else "python")
    if isinstance(value, list | tuple):
        return [dump_value(v, json) for v in value]
    if isinstance(value, dict):
        return {k: dump_value(v, json) for k, v in value.items()}
    if json:
        if isinstance(value, datetime):
            return iso(value)
        if isinstance(value, enum.Enum):
            return value.value
    return value


def make_dumper(names: tuple[str, ...], json: bool) -> Dumper:
    """The dump of a record whose dumped fields are ``names`` (in order): one dict
    display, each value kept as it is when its type is plain, else converted."""
    if json:  # an exact datetime is neither a record nor a container: ISO text
        convert = (
            "v if (c := (v := self.{0}).__class__) in AS_IS else I(v) if c is DT else D(v, True)"
        )
    else:
        convert = "v if (v := self.{0}).__class__ in AS_IS_PYTHON else D(v, False)"
    items = "".join(f"        {name!r}: {convert.format(name)},\n" for name in names)
    source = f"def dump(self):\n    return {{\n{items}    }}\n"
    scope: dict[str, Any] = {
        "AS_IS": AS_IS,
        "AS_IS_PYTHON": AS_IS_PYTHON,
        "DT": datetime,
        "I": iso,
        "D": dump_value,
    }
    exec(source, scope)  # noqa: S102 - made of a dataclass's field names only
    dumper: Dumper = scope["dump"]
    return dumper


class Dumps:
    """``model_dump`` for a dataclass (Record's base)."""

    _dumped_names: ClassVar[tuple[str, ...]]
    _dumpers: ClassVar[tuple[Dumper, Dumper]]

    @classmethod
    def _dumped(cls) -> tuple[str, ...]:
        """The names of the fields a dump holds (all but ``EXCLUDE`` ones), in order."""
        own: tuple[str, ...] | None = cls.__dict__.get("_dumped_names")
        if own is None:
            own = tuple(
                f.name
                for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                if not f.metadata.get("exclude")
            )
            cls._dumped_names = own
        return own

    @classmethod
    def _make_dumpers(cls) -> tuple[Dumper, Dumper]:
        """The class's python and json dumps, made on its first dump."""
        names = cls._dumped()
        own = (make_dumper(names, json=False), make_dumper(names, json=True))
        cls._dumpers = own
        return own

    def model_dump(
        self,
        *,
        mode: Mode = "python",
        include: set[str] | frozenset[str] | None = None,
        exclude: set[str] | frozenset[str] | None = None,
        exclude_none: bool = False,
    ) -> dict[str, Any]:
        """The record as a dict: nested records as dicts, and in ``json`` mode datetimes
        as ISO strings and enums as their values (what pydantic's dump gives)."""
        json = mode == "json"
        if include is None and exclude is None and not exclude_none:
            dumpers = type(self).__dict__.get("_dumpers") or type(self)._make_dumpers()
            return dumpers[json](self)
        out: dict[str, Any] = {}
        for name in type(self)._dumped():
            if include is not None and name not in include:
                continue
            if exclude is not None and name in exclude:
                continue
            value = getattr(self, name)
            if exclude_none and value is None:
                continue
            out[name] = dump_value(value, json)
        return out
