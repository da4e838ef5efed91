"""JSON an operator or an API caller hands in, checked before it goes anywhere.

Python's `json` accepts what neither PostgreSQL's JSONB nor a person means: `NaN`,
`Infinity` and numbers that overflow to infinity (`1e999`), strings holding lone
surrogates (undecodable bytes from a command line, or a `\\udcff` escape), and
nesting deep enough to exhaust the interpreter's recursion. Each is refused here with
a sentence naming the field, so it never becomes a traceback or a store error.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64
"""Deepest nesting of objects and arrays accepted (configs are a few levels deep)."""


class BadJSON(ValueError):
    """Not acceptable JSON; the message names the field (``what``) and says why
    (``reason``, the message without the field, for a form that shows it by the field)."""

    def __init__(self, reason: str, what: str = "") -> None:
        super().__init__(f"{what} {reason}" if what else reason)
        self.reason = reason


def _refuse_constant(name: str) -> Any:
    raise BadJSON(f"holds {name}, which is not a JSON number (use a finite number)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadJSON(f"holds {text[:20]}, out of range for a JSON number")
    return value


def loads(text: str | bytes, what: str) -> Any:
    """Parse ``text`` strictly (see the module's docstring); BadJSON names ``what``."""
    if isinstance(text, str):
        check_text(text, what)
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except BadJSON as exc:
        raise BadJSON(exc.reason, what) from None
    except RecursionError:
        raise BadJSON(f"is nested deeper than {MAX_DEPTH} levels", what) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadJSON(f"is not valid JSON: {exc}", what) from None
    check(value, what)
    return value


def check(value: Any, what: str) -> None:
    """Refuse a parsed value with non-finite numbers, lone surrogates or nesting over
    MAX_DEPTH (iteratively: the value may be as deep as the parser allowed)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise BadJSON(f"is nested deeper than {MAX_DEPTH} levels", what)
            if isinstance(item, dict):
                for key, inner in item.items():
                    if not isinstance(key, str):
                        raise BadJSON("has an object key that is not a string", what)
                    check_text(key, what)
                    stack.append((inner, depth + 1))
            else:
                stack.extend((inner, depth + 1) for inner in item)
        elif isinstance(item, str):
            check_text(item, what)
        elif isinstance(item, float) and not math.isfinite(item):
            raise BadJSON(f"holds {item}, which is not a JSON number (use a finite number)", what)


def check_text(text: str, what: str) -> None:
    """Refuse text that cannot be written as UTF-8: lone surrogates, which is what
    undecodable bytes on a command line become."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadJSON(
            "holds bytes that are not valid UTF-8 (or a lone \\ud800-\\udfff escape)", what
        ) from None
