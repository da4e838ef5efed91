"""What `zapvisor plan -f` shows and `apply -f` does: the steps between the fleet as it
is and as its file declares it, in the order apply makes them (hosts added first, so
sessions can go there; hosts removed last, once their sessions are gone)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SESSION = "session"
HOST = "host"


@dataclass
class Step:
    """One change the plan makes."""

    action: str
    """For a session: create, change, start, stop, restart, move or delete; for a
    host: create, change or remove."""
    name: str
    host: str
    """The host it is on (for a move: the host it goes to; for a host: itself)."""
    fields: list[str] = field(default_factory=list)
    """For a change: which fields, each `field: old → new` in ``detail``."""
    detail: list[str] = field(default_factory=list)
    kind: str = SESSION
    """session or host."""
    from_host: str | None = None
    """For a move: the host the session is on now."""
    refused: str | None = None
    """Why apply cannot make this step (it then refuses the whole plan, changing
    nothing); shown by plan."""
    at_line: int = 0
    """The line of the file it comes from (0: none, as for what prune deletes)."""

    def line(self) -> str:
        sign = {"create": "+", "delete": "-", "remove": "-", "change": "~", "move": ">"}
        what = f"host {self.name}" if self.kind == HOST else self.name
        if self.action == "move":
            where = f"from {self.from_host} to {self.host}"
        elif self.kind == HOST:
            where = ""
        else:
            where = f"(on {self.host})"
        text = f"{sign.get(self.action, '*')} {self.action} {what} {where}".rstrip()
        lines = [*self.detail, *([f"! apply refuses it: {self.refused}"] if self.refused else [])]
        return text + "".join(f"\n      {d}" for d in lines)


@dataclass
class Plan:
    steps: list[Step]
    unchanged: list[str]
    left_alone: list[str]
    """Sessions here the file does not name (deleted only with prune)."""
    hosts_unchanged: list[str] = field(default_factory=list)
    hosts_left_alone: list[str] = field(default_factory=list)
    """Hosts the file does not name and that prune does not remove: all of them
    without prune (or when the file declares no host), those holding sessions with."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def empty(self) -> bool:
        return not self.steps

    @property
    def refused(self) -> list[Step]:
        return [s for s in self.steps if s.refused]

    def summary(self) -> str:
        """The plan in one line."""
        if not self.steps:
            hosts = f", {len(self.hosts_unchanged)} host(s)" if self.hosts_unchanged else ""
            return f"no changes: {len(self.unchanged)} session(s){hosts} as declared"
        counts: dict[str, int] = {}
        for s in self.steps:
            key = f"host {s.action}" if s.kind == HOST else s.action
            counts[key] = counts.get(key, 0) + 1
        done = ", ".join(f"{n} {k}" for k, n in counts.items())
        refused = f"; apply refuses {len(self.refused)} of them" if self.refused else ""
        return f"plan: {done}; {len(self.unchanged)} session(s) unchanged{refused}"
