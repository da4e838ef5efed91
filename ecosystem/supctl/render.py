"""Render supervisord's whole config from `supervisord.conf.j2` and check it with
supervisor's own parser before it may replace the live file."""

from __future__ import annotations

import dataclasses
import io
import re
import resource
import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ecosystem.errors import SupervisorError
from ecosystem.names import program_name
from ecosystem.paths import StatePaths
from ecosystem.states import RUNNER_RECYCLE_EXIT
from ecosystem.supctl import layout, shapes

_TEMPLATE_NAME = "supervisord.conf.j2"
# configparser treats whitespace followed by ';' or '#' as the start of a comment.
_INLINE_COMMENT = re.compile(r"\s[;#]")


class RenderError(SupervisorError):
    """A value cannot be written into supervisord's config safely."""


def sv(value: object) -> str:
    """Make ``value`` safe as a supervisord config value, or refuse it.

    ``%`` starts an expansion (one bad ``%`` anywhere fails the whole reread), a
    newline would start a new key, and `` ;``/`` #`` would silently cut the value.
    """
    text = str(value)
    if any(ord(c) < 32 for c in text):
        raise RenderError(f"cannot put {text!r} in supervisord's config: control characters")
    if _INLINE_COMMENT.search(text):
        raise RenderError(
            f"cannot put {text!r} in supervisord's config: supervisord would cut it at the "
            "' ;' or ' #'; use a path without them"
        )
    if text != text.strip():
        raise RenderError(f"cannot put {text!r} in supervisord's config: edge whitespace")
    return text.replace("%", "%%")


@dataclass(frozen=True)
class ProgramSpec:
    """One session's program entry."""

    name: str
    port: int
    command: str
    stdout_log: Path
    stderr_log: Path

    @property
    def program(self) -> str:
        return program_name(self.name)


MONITOR_PROGRAM = "zapvisor-health"
"""The health monitor's event listener (never a session's name: those are `wa-*`)."""


@dataclass(frozen=True)
class MonitorSpec:
    """The health monitor's entry: it depends on the state dir only, never on the
    sessions, so `reloadConfig` after a session change leaves it running."""

    command: str
    stderr_log: Path
    program: str = MONITOR_PROGRAM


def monitor_spec(paths: StatePaths, python: str | None = None) -> MonitorSpec:
    exe = python or sys.executable
    return MonitorSpec(
        command=shlex.join([exe, "-m", "ecosystem.health", "--home", str(paths.home)]),
        stderr_log=paths.logs / f"{MONITOR_PROGRAM}.log",
    )


def runner_command(python: str, home: Path, name: str, port: int) -> str:
    return shlex.join(
        [python, "-m", "runner", "--home", str(home), "--session", name, "--port", str(port)]
    )


def program_specs(
    paths: StatePaths, sessions: Iterable[tuple[str, int]], python: str | None = None
) -> list[ProgramSpec]:
    exe = python or sys.executable
    return [
        ProgramSpec(
            name=name,
            port=port,
            command=runner_command(exe, paths.home, name, port),
            stdout_log=paths.stdout_log(name),
            stderr_log=paths.stderr_log(name),
        )
        for name, port in sorted(sessions)
    ]


def _template_text() -> str:
    """The template shipped in the wheel (beside this file), or the repository's when
    run from a checkout. Read on every render (layout.py keys on it): as a file where
    it is one, importlib.resources' lookup (~3 ms) only for an install that is not."""
    here = Path(__file__).resolve()
    for path in (here.with_name(_TEMPLATE_NAME), here.parents[2] / _TEMPLATE_NAME):
        if path.is_file():
            return path.read_text("utf-8")
    return resources.files("ecosystem.supctl").joinpath(_TEMPLATE_NAME).read_text("utf-8")


def _minfds(max_sessions: int) -> int:
    # ~6 descriptors per program (3 pipes, 2 log files, slack) plus supervisord's own.
    wanted = max(1024, 8 * max_sessions + 256)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


def render(
    paths: StatePaths,
    *,
    username: str,
    password: str,
    programs: list[ProgramSpec],
    max_sessions: int,
    monitor: MonitorSpec | None = None,
    extra: dict[str, Any] | None = None,
    rpcext: bool = True,
    fork_runners: bool = False,
    cache: Path | None = None,
) -> str:
    """The config text. With a ``monitor``, restarting crashed runners is its job
    (backoff, parking), so supervisord's autorestart and start retries are off.
    ``rpcext``: with zapvisor's own RPC namespace (``apply.wants_rpcext`` decides),
    which ``fork_runners`` asks to start runners as forks of supervisord (forkspawn.py).
    ``cache``: where the config's layout is kept, so that the next render with the same
    template and values but other programs needs no jinja (layout.py)."""
    values = {
        "socket": paths.socket,
        "username": username,
        "password": password,
        "supervisord_log": paths.supervisord_log,
        "pidfile": paths.pidfile,
        "logdir": paths.logs,
        "home": paths.home,
        "minfds": _minfds(max_sessions),
        "monitor": monitor,
        "autorestart": "false" if monitor else "true",
        "startretries": 0 if monitor else 5,
        "recycle_exit": RUNNER_RECYCLE_EXIT,
        "rpcext": rpcext,
        "fork_runners": fork_runners,
        **(extra or {}),
    }
    if cache is None:
        return _jinja(values, programs)
    return layout.render(cache, _template_text(), values, programs, PROGRAM_FIELDS, _jinja, sv)


