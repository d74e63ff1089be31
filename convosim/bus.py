"""The event bus: a thin layer over autogen-core's SingleThreadedAgentRuntime.

Role logic (agents/) never imports autogen: a role is an object with `handle(event) -> events`,
built per session by a factory. This module turns each role into an autogen agent type with one
instance per session (agent key = session id), routes every event to the topic named by its
`recipient` (topic source = session id, so the runtime needs one subscription per role, never one
per session), serialises handling per agent instance, turns handler exceptions into
`SessionFailed` events, and lets a recorder observe every published message in order.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import structlog
from autogen_core import (
    AgentId,
    BaseAgent,
    DefaultInterventionHandler,
    DropMessage,
    InterventionHandler,
    MessageContext,
    SingleThreadedAgentRuntime,
    TopicId,
    TypeSubscription,
)

from convosim.messages import BaseEvent, SessionFailed, event_id
from convosim.models import Role

log = structlog.get_logger("convosim.bus")


class RoleLogic(Protocol):
    """What an agent does with one incoming event: the events it sends in response."""

    async def handle(self, event: BaseEvent) -> Sequence[BaseEvent]: ...


RoleFactory = Callable[[str], RoleLogic]
# Sees each event before delivery, in publish order.
Observer = Callable[[BaseEvent], Awaitable[None]]


def topic_for(event: BaseEvent) -> TopicId:
    return TopicId(type=event.recipient, source=event.session_id)


class _BusAgent(BaseAgent):
    """Adapter from autogen's agent interface to a RoleLogic; one instance per (role, session)."""

    def __init__(self, role: Role, factory: RoleFactory, bus: Bus) -> None:
        super().__init__(description=f"convosim {role}")
        self._role: Role = role
        self._bus = bus
        # A message already in flight when its session ended can still arrive: such a late agent
        # gets no logic, drops the message and evicts itself, so nothing is rebuilt or leaked.
        self._logic = factory(self.id.key) if bus.is_live(self.id.key) else None
        # autogen runs each delivery as its own task: without this lock one agent could answer twice.
        self._lock = asyncio.Lock()
        self._failures = 0

    async def on_message_impl(self, message: Any, ctx: MessageContext) -> None:
        if self._logic is None:
            self._bus.release(self.id.key)
            return
        async with self._lock:
            # structlog contextvars do not travel with the message: bind them at the entry point.
            with structlog.contextvars.bound_contextvars(session_id=self.id.key, agent=self._role):
                try:
                    outgoing = list(await self._logic.handle(message))
                except Exception as exc:
                    log.error("handler_failed", event_type=type(message).__name__, error=repr(exc))
                    self._failures += 1
                    outgoing = [
                        SessionFailed(
                            id=event_id(self.id.key, f"{self._role}-failed", self._failures),
                            session_id=self.id.key,
                            turn=getattr(message, "turn", 0),
                            sender=self._role,
                            recipient="supervisor",
                            error=f"{self._role}: {exc!r}\n{traceback.format_exc(limit=4)}",
                        )
                    ]
                for event in outgoing:
                    await self.publish_message(event, topic_for(event))


class _Recorder(DefaultInterventionHandler):
    """Sees every publish before delivery, in one total order (interventions run serially)."""

    def __init__(self, observer: Observer) -> None:
        self._observer = observer

    async def on_publish(self, message: Any, *, message_context: MessageContext) -> Any | type[DropMessage]:
        # Never return DropMessage: autogen-core 0.7.5 then skips the queue's task_done() and
        # stop_when_idle() waits forever. Late messages are instead ignored by their (late) agent.
        if isinstance(message, BaseEvent):
            await self._observer(message)
        return message


class Bus:
    """Owns the runtime; the only module that knows the bus is autogen-core."""

    def __init__(self, observer: Observer | None = None, is_live: Callable[[str], bool] | None = None) -> None:
        handlers: list[InterventionHandler] | None = [_Recorder(observer)] if observer is not None else None
        self._runtime = SingleThreadedAgentRuntime(intervention_handlers=handlers)
        self._roles: list[Role] = []
        self.is_live: Callable[[str], bool] = is_live or (lambda _session_id: True)

    async def register(self, role: Role, factory: RoleFactory) -> None:
        await _BusAgent.register(
            self._runtime,
            role,
            lambda: _BusAgent(role, factory, self),
            skip_class_subscriptions=True,
            skip_direct_message_subscription=True,
        )
        await self._runtime.add_subscription(TypeSubscription(topic_type=role, agent_type=role))
        self._roles.append(role)

    def start(self) -> None:
        self._runtime.start()

    async def publish(self, event: BaseEvent) -> None:
        await self._runtime.publish_message(event, topic_for(event))

    def release(self, session_id: str) -> None:
        """Forget a finished session: autogen-core never evicts agent instances (issue #5374) and
        caches the recipients of every topic it has seen; both would grow with every session."""
        agents = self._runtime._instantiated_agents  # no public API for either
        subscriptions = self._runtime._subscription_manager
        for role in self._roles:
            agents.pop(AgentId(role, session_id), None)
            topic = TopicId(type=role, source=session_id)
            subscriptions._seen_topics.discard(topic)
            subscriptions._subscribed_recipients.pop(topic, None)

    def live_agents(self) -> int:
        return len(self._runtime._instantiated_agents)

    def footprint(self) -> dict[str, int]:
        """What the runtime holds: agent instances and cached topics (both should return to 0)."""
        return {"agents": self.live_agents(), "topics": len(self._runtime._subscription_manager._seen_topics)}

    async def stop(self) -> None:
        await self._runtime.stop_when_idle()
