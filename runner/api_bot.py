"""Routes of the session's bot: its config (checked as on every other write path) and,
for the sim connector, what the simulated phone sent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runner.http import HTTPError, Request, Response
from runner.openapi import Route, reply

if TYPE_CHECKING:
    from runner import api_models as m
    from runner.core import Runner
else:
    from runner.openapi import models as m


class BotRoutes:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def routes(self) -> list[Route]:
        return [
            Route(
                "GET",
                "/config",
                "getConfig",
                "the session's ai_config and timing_config",
                self.get_config,
                "BotConfig",
            ),
            Route(
                "PUT",
                "/config",
                "putConfig",
                "replace ai_config and/or timing_config (checked; a bad field is a 400 naming it)",
                self.put_config,
                "BotConfig",
                "PutConfig",
                (400,),
            ),
            Route(
                "GET",
                "/sim/sent",
                "simSent",
                "sim connector: what the simulated phone sent, typed and marked read, oldest "
                "first (kind text|typing|paused|read, to, at, id?, body?)",
                self.sim_sent,
                "SimSent",
                None,
                (409,),
            ),
        ]

    async def sim_sent(self, _: Request, __: None) -> Response:
        from runner.connectors.sim import SimConnector

        connector = self.runner.connector
        if not isinstance(connector, SimConnector):
            raise HTTPError(409, f"session {self.runner.name} does not use the sim connector")
        return reply(m.SimSent(success=True, sent=list(connector.sent)))

    async def _view(self) -> Response:
        session = await self.runner.reporter.call(self.runner.store.get_session, self.runner.name)
        return reply(
            m.BotConfig(
                success=True, ai_config=session.ai_config, timing_config=session.timing_config
            )
        )

    async def get_config(self, _: Request, __: None) -> Response:
        return await self._view()

    async def put_config(self, _: Request, body: m.PutConfig) -> Response:
        from ecosystem.botconfig import check_ai_config, check_timing_config

        changes: dict[str, Any] = {}
        try:
            if body.ai_config is not None:
                changes["ai_config"] = check_ai_config(body.ai_config)
            if body.timing_config is not None:
                changes["timing_config"] = check_timing_config(body.timing_config)
        except ValueError as exc:
            raise HTTPError(400, str(exc)) from None
        if not changes:
            raise HTTPError(400, "nothing to change: send ai_config and/or timing_config")
        await self.runner.reporter.call(
            lambda: self.runner.store.update_session(
                self.runner.name, changes, actor="api", action="configure"
            )
        )
        return await self._view()
