"""Door results and arguments to JSON and back, from the methods' own type hints.

Every Orchestrator method is annotated; a value crosses the wire as what pydantic makes
of it for that annotation (dataclasses, pydantic models, enums, datetimes, mappings), and
comes back as the same type on the other side. No class keeps a hand-written pair of
converters that could drift from its fields.
"""

from __future__ import annotations

import collections.abc
import functools
import importlib
import inspect
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import TypeAdapter


@functools.cache
def _adapter(tp: Any) -> TypeAdapter[Any]:
    from pydantic import TypeAdapter  # only a call that crosses to another host needs it

    return TypeAdapter(tp)


def encode(value: Any, tp: Any) -> Any:
    """``value`` (of type ``tp``) as plain JSON data."""
    return _adapter(tp).dump_python(value, mode="json")


def decode(data: Any, tp: Any) -> Any:
    """JSON data back into a ``tp``."""
    return _adapter(tp).validate_python(data)


LAZY_TYPES = {
    "Plan": ("ecosystem.declare_plan", "Plan"),
    "AskKey": ("ecosystem.declare_hosts", "AskKey"),
    "Confirm": ("ecosystem.declare_hosts", "Confirm"),
    "Check": ("ecosystem.doctor", "Check"),
    "ApplyResult": ("ecosystem.supctl.apply", "ApplyResult"),
}
"""Types door methods name that their modules import only for type checking, so that
commands which never call those methods do not import them (tests/test_layering.py);
tests/test_codec.py resolves every door method's types, so a missing one fails there."""


@functools.cache
def hints(method: Callable[..., Any]) -> dict[str, Any]:
    """The resolved annotations of a method (``from __future__ import annotations``
    leaves them as strings)."""
    try:
        return typing.get_type_hints(method)
    except NameError:
        # one of LAZY_TYPES: imported now, as the call that needs it will use it anyway
        lazy = {
            name: getattr(importlib.import_module(module), attr)
            for name, (module, attr) in LAZY_TYPES.items()
        }
        return typing.get_type_hints(method, localns=lazy)


def stream_item(tp: Any) -> Any | None:
    """The item type when ``tp`` is an Iterator[X] (a streaming method), else None."""
    if typing.get_origin(tp) in (collections.abc.Iterator, collections.abc.Generator):
        return typing.get_args(tp)[0]
    return None


def encode_params(
    method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """A call's arguments (``self`` left out) as JSON data, by parameter name."""
    bound = inspect.signature(method).bind(None, *args, **kwargs)
    types = hints(method)
    return {
        name: encode(value, types.get(name, Any))
        for name, value in bound.arguments.items()
        if name != "self"
    }


def decode_params(method: Callable[..., Any], params: dict[str, Any]) -> dict[str, Any]:
    types = hints(method)
    accepted = inspect.signature(method).parameters
    unknown = [p for p in params if p not in accepted or p == "self"]
    if unknown:
        raise TypeError(f"unexpected parameter(s) {', '.join(sorted(unknown))}")
    return {name: decode(value, types.get(name, Any)) for name, value in params.items()}
