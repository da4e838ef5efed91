"""How a setting's text becomes a value: the few types zapvisor's settings use, their
bounds, and errors that name the variable.

Plain Python, no pydantic: every runner builds its settings at start, and pydantic's
import and model building were most of a runner's start and a third of its memory.
The rules and the messages are pydantic's lax mode for the same types (so a value that
was accepted still is, and an error reads as it did): integers and numbers from text or
numbers, booleans from the usual words, bounds checked after the conversion, all the
fields checked and every error kept (the health monitor drops each bad variable).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

_NOT = {
    "int": "Input should be a valid integer",
    "float": "Input should be a valid number",
    "bool": "Input should be a valid boolean",
}
_UNPARSED = {
    "int": ", unable to parse string as an integer",
    "float": ", unable to parse string as a number",
}
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


class Secret:
    """A value never shown: str() and repr() mask it; get_secret_value() gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __str__(self) -> str:
        return "**********" if self._value else ""

    def __repr__(self) -> str:
        return f"Secret('{self}')"

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


Check = Callable[[Any], Any]
T = TypeVar("T")


def setting(
    var: str,
    default: Any = None,
    *,
    also: tuple[str, ...] = (),
    factory: Callable[[], Any] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    check: Check | None = None,
) -> Any:
    """A Settings field read from the variable ``var`` (or one of ``also``): its default
    (or ``factory``), bounds and a ``check`` run on a given value (not on the default),
    which returns the value to keep or raises ValueError saying what is wrong."""
    meta = {"vars": (var, *also), "ge": ge, "gt": gt, "le": le, "check": check}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class Problem:
    field: str
    var: str
    message: str
    value: Any


class SettingsInvalid(ValueError):
    """Every value that failed, in the fields' order."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.var}: {p.message}" for p in problems))
        self.problems = problems

    def describe(self) -> str:
        """The first problem in one line, without the value of a key or a URL."""
        p = self.problems[0]
        hidden = "key" in p.var.lower() or "url" in p.var.lower()
        shown = "" if hidden or isinstance(p.value, dict) else f" (got {p.value!r})"
        return f"invalid setting {p.var}: {p.message}{shown}"


def to_int(value: Any) -> int:
    if isinstance(value, int):
        return int(value)  # True is 1, as in pydantic's lax mode
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError("Input should be a valid integer, got a number with a fractional part")
    if isinstance(value, str) and value.isascii():
        text = value.strip()
        whole, dot, fraction = text.partition(".")
        if dot and whole and not fraction.strip("0"):
            text = whole  # "3.0"
        try:
            return int(text)
        except ValueError:
            pass
    raise ValueError(_NOT["int"] + (_UNPARSED["int"] if isinstance(value, str) else ""))


def to_float(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.isascii():
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise ValueError(_NOT["float"] + (_UNPARSED["float"] if isinstance(value, str) else ""))


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise ValueError(
        _NOT["bool"] + (", unable to interpret input" if isinstance(value, str | int) else "")
    )


def _str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ValueError("Input should be a valid string")


def _path(value: Any) -> Path:
    if isinstance(value, str | Path):
        return Path(value)
    raise ValueError("Input is not a valid path")


def _secret(value: Any) -> Secret:
    if isinstance(value, Secret):
        return value
    return Secret(_str(value))


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "int": to_int,
    "float": to_float,
    "bool": to_bool,
    "str": _str,
    "Path": _path,
    "Secret": _secret,
}


def _bounded(value: float, meta: Mapping[str, Any]) -> None:
    if meta["le"] is not None and not value <= meta["le"]:
        raise ValueError(f"Input should be less than or equal to {meta['le']}")
    if meta["gt"] is not None and not value > meta["gt"]:
        raise ValueError(f"Input should be greater than {meta['gt']}")
    if meta["ge"] is not None and not value >= meta["ge"]:
        raise ValueError(f"Input should be greater than or equal to {meta['ge']}")


def _convert(f: dataclasses.Field[Any], value: Any) -> Any:
    kinds = [k.strip() for k in str(f.type).split("|")]
    if value is None and "None" in kinds:
        return None
    out = _CONVERT[kinds[0]](value)
    if isinstance(out, int | float) and not isinstance(out, bool):
        _bounded(out, f.metadata)
    check: Check | None = f.metadata["check"]
    return check(out) if check is not None else out


def _given(f: dataclasses.Field[Any], values: Mapping[str, Any]) -> tuple[str, Any] | None:
    """(variable, value) of the first of the field's variables (then its own name)
    that ``values`` holds, as in `.env`: names matched exactly."""
    for var in (*f.metadata["vars"], f.name):
        if var in values:
            return var, values[var]
    return None


def build(cls: type[T], values: Mapping[str, Any]) -> T:
    """``cls`` (a dataclass of ``setting`` fields) from variables; keys it does not know
    are ignored. Raises SettingsInvalid naming every bad one."""
    kept: dict[str, Any] = {}
    problems: list[Problem] = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        given = _given(f, values)
        if given is None:
            continue
        try:
            kept[f.name] = _convert(f, given[1])
        except ValueError as exc:
            var = given[0] if given[0] != f.name else f.metadata["vars"][0]
            problems.append(Problem(f.name, var, str(exc), given[1]))
    if problems:
        raise SettingsInvalid(problems)
    return cls(**kept)


def setting_vars(cls: type[Any]) -> dict[str, tuple[str, ...]]:
    """Field name → the variables that set it, the first one first."""
    return {f.name: f.metadata["vars"] for f in dataclasses.fields(cls)}


def env_names(cls: type[Any]) -> dict[str, str]:
    """Field name → the environment variable that sets it."""
    return {name: names[0] for name, names in setting_vars(cls).items()}
