"""The ToolExecutor agent: runs each call on this session's own environment.

What it may know: the calls it is asked to run and the session environment it was given. With a
simulator (tools without SQL, or `tool_mode: simulated`), outputs come from a model held to each
tool's output schema instead of the database.
"""

from __future__ import annotations

from collections.abc import Sequence

from convosim.agents.llm_tool_simulator import ToolSimulator
from convosim.environments.domain import SessionEnvironment
from convosim.environments.tools import argument_errors
from convosim.messages import BaseEvent, ToolCall, ToolCallRequest, ToolOutput, ToolResult, event_id


class ToolExecutorRole:
    def __init__(
        self,
        session_id: str,
        environment: SessionEnvironment,
        simulator: ToolSimulator | None = None,
        simulate_all: bool = False,
    ) -> None:
        self.session_id = session_id
        self.environment = environment
        self.simulator = simulator
        self.simulate_all = simulate_all
        self.batches = 0

    async def handle(self, event: BaseEvent) -> Sequence[BaseEvent]:
        if not isinstance(event, ToolCallRequest):
            return []
        self.batches += 1
        results = tuple([await self._run(call) for call in event.calls])
        return [
            ToolResult(
                id=event_id(self.session_id, "tools", self.batches),
                session_id=self.session_id,
                turn=event.turn,
                sender="tool_executor",
                recipient="assistant",
                results=results,
            )
        ]

    async def _run(self, call: ToolCall) -> ToolOutput:
        tool = self.environment.domain.tools.get(call.name)
        simulate = tool is not None and (self.simulate_all or tool.sql is None)
        if not simulate or self.simulator is None or tool is None:
            return self.environment.call(call.id, call.name, call.arguments)
        problems = argument_errors(tool, call.arguments)
        if problems or not isinstance(call.arguments, dict):
            error = {"error": "invalid arguments: " + "; ".join(problems)}
            return ToolOutput(call_id=call.id, name=call.name, output=error, is_error=True)
        output, is_error = await self.simulator.run(tool, call.arguments)
        return ToolOutput(call_id=call.id, name=call.name, output=output, is_error=is_error)
