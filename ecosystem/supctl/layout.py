"""The rendered config's layout, kept in the state dir, so that a change of sessions
does not run jinja.

A config is the header, one section per program (the template's `for` loop), and
what follows the loop; a section differs from another only in its program's fields.
jinja renders the template once with placeholder fields (and an empty list, to find
where the sections go); afterwards the config is the header, each program's section
with its values put back as the template puts them (through ``sv`` or as they are),
and the tail: for 200 programs ~2 ms instead of importing jinja and compiling the
template (~30 ms, most of a create at N=0) and running the loop (~25 ms more).

A layout is used only after it reproduced, byte for byte, what jinja renders for two
programs whose values hold ``%`` and non-ASCII characters; a template it cannot
reproduce (a field filtered some other way) keeps being rendered by jinja. Its key is
a digest of the template and of every value but the programs (the header holds the
password: the file is 0600, as the config is).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ecosystem.errors import StateDirError
from ecosystem.paths import write_private

Render = Callable[[Mapping[str, Any], Sequence[Any]], str]
"""jinja's rendering of the template for these values and programs."""

VERSION = 1
_MARK = "zvlayout-{}-mark"


@dataclasses.dataclass(frozen=True)
class Layout:
    head: str
    section: str
    """One program's section, each field as its marker."""
    tail: str
    fields: dict[str, bool]
    """The fields a section shows, and whether the template escapes them (``sv``)."""

    def assemble(self, programs: Sequence[Any], sv: Callable[[object], str]) -> str:
        markers = {_MARK.format(f): f for f in self.fields}
        if not markers:
            return self.head + self.section * len(programs) + self.tail
        # literal, field, literal, field, …, literal
        pieces = re.split("(" + "|".join(re.escape(m) for m in markers) + ")", self.section)
        shown = [(markers[m], self.fields[markers[m]]) for m in pieces[1::2]]
        literals = pieces[0::2]
        parts = [self.head]
        for p in programs:
            parts.append(literals[0])
            for (field, escaped), literal in zip(shown, literals[1:], strict=True):
                value = getattr(p, field)
                parts.append(sv(value) if escaped else str(value))
                parts.append(literal)
        parts.append(self.tail)
        return "".join(parts)


def key(template: str, values: Mapping[str, Any]) -> str:
    text = json.dumps([VERSION, template, sorted((k, str(v)) for k, v in values.items())])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def render(
    cache: Path,
    template: str,
    values: Mapping[str, Any],
    programs: Sequence[Any],
    fields: Sequence[str],
    jinja: Render,
    sv: Callable[[object], str],
) -> str:
    """The config for ``values`` and ``programs``, by the layout kept in ``cache``
    when it is this template's and these values', else by ``jinja`` (keeping the
    layout for the next time when it reproduces jinja's text). ``fields``: the names
    of the attributes a program has (and a section may show)."""
    wanted = key(template, values)
    found = load(cache, wanted)
    if found is None:
        found = learn(values, fields, jinja, sv)
        if found is None:
            return jinja(values, programs)
        save(cache, wanted, found)
    return found.assemble(programs, sv)


def learn(
    values: Mapping[str, Any], fields: Sequence[str], jinja: Render, sv: Callable[[object], str]
) -> Layout | None:
    """The layout of the template for ``values``, or None when it cannot be one."""
    marks = SimpleNamespace(**{f: _MARK.format(f) for f in fields})
    empty, one = jinja(values, []), jinja(values, [marks])
    # empty = H + T and one = H + S + T: any cut inside their common start gives a
    # head, a section and a tail that repeat the same way (the section rotated)
    cut = _common_prefix(empty, one)
    head, tail = empty[:cut], empty[cut:]
    if len(one) < len(empty) or not one.endswith(tail):
        return None
    section = one[len(head) : len(one) - len(tail)]
    shown: dict[str, bool] = {}
    for f in fields:
        mark = _MARK.format(f)
        if mark not in section:
            continue
        probe = jinja(values, [SimpleNamespace(**{**vars(marks), f: mark + "%"})])
        escaped, raw = probe.count(mark + "%%"), probe.count(mark + "%")
        if escaped not in (0, raw):
            return None  # shown escaped and not: not a layout
        shown[f] = escaped > 0
    layout = Layout(head, section, tail, shown)
    return layout if _reproduces(layout, values, fields, jinja, sv) else None


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _reproduces(
    layout: Layout,
    values: Mapping[str, Any],
    fields: Sequence[str],
    jinja: Render,
    sv: Callable[[object], str],
) -> bool:
    samples = [SimpleNamespace(**{f: f"{f}-{i}-100% é/{i}" for f in fields}) for i in range(1, 3)]
    try:
        return layout.assemble(samples, sv) == jinja(values, samples)
    except Exception:  # a value sv refuses: jinja would refuse it too
        return False


def load(cache: Path, wanted: str) -> Layout | None:
    try:
        data = json.loads(cache.read_text("utf-8"))
        if data.get("key") != wanted:
            return None
        return Layout(data["head"], data["section"], data["tail"], dict(data["fields"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def save(cache: Path, wanted: str, layout: Layout) -> None:
    data = {"key": wanted, **dataclasses.asdict(layout)}
    with contextlib.suppress(StateDirError):  # a cache: the next render learns it again
        write_private(cache, json.dumps(data))
