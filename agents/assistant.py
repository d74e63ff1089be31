"""The Assistant agent: sees only what a deployed assistant would.

What it may know: the domain's policy text, the tools' public specs, the user's messages and its
own tool results. It never receives the task, the rubric, the database or the SQL (tool results
reach it as JSON outputs only). The per-turn tool-call budget is enforced here so a looping
policy ends its turn with an apology instead of spinning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from convosim.agents.policies import AssistantObservation, AssistantPolicy
from convosim.chat_format import chat_messages
from convosim.messages import AssistantMessage, BaseEvent, ToolCall, ToolCallRequest, ToolResult, UserMessage, event_id

OUT_OF_BUDGET = "I'm sorry, I wasn't able to complete that. Is there anything else I can help with?"


class AssistantRole:
    def __init__(
        self,
        session_id: str,
        policy: AssistantPolicy,
        system: str,
        tools: Sequence[dict[str, Any]],
        max_tool_calls_per_turn: int,
    ) -> None:
        self.session_id = session_id
        self.policy = policy
        self.system = system
        self.tools = tuple(tools)
        self.max_calls = max_tool_calls_per_turn
        self.messages: list[dict[str, Any]] = []
        self.turn = 0
        self.calls_this_turn = 0
        self.calls_total = 0
        self.replies = 0

    async def handle(self, event: BaseEvent) -> Sequence[BaseEvent]:
        if isinstance(event, UserMessage):
            self.turn = event.turn
            self.calls_this_turn = 0
        elif not isinstance(event, ToolResult):
            return []
        self.messages.extend(chat_messages(event))
        reply = await self._next()
        self.messages.extend(chat_messages(reply))
        return [reply]

    async def _next(self) -> BaseEvent:
        action = await self.policy.act(
            AssistantObservation(system=self.system, tools=self.tools, messages=tuple(self.messages))
        )
        if action.tool_calls and self.calls_this_turn + len(action.tool_calls) <= self.max_calls:
            calls = []
            for planned in action.tool_calls:
                self.calls_total += 1
                call_id = f"call_{self.session_id[:8]}_{self.calls_total}"
                calls.append(ToolCall(id=call_id, name=planned.name, arguments=planned.arguments))
            self.calls_this_turn += len(calls)
            return ToolCallRequest(
                id=event_id(self.session_id, "assistant-calls", self.calls_total),
                session_id=self.session_id,
                turn=self.turn,
                sender="assistant",
                recipient="tool_executor",
                calls=tuple(calls),
                reasoning=action.reasoning,
            )
        content = (action.content or "").strip() if not action.tool_calls else OUT_OF_BUDGET
        self.replies += 1
        return AssistantMessage(
            id=event_id(self.session_id, "assistant", self.replies),
            session_id=self.session_id,
            turn=self.turn,
            sender="assistant",
            recipient="user",
            content=content or "Sorry, could you say that again?",
            reasoning=action.reasoning,
        )
