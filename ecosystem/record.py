"""Records: the rows the stores read and the processes exchange, without pydantic.

A runner reads its session row, keeps its lease, writes its outbox and reports its
status through these. As pydantic models they cost every runner ~13 MB of its ~26 MB and
~80 ms of its start (pydantic itself, its schema builder, each model's validator), for
rows whose shape the store already guarantees. A record is a kw-only stdlib dataclass
that speaks pydantic's method names (``model_validate``, ``model_dump``,
``model_copy``, ``model_fields``), so callers do not know which kind they hold, and
pydantic itself (the fleet's codec, a pydantic model with a record field) validates and
dumps it through the same code.

Validation is what a row from SQLite, PostgreSQL or JSON needs: ISO strings and numbers
to datetimes, values to enums, 0/1 to booleans, numeric strings to numbers, nested
records and lists of them. Operator input (a new session, a new host, bot settings, API
bodies) stays pydantic, where its field validators and messages live.

    @record
    class Row(Record):
        name: str
        at: datetime | None = None
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self, TypeVar, dataclass_transform

from ecosystem.record_dump import Dumps
from ecosystem.record_dump import Mode as Mode
from ecosystem.record_dump import iso as iso  # defined there: see record_dump.py
from ecosystem.settings_check import to_bool, to_float, to_int

Coerce = Callable[[Any], Any]


def utcnow() -> datetime:
    return datetime.now(UTC)


class RecordError(ValueError):
    """A value that does not fit a record's field (a ValueError, as pydantic's is).

    ``errors()`` answers as pydantic's ValidationError does (``loc``, ``msg``), so a
    caller that shows the first problem of either kind reads both the same way. The
    value itself is never in the message: it may be a URL with a token in it."""

    def __init__(self, msg: str, loc: tuple[str, ...] = ()) -> None:
        super().__init__(f"{'.'.join(loc)}: {msg}" if loc else msg)
        self.msg = msg
        self.loc = loc

    def errors(self) -> list[dict[str, Any]]:
        return [{"loc": self.loc, "msg": self.msg, "type": "value_error"}]

    def at(self, name: str) -> RecordError:
        """The same problem, found inside field ``name``."""
        return RecordError(self.msg, (name, *self.loc))


EXCLUDE: Mapping[str, Any] = types.MappingProxyType({"exclude": True})
"""A field's ``metadata`` that keeps it out of ``model_dump`` (and so off the wire, out
of `--json` and out of the stores' generic writes): ``field(metadata=EXCLUDE)``."""


_WORDS = {str: "string", list: "list", dict: "dictionary", datetime: "datetime"}


def _fail(tp: Any, value: Any) -> RecordError:
    word = _WORDS.get(tp) or getattr(tp, "__name__", str(tp))
    return RecordError(f"Input should be a valid {word}")


def _str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _fail(str, value)


def _checked(check: Callable[[Any], Any]) -> Coerce:
    """A settings check (pydantic's rules and words for numbers and booleans) raising
    RecordError."""

    def coerce(value: Any) -> Any:
        try:
            return check(value)
        except ValueError as exc:
            raise RecordError(str(exc)) from None

    return coerce


def to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if abs(value) > 2e10 else value  # milliseconds, as pydantic
        return datetime.fromtimestamp(seconds, UTC)
    raise _fail(datetime, value)


_SIMPLE: dict[Any, Coerce] = {
    str: _str,
    int: _checked(to_int),
    float: _checked(to_float),
    bool: _checked(to_bool),
    datetime: to_datetime,
}


def _optional(inner: Coerce) -> Coerce:
    return lambda value: None if value is None else inner(value)


def _either(tp: Any, options: list[Coerce]) -> Coerce:
    def coerce(value: Any) -> Any:
        for option in options:
            try:
                return option(value)
            except RecordError:
                continue
        raise _fail(tp, value)

    return coerce


def _list(item: Coerce) -> Coerce:
    def coerce(value: Any) -> list[Any]:
        if isinstance(value, list | tuple):
            return [item(v) for v in value]
        raise _fail(list, value)

    return coerce


def _dict(item: Coerce | None) -> Coerce:
    def coerce(value: Any) -> dict[Any, Any]:
        if isinstance(value, Mapping):
            return dict(value) if item is None else {k: item(v) for k, v in value.items()}
        raise _fail(dict, value)

    return coerce


def _enum(tp: type[enum.Enum]) -> Coerce:
    def coerce(value: Any) -> Any:
        if isinstance(value, tp):
            return value
        try:
            return tp(value)
        except ValueError:
            choices = [repr(m.value) for m in tp]
            shown = (
                ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]
            )
            raise RecordError(f"Input should be {shown}") from None

    return coerce


def _literal(values: tuple[Any, ...]) -> Coerce:
    def coerce(value: Any) -> Any:
        if value in values:
            return value
        raise RecordError(f"Input should be {' or '.join(map(repr, values))}")

    return coerce


