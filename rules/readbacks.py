"""A user who reads a change back must read back what the database now holds.

"Just to be sure, the phone number is now 07738-306067, right?" after a plan change confirms a
value the user never asked to change; a read-back of a value the write did not store teaches the
assistant to agree with a wrong claim. The database's value is the one the last successful write
stored (its returned row, else the argument it bound to a changed column).
"""

from __future__ import annotations

from typing import Any

from convosim.agents.offline_language import READBACK_RE
from convosim.environments.phrasing import label, same_value, unquote
from convosim.environments.sql_checks import written_parameters
from convosim.messages import BaseEvent, Reason, ToolCallRequest, ToolResult, UserMessage
from convosim.models import ToolSpec
from convosim.rules.grounding import numbers_in


def _same(value: Any, said: str) -> bool:
    if str(value).casefold() == said.casefold() or same_value(value, said):
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        return numbers_in(said) == {round(abs(float(value)), 2)}
    return False


def _last_write(events: list[BaseEvent], upto: int, tools: dict[str, ToolSpec]) -> dict[str, Any] | None:
    """label -> value for the fields the latest successful write before `upto` changed."""
    outputs = {r.call_id: r for e in events[:upto] if isinstance(e, ToolResult) for r in e.results}
    for event in reversed(events[:upto]):
        if not isinstance(event, ToolCallRequest):
            continue
        for call in reversed(event.calls):
            result = outputs.get(call.id)
            tool = tools.get(call.name)
            if result is None or result.is_error or tool is None or tool.kind != "write":
                continue
            if not isinstance(call.arguments, dict):
                continue
            stored = written_parameters(tool.sql) if tool.sql else frozenset(call.arguments)
            changed = {label(k): v for k, v in call.arguments.items() if k in stored}
            if isinstance(result.output, dict):  # the row as stored wins over the argument given
                changed |= {label(k): v for k, v in result.output.items() if label(k) in changed}
            return changed
    return None


def check_readbacks(events: list[BaseEvent], tools: dict[str, ToolSpec]) -> list[Reason]:
    reasons = []
    for i, event in enumerate(events):
        if not isinstance(event, UserMessage):
            continue
        for m in READBACK_RE.finditer(event.content):
            said = unquote(m.group("value"))
            changed = _last_write(events, i, tools) or {}
            field = m.group("label").lower()
            if field not in changed:
                problem = "confirms a field no write changed"
            elif not _same(changed[field], said):
                problem = f"contradicts the stored value {changed[field]!r}"
            else:
                continue
            reasons.append(
                Reason(
                    code="readback_mismatch",
                    detail={"turn": event.turn, "field": field, "said": said, "problem": problem},
                )
            )
    return reasons
