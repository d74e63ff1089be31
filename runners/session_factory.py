"""The one composition root: scenario + domain + rubrics (+ policy hooks) -> sessions on a bus.

`run`, `fork`, the Ray workers, the isolated user host, the tests and any embedding build sessions
here and nowhere else: the factory picks each role's policy (`runners.roles`), owns the usage
meter, the engine that schedules sessions, the LLM clients and, with `isolate: [user]`, the user
host process. Callers adapt policies through `PolicyHooks`, never by editing an agent.

    async with SessionFactory(scenario, domain, rubrics) as sessions:
        outcome = await sessions.run(spec)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

from convosim.bus import RoleFactory
from convosim.config import Scenario
from convosim.environments.domain import Domain, SessionEnvironment
from convosim.errors import ConvosimError
from convosim.llm.budget import Budget
from convosim.llm.usage import UsageMeter
from convosim.models import Role, Rubric
from convosim.runners.engine import Engine
from convosim.runners.isolation import RemoteUser, UserHost
from convosim.runners.roles import PolicyHooks, Roles, build_roles
from convosim.runners.session import SessionOutcome, SessionSpec


def _no_environment(session_id: str) -> SessionEnvironment:
    raise RuntimeError(f"{session_id}: this process runs no tools (it hosts users only)")


class SessionFactory:
    def __init__(
        self,
        scenario: Scenario,
        domain: Domain,
        rubrics: Mapping[str, Rubric],
        *,
        hooks: PolicyHooks | None = None,
        overrides: Mapping[Role, RoleFactory] | None = None,
    ) -> None:
        self.scenario = scenario
        self.domain = domain
        self.rubrics = rubrics
        self.hooks = hooks
        self.overrides = dict(overrides or {})
        self.meter = UsageMeter()
        cap = scenario.limits.max_cost_usd
        self.budget = Budget(cap) if cap is not None else None
        self.engine = Engine(domain, scenario.limits, self.meter)
        self.roles: Roles | None = None
        self.host: UserHost | None = None

    def user_role(self) -> RoleFactory:
        """Only the user's factory, for a process that hosts users (no engine, no environments)."""
        return build_roles(self.scenario, self.domain, self.rubrics, _no_environment, self.meter, self.hooks).factories[
            "user"
        ]

    async def __aenter__(self) -> SessionFactory:
        self.roles = build_roles(
            self.scenario, self.domain, self.rubrics, self.engine.environment_of, self.meter, self.hooks, self.budget
        )
        factories = {**self.roles.factories, **self.overrides}
        if "user" in self.scenario.isolate and "user" not in self.overrides:
            paths = {"domain": str(self.scenario.domain.resolve()), "tasks": str(self.scenario.tasks.resolve())}
            host = self.host = UserHost(self.scenario.model_dump(mode="json") | paths, self.meter)
            await host.start()
            factories["user"] = lambda sid: RemoteUser(sid, host)
            self.engine.on_release.append(host.release)
        await self.engine.start(factories)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self.engine.stop()
        finally:
            if self.roles is not None:
                await self.roles.aclose()
            if self.host is not None:
                await self.host.stop()

    async def run(self, spec: SessionSpec) -> SessionOutcome:
        outcome = await self.engine.run_session(spec)
        self.check()
        return outcome

    async def run_all(
        self,
        specs: Iterable[SessionSpec],
        concurrency: int,
        on_outcome: Callable[[SessionOutcome], Awaitable[None] | None],
    ) -> None:
        def checked(outcome: SessionOutcome) -> Awaitable[None] | None:
            self.check()  # before the outcome is kept: a session the dead host failed is rerun on resume
            return on_outcome(outcome)

        budget = self.budget
        within_budget = (s for s in specs if budget is None or not budget.exhausted)  # no new session past it
        await self.engine.run_all(within_budget, concurrency, checked)

    def check(self) -> None:
        """Stop the run loudly when a part it depends on is gone (the user host): never hang."""
        if self.host is not None and self.host.dead is not None:
            raise ConvosimError(
                None,
                "isolate: user",
                f"{self.host.dead}; the sessions finished before it are kept: run again with --resume",
            )

    async def numbers(self) -> dict[str, Any]:
        """What stats.json reports about the machinery: LLM requests sent, the user host."""
        out: dict[str, Any] = {"llm_requests_sent": self.roles.requests_sent() if self.roles else 0}
        if self.meter.late:
            out["late_llm_usage"] = {role: u.as_dict() for role, u in self.meter.late.items()}
        if self.budget is not None:
            out["budget"] = {
                "cap_usd": self.budget.cap_usd,
                "spent_usd": round(self.budget.spent_usd, 6),
                "reached": self.budget.exhausted,
            }
        if self.host is not None:
            host = await self.host.stats()
            out["user_host"] = {"pid": host["pid"], "events_handled": host["handled"]}
        return out