def coercer(tp: Any) -> Coerce:
    """How a value becomes a ``tp`` (raising RecordError when it cannot)."""
    if tp is Any or tp is object:
        return lambda value: value
    simple = _SIMPLE.get(tp)
    if simple is not None:
        return simple
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        inner = coercer(rest[0]) if len(rest) == 1 else _either(tp, [coercer(a) for a in rest])
        return _optional(inner) if len(rest) < len(args) else inner
    if origin is Literal:
        return _literal(args)
    if origin is list:
        return _list(coercer(args[0]) if args else coercer(Any))
    if origin is dict or tp is dict:
        value_type = args[1] if len(args) == 2 else Any
        return _dict(None if value_type is Any else coercer(value_type))
    if isinstance(tp, type) and issubclass(tp, Record):
        return tp.model_validate
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum(tp)
    if tp is list:
        return _list(coercer(Any))
    raise TypeError(f"records do not know how to validate {tp!r}")


class _Fields:
    """``Cls.model_fields``: the record's fields by name, in order."""

    def __get__(self, obj: object, owner: type) -> dict[str, dataclasses.Field[Any]]:
        return {f.name: f for f in dataclasses.fields(owner)}


R = TypeVar("R", bound=type)


@dataclass_transform(kw_only_default=True, field_specifiers=(dataclasses.field,))
def record(cls: R) -> R:
    """A Record subclass made a kw-only dataclass. Its ``__eq__`` and ``__repr__`` are
    Record's own: generating them for each class was two thirds of the cost of making
    it (~0.6 ms a class, paid at every process start)."""
    return dataclasses.dataclass(kw_only=True, repr=False, eq=False)(cls)  # type: ignore[return-value]


class Record(Dumps):
    """The methods every record has; subclasses are made with ``@record``."""

    __hash__ = None  # type: ignore[assignment]  # mutable, as pydantic's models are

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(
            getattr(self, f.name) == getattr(other, f.name)
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        )

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if f.repr
        )
        return f"{type(self).__name__}({shown})"

    model_fields: ClassVar[_Fields] = _Fields()
    forbid_extra: ClassVar[bool] = False
    """Whether ``model_validate`` refuses keys that are not fields (operator input)."""
    _coerce: ClassVar[dict[str, tuple[Coerce, bool]]]

    @classmethod
    def _coercers(cls) -> dict[str, tuple[Coerce, bool]]:
        """Each init field's coercer and whether it is required; built on first use,
        when the names its annotations use are all defined."""
        own = cls.__dict__.get("_coerce")
        if own is None:
            hints = typing.get_type_hints(cls)
            own = {
                f.name: (
                    coercer(hints[f.name]),
                    f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
                )
                for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                if f.init
            }
            cls._coerce = own
        return own

    def __post_init__(self) -> None:
        """Every value made to fit its field, as a pydantic model's constructor does: a
        row's text times become datetimes, its 0/1 booleans, its strings enums."""
        for name, (coerce, _) in type(self)._coercers().items():
            value = getattr(self, name)
            try:
                fitted = coerce(value)
            except RecordError as exc:
                raise exc.at(name) from None
            if fitted is not value:
                object.__setattr__(self, name, fitted)

    def _check(self, name: str, check: Callable[[Any], Any]) -> None:
        """Field ``name`` through ``check`` (which returns the value to keep or raises
        ValueError saying what is wrong), for records that check what an operator wrote;
        other errors (an InvalidName) pass through as they are."""
        try:
            value = check(getattr(self, name))
        except RecordError as exc:
            raise exc.at(name) from None
        except ValueError as exc:
            raise RecordError(str(exc), (name,)) from None
        object.__setattr__(self, name, value)

    @classmethod
    def model_validate(cls, obj: Any) -> Self:
        """``obj`` (a mapping, or already one of these) as this record: unknown keys are
        ignored, missing fields take their defaults."""
        if isinstance(obj, cls):
            return obj
        if not isinstance(obj, Mapping):
            raise RecordError(f"{cls.__name__}: expected a mapping, got {type(obj).__name__}")
        fields = cls._coercers()
        missing = [n for n, (_, required) in fields.items() if required and n not in obj]
        if missing:
            raise RecordError("Field required", (missing[0],))
        if cls.forbid_extra:
            extra = [k for k in obj if k not in fields]
            if extra:
                raise RecordError("Extra inputs are not permitted", (str(extra[0]),))
        return cls(**{k: v for k, v in obj.items() if k in fields})

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with ``update`` applied as given (not validated, as pydantic's)."""
        base = copy.deepcopy(self) if deep else copy.copy(self)
        for name, value in (update or {}).items():
            object.__setattr__(base, name, value)
        return base

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """How pydantic validates and dumps a record (the fleet's codec, a pydantic
        model with a record field): through the record's own two methods."""
        from pydantic_core import core_schema

        def dump(value: Record, info: Any) -> dict[str, Any]:
            return value.model_dump(mode="json" if info.mode_is_json() else "python")

        return core_schema.no_info_plain_validator_function(
            source.model_validate,
            serialization=core_schema.plain_serializer_function_ser_schema(dump, info_arg=True),
        )
