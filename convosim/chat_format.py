"""Bus events as OpenAI chat messages: one mapping shared by the assistant's view and the export.

Keeping a single mapping guarantees the dataset shows exactly what the assistant saw.
"""

from __future__ import annotations

import json
from typing import Any

from convosim.messages import AssistantMessage, BaseEvent, ToolCallRequest, ToolResult, UserMessage


def tool_output_content(output: Any) -> str:
    return json.dumps(output, ensure_ascii=False, sort_keys=True)


def arguments_text(arguments: dict[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments, sort_keys=True)


def chat_messages(event: BaseEvent, reasoning: bool = False) -> list[dict[str, Any]]:
    """The chat messages an event contributes (none for control events such as verdicts).

    With `reasoning`, an assistant message carries the model's reasoning as `reasoning_content`
    (the field Qwen3, DeepSeek and TRL read). The assistant's own view leaves it out: providers
    refuse it or ignore it when it is sent back, and a deployed assistant would not see it either."""
    if isinstance(event, UserMessage):
        return [{"role": "user", "content": event.content}]
    if isinstance(event, AssistantMessage):
        return [
            _with_reasoning({"role": "assistant", "content": event.content}, event.reasoning if reasoning else None)
        ]
    if isinstance(event, ToolCallRequest):
        calls = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": arguments_text(c.arguments)},
            }
            for c in event.calls
        ]
        return [_with_reasoning({"role": "assistant", "tool_calls": calls}, event.reasoning if reasoning else None)]
    if isinstance(event, ToolResult):
        return [
            {"role": "tool", "tool_call_id": r.call_id, "content": tool_output_content(r.output)} for r in event.results
        ]
    return []


def _with_reasoning(message: dict[str, Any], reasoning: str | None) -> dict[str, Any]:
    return {**message, "reasoning_content": reasoning} if reasoning else message
