"""The ToolExecutor agent: runs each call on this session's own environment.

What it may know: the calls it is asked to run and the session environment it was given.
"""

from __future__ import annotations

from collections.abc import Sequence

from convosim.environments.domain import SessionEnvironment
from convosim.messages import BaseEvent, ToolCallRequest, ToolResult


class ToolExecutorRole:
    def __init__(self, session_id: str, environment: SessionEnvironment) -> None:
        self.session_id = session_id
        self.environment = environment
        self.batches = 0

    async def handle(self, event: BaseEvent) -> Sequence[BaseEvent]:
        if not isinstance(event, ToolCallRequest):
            return []
        self.batches += 1
        results = tuple(self.environment.call(c.id, c.name, c.arguments) for c in event.calls)
        return [
            ToolResult(
                id=f"{self.session_id}-tools-{self.batches}",
                session_id=self.session_id,
                turn=event.turn,
                sender="tool_executor",
                recipient="assistant",
                results=results,
            )
        ]
