"""Dataset export: recorded sessions -> OpenAI fine-tuning chat format.

Each line of `dataset.jsonl` is `{"messages": [...], "tools": [...]}` with a system message
(the domain policy), user and assistant turns, assistant `tool_calls`, and one `tool` message per
call id. Files are rebuilt from the run store in session order, written to a temporary file and
renamed, so they are deterministic for a seed and never hold a torn line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from convosim.agents.assistant import tool_message_content
from convosim.messages import AssistantMessage, BaseEvent, ToolCallRequest, ToolResult, UserMessage


def openai_messages(system: str, events: Iterable[BaseEvent]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for event in events:
        if isinstance(event, UserMessage):
            messages.append({"role": "user", "content": event.content})
        elif isinstance(event, ToolCallRequest):
            messages.append(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {
                                "name": c.name,
                                "arguments": json.dumps(c.arguments, sort_keys=True),
                            },
                        }
                        for c in event.calls
                    ],
                }
            )
        elif isinstance(event, ToolResult):
            for r in event.results:
                messages.append({"role": "tool", "tool_call_id": r.call_id, "content": tool_message_content(r.output)})
        elif isinstance(event, AssistantMessage):
            messages.append({"role": "assistant", "content": event.content})
    return messages


def write_jsonl_atomic(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    tmp = path.with_suffix(path.suffix + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n")
            count += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return count