PROGRAM_FIELDS = (*(f.name for f in dataclasses.fields(ProgramSpec)), "program")
"""What the template may show of a program."""


def _jinja(values: Mapping[str, Any], programs: Sequence[Any]) -> str:
    import jinja2  # only when the layout is not kept yet

    # An INI file, not HTML: values are made safe by `sv`, not by HTML escaping.
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701
    )
    env.filters["sv"] = sv
    template = env.from_string(_template_text())
    return template.render(programs=programs, **values)


_SECTION_START = re.compile(r"^(?=\[)", re.MULTILINE)
_PROCESS_SECTION = re.compile(r"\[(?:program|eventlistener):([^\]]+)\]")


def _split(text: str) -> tuple[str, list[str], list[str]]:
    """(everything but the process sections, those sections, their names)."""
    header, sections, names = [], [], []
    for chunk in _SECTION_START.split(text):
        found = _PROCESS_SECTION.match(chunk)
        if found:
            sections.append(chunk)
            names.append(found.group(1))
        else:
            header.append(chunk)
    return "".join(header), sections, names


def process_names(text: str) -> list[str]:
    """The names of the program and event listener sections of ``text``."""
    return _split(text)[2]


def added_programs(live: str, text: str) -> tuple[str, list[str]] | None:
    """The ``[program:x]`` sections ``text`` holds beyond ``live`` and their names, when
    that is all that differs: the same header, every process section of ``live`` there
    as it is. None otherwise, or when nothing was added."""
    old_header, old_sections, old_names = _split(live)
    header, sections, names = _split(text)
    if not live or old_header.rstrip() != header.rstrip() or len(set(names)) != len(names):
        return None
    new = {n: s for n, s in zip(names, sections, strict=True)}
    for name, section in zip(old_names, old_sections, strict=True):
        if name not in new or new.pop(name).rstrip() != section.rstrip():
            return None
    if not new or not all(s.startswith("[program:") for s in new.values()):
        return None
    return "".join(new.values()), list(new)


def check(text: str, checked: str = "", known: set[str] | None = None) -> list[str]:
    """Parse ``text`` exactly as supervisord will; returns the program names.

    Only what was not parsed before is: ``checked`` is a config that passed (the live
    file: nothing else is ever written there), ``known`` the digests of headers and
    section shapes that passed (shapes.py), to which what passes now is added. When the
    header (everything but the process sections) passed, only the sections whose shape
    did not are parsed, with the header: a create parses nothing new, or one program
    instead of two hundred.

    Raises RenderError with supervisor's own complaint when it would be rejected.
    """
    header, sections, names = _split(text)
    head = shapes.digest(header)  # blank lines at its end depend on what follows
    passed = set(known or ())
    old: list[tuple[str, str]] = []
    if checked:
        old_header, old_sections, old_names = _split(checked)
        if old_header.rstrip() == header.rstrip():
            passed.add(head)
            old = list(zip(old_sections, old_names, strict=True))
    if head not in passed:
        found = _parse(text)
        digests = [shapes.section_digest(head, s, n) for s, n in zip(sections, names, strict=True)]
    else:
        # shapes only of the sections the live file does not hold as they are (a
        # create's one), and of the live file's only when those are not known yet
        same = {s.rstrip() for s, _ in old}
        fresh = [(s, n) for s, n in zip(sections, names, strict=True) if s.rstrip() not in same]
        shaped = {s: shapes.section_digest(head, s, n) for s, n in fresh}
        unknown = [s for s in shaped if shaped[s] not in passed]
        if unknown and old:
            passed.update(shapes.section_digest(head, s, n) for s, n in old)
            unknown = [s for s in unknown if shaped[s] not in passed]
        if unknown:
            _parse(header + "".join(unknown))
        found, digests = names, list(shaped.values())
    if known is not None:
        known.add(head)
        known.update(digests)
    return found


def _parse(text: str) -> list[str]:
    from supervisor.options import ServerOptions

    opts = ServerOptions()
    try:
        opts.read_config(io.StringIO(text))
    except (ValueError, KeyError) as exc:
        raise RenderError(f"supervisord would reject the rendered config: {exc}") from None
    return [
        proc.name
        for group in opts.configroot.supervisord.process_group_configs
        for proc in group.process_configs
    ]
