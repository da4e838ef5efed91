"""Host routing under the door: an action on a session runs where the session runs.

A door method decorated with ``routed`` looks up the session's host in the shared store;
on this host it runs its own code, on another it becomes the agent call of the same
name, its arguments and result carried by their type hints (codec.py). An error raised
there is raised here as the same class, with the same exit code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from ecosystem.errors import HostUnreachable
from ecosystem.fleet import codec

if TYPE_CHECKING:
    from ecosystem.plumbing import Plumbing

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="Plumbing")

CALL_TIMEOUT = 30.0
"""Seconds a host has to answer an action that waits for nothing in particular."""
STREAM_IDLE = 0.25
"""Seconds a followed stream waits for an event before handing its caller an empty one."""


def routed(method: Callable[Concatenate[S, str, P], R]) -> Callable[Concatenate[S, str, P], R]:
    """Run ``method`` on the host of the session named by its first argument."""

    @functools.wraps(method)
    def door(self: S, name: str, /, *args: P.args, **kwargs: P.kwargs) -> R:
        host = self.host_of(name)
        if host == self.host_id:
            return method(self, name, *args, **kwargs)
        result: R = call_on_host(self, host, method, (name, *args), kwargs)
        return result

    return door


def call_on_host(
    orch: Plumbing,
    host: str,
    method: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """``method`` with these arguments, run by ``host``'s agent."""
    links = orch.links
    if links is None:
        raise HostUnreachable(
            f"{host} is another host, and this zapvisor has no link to the fleet's hosts: "
            "run the command there, or add the host with `zapvisor hosts add`"
        )
    name = method.__name__
    params = codec.encode_params(method, args, kwargs)
    result_type = codec.hints(method).get("return")
    item = codec.stream_item(result_type)
    if item is not None:
        return _stream(orch, host, name, params, item)

    def progress(event: Any) -> None:
        if isinstance(event, dict) and "progress" in event:
            orch.progress(f"{host}: {event['progress']}")

    data = links.call(
        host,
        name,
        params,
        timeout=timeout_of(orch, name, kwargs),
        on_event=progress,
        actor=orch.operator,
    )
    return codec.decode(data, result_type)


def _stream(
    orch: Plumbing, host: str, name: str, params: dict[str, Any], item: Any
) -> Iterator[Any]:
    assert orch.links is not None
    empty = codec.decode([], item) if _is_list(item) else None
    for data in orch.links.stream(host, name, params, idle=STREAM_IDLE, actor=orch.operator):
        if data is not None:
            yield codec.decode(data, item)
        elif empty is not None:
            yield empty


def _is_list(tp: Any) -> bool:
    return getattr(tp, "__origin__", tp) is list


def timeout_of(orch: Plumbing, name: str, kwargs: dict[str, Any]) -> float:
    """How long an action may take on its host before the host counts as silent: the
    actions that wait for a runner's health get the start timeout on top."""
    start = orch.settings.start_timeout
    if name in ("create", "start", "restart", "hand_over", "take_over"):
        return CALL_TIMEOUT + 2 * start
    if name in ("qr", "sim_scan"):
        return CALL_TIMEOUT + float(kwargs.get("wait") or 0)
    return CALL_TIMEOUT
