"""Session lifecycle on the bus: start, supervise, judge, persist, release.

The engine owns the per-session environments and the recorder's buffers; the four roles only
ever see the events addressed to them. A per-session supervisor agent turns the user's
`ConversationClosed` (or any `SessionFailed`) into a `SessionEnded` for the validator and hands
the verdict back to the engine, which writes the whole session at once and then releases its
agents and database so memory stays flat over long runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import cast

import structlog

from convosim.bus import Bus, RoleFactory, RoleLogic
from convosim.config import Limits
from convosim.environments.domain import Domain, SessionEnvironment
from convosim.llm.usage import UsageMeter
from convosim.messages import (
    BaseEvent,
    ConversationClosed,
    Event,
    LimitKind,
    SessionEnded,
    SessionFailed,
    SessionStarted,
    ToolResult,
    Verdict,
    event_id,
)
from convosim.models import Role
from convosim.runners.session import Session, SessionOutcome, SessionSpec

log = structlog.get_logger("convosim.engine")


class _Supervisor:
    """The runner's per-session agent: ends the session and collects the verdict."""

    def __init__(self, session_id: str, engine: Engine) -> None:
        self.session_id = session_id
        self.engine = engine

    async def handle(self, event: BaseEvent) -> Sequence[BaseEvent]:
        live = self.engine.live.get(self.session_id)
        if live is None or live.done.done():
            return []
        if isinstance(event, ConversationClosed) and not live.ended:
            live.ended = True
            live.end_reason = event.reason
            state_hash, state_diff = live.environment.final_state()
            return [
                SessionEnded(
                    id=event_id(self.session_id, "ended"),
                    session_id=self.session_id,
                    turn=event.turn,
                    sender="supervisor",
                    recipient="validator",
                    task_id=live.spec.task.id,
                    reason=event.reason,
                    state_hash=state_hash,
                    state_diff=state_diff,
                    transcript=tuple(cast(list[Event], live.events)),  # every recorded event is one of them
                )
            ]
        if isinstance(event, SessionFailed):
            live.done.set_result(("failed", "error", None, event.error))
        elif isinstance(event, Verdict):
            live.done.set_result(("accepted" if event.accepted else "rejected", live.end_reason, event, None))
        return []


class Engine:
    def __init__(self, domain: Domain, limits: Limits, meter: UsageMeter) -> None:
        self.domain = domain
        self.limits = limits
        self.timeout = limits.session_timeout_s
        self.query_timeout = limits.query_timeout_s
        self.meter = meter
        self.on_release: list[Callable[[str], None]] = []  # e.g. tell an isolated role's host
        self.live: dict[str, Session] = {}  # the sessions on the bus now, by id
        self.bus = Bus(observer=self._record, is_live=lambda sid: sid in self.live)

    def environment_of(self, session_id: str) -> SessionEnvironment:
        return self.live[session_id].environment

    async def _record(self, event: BaseEvent) -> None:
        """The recorder: keep every event of a live session in bus order."""
        live = self.live.get(event.session_id)
        if live is None:
            return  # the session has ended: its late agents ignore this (see bus._BusAgent)
        live.events.append(event)
        if not live.ended:
            tripped = self._limit_tripped(live, event)
            if tripped:
                kind, why = tripped
                await self.bus.publish(
                    ConversationClosed(
                        id=event_id(event.session_id, "limit"),
                        session_id=event.session_id,
                        turn=event.turn,
                        sender="runner",
                        recipient="supervisor",
                        reason="limit",
                        detail=why,
                        limit=kind,
                    )
                )

    def _limit_tripped(self, live: Session, event: BaseEvent) -> tuple[LimitKind, str] | None:
        """(which limit, why in words) when this event takes the session past a per-session limit."""
        if isinstance(event, ToolResult):
            live.tool_errors += sum(1 for r in event.results if r.is_error)
            if live.tool_errors > self.limits.max_tool_errors:
                return "tool_errors", f"more than {self.limits.max_tool_errors} tool errors"
        if self.limits.max_tokens is not None:
            usage = self.meter.by_session.get(event.session_id, {}).values()
            used = sum(u.prompt_tokens + u.completion_tokens for u in usage)
            if used > self.limits.max_tokens:
                return "tokens", f"more than {self.limits.max_tokens} tokens"
        return None

    def _owned(self, role: Role, factory: RoleFactory) -> RoleFactory:
        """The bus builds a role when its session's first event reaches it: the session keeps it."""

        def build(session_id: str) -> RoleLogic:
            logic = factory(session_id)
            live = self.live.get(session_id)
            if live is not None:
                live.roles[role] = logic
            return logic

        return build

    async def start(self, factories: dict[Role, RoleFactory]) -> None:
        for role, factory in factories.items():
            await self.bus.register(role, self._owned(role, factory))
        await self.bus.register("supervisor", lambda sid: _Supervisor(sid, self))
        self.bus.start()

    async def run_session(self, spec: SessionSpec) -> SessionOutcome:
        started = time.time()
        loop = asyncio.get_running_loop()
        environment = self.domain.new_session(self.query_timeout, self.limits.max_tool_output_bytes)
        live = Session(spec, environment, loop.create_future())
        self.live[spec.session_id] = live
        structlog.contextvars.bind_contextvars(session_id=spec.session_id, agent="runner")
        try:
            await self.bus.publish(
                SessionStarted(
                    id=event_id(spec.session_id, "start"),
                    session_id=spec.session_id,
                    turn=0,
                    sender="runner",
                    recipient="user",
                    task=spec.task.user_view(),
                )
            )
            try:
                status, reason, verdict, error = await asyncio.wait_for(asyncio.shield(live.done), self.timeout)
            except TimeoutError:
                status, reason, verdict, error = (
                    "failed",
                    "timeout",
                    None,
                    f"no verdict after {self.timeout}s",
                )
            log.info("session_finished", status=status, end_reason=reason, events=len(live.events))
            live.usage = self.meter.pop(spec.session_id, calls_may_linger=status == "failed")
            return SessionOutcome(spec, status, reason, verdict, list(live.events), started, error, live.usage)
        finally:
            del self.live[spec.session_id]
            live.environment.close()
            self.bus.release(spec.session_id)
            for hook in self.on_release:
                hook(spec.session_id)
            structlog.contextvars.unbind_contextvars("session_id", "agent")

    async def run_all(
        self,
        specs: Iterable[SessionSpec],
        concurrency: int,
        on_outcome: Callable[[SessionOutcome], Awaitable[None] | None],
    ) -> None:
        """Run sessions with at most `concurrency` live at once; report each as it finishes.

        A fixed pool of workers pulls from one iterator, so a million-session run holds only
        `concurrency` sessions (and tasks) in memory at a time.
        """
        pending = iter(specs)

        async def worker() -> None:
            for spec in pending:
                outcome = await self.run_session(spec)
                result = on_outcome(outcome)
                if asyncio.iscoroutine(result):
                    await result

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(concurrency):
                    group.create_task(worker())
        except ExceptionGroup as group_error:  # the first cause, as callers expect it (one clear error)
            raise group_error.exceptions[0] from group_error

    async def stop(self) -> None:
        await self.bus.stop()
