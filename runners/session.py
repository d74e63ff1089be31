"""The session as a thing: what is run (`SessionSpec`), what runs (`Session`), what came of it
(`SessionOutcome`). Built only by `runners.session_factory.SessionFactory`; scheduled by the engine.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from convosim.bus import RoleLogic
from convosim.environments.domain import SessionEnvironment
from convosim.llm.usage import Usage
from convosim.messages import BaseEvent, EndReason, Verdict
from convosim.models import Role, Task


@dataclass(frozen=True)
class SessionSpec:
    idx: int
    session_id: str
    task: Task
    trial: int


@dataclass
class SessionOutcome:
    spec: SessionSpec
    status: str  # accepted | rejected | failed
    end_reason: EndReason | None
    verdict: Verdict | None
    events: list[BaseEvent]
    started_at: float
    error: str | None = None
    usage: dict[str, Usage] = field(default_factory=dict)


@dataclass
class Session:
    """One conversation while it runs: its spec (id, task, trial), its own database, its four roles
    (built by the bus on first delivery), the events recorded so far, its LLM usage, how it ended,
    and the future the engine waits on. The roles never see it: they only receive the events
    addressed to them."""

    spec: SessionSpec
    environment: SessionEnvironment
    done: asyncio.Future[tuple[str, EndReason | None, Verdict | None, str | None]]
    events: list[BaseEvent] = field(default_factory=list)
    end_reason: EndReason | None = None
    ended: bool = False
    tool_errors: int = 0
    roles: dict[Role, RoleLogic] = field(default_factory=dict)
    usage: dict[str, Usage] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.spec.session_id
