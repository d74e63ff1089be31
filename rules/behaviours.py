"""Behaviour tags: what happened in a session, read from its transcript, whoever played the roles.

A tag marks a kind of trajectory a trainer may want more or less of, not a fault: a tool error the
assistant recovered from is a feature of the data. Each detector reads only the recorded events
(and the task the session ran), so the same tags come out for offline, LLM and scripted roles,
and a stored session can be tagged again at any time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from convosim.messages import (
    AssistantMessage,
    BaseEvent,
    SessionStarted,
    ToolCallRequest,
    ToolResult,
    UserMessage,
    Verdict,
)
from convosim.rules.grounding import fact_told

TAGS = ("tool_error_recovery", "clarification", "change_of_mind", "multi_call_subgoal", "refusal")

# The assistant asking the user for something it needs (not offering more help, not confirming a change).
_ASKS = re.compile(
    r"\b(?:could you tell me|can you give me|what(?:'s| is) the|may i have|could i get|can i have|which [a-z ]+ is it"
    r"|please (?:provide|give|tell))\b[^.?!]*\?",
    re.IGNORECASE,
)
_CHANGED_MIND = re.compile(
    r"\b(?:changed my mind|on second thought|thinking about it again|reconsidered|had a rethink|thought it over"
    r"|had second thoughts)\b",
    re.IGNORECASE,
)
# The assistant saying it cannot do something (also how a refused sub-goal is told: rules/checks.py).
REFUSAL_RE = re.compile(
    r"\b(?:can't|cannot|couldn't|unable to|not able to|not allowed|not possible|isn't possible|not something i can"
    r"|won't be able|not permitted|isn't allowed|not eligible|isn't eligible|no longer possible)\b",
    re.IGNORECASE,
)


def declines(events: list[BaseEvent]) -> list[tuple[int, str]]:
    """Assistant messages that say no to the user's request, other than reports of a failed call
    (a message after a failed call that names one of its values; `raw_tool_error` checks how)."""
    out = []
    args = {
        c.id: c.arguments
        for e in events
        if isinstance(e, ToolCallRequest)
        for c in e.calls
        if isinstance(c.arguments, dict)
    }
    errors = {r.call_id for e in events if isinstance(e, ToolResult) for r in e.results if r.is_error}
    failed: list[Any] = []  # the values of the calls that failed since the user's last message
    for i, e in enumerate(events):
        if isinstance(e, UserMessage):
            failed = []
        elif isinstance(e, ToolResult):
            failed += [v for r in e.results if r.call_id in errors for v in args.get(r.call_id, {}).values()]
        elif (
            isinstance(e, AssistantMessage)
            and REFUSAL_RE.search(e.content)
            and not any(fact_told(v, e.content) for v in failed)
        ):
            out.append((i, e.content))
    return out


def _outcomes(events: Sequence[BaseEvent]) -> list[tuple[str, bool]]:
    """(tool, succeeded) for every call that got a result, in order."""
    results = {r.call_id: r for e in events if isinstance(e, ToolResult) for r in e.results}
    return [
        (c.name, not results[c.id].is_error)
        for e in events
        if isinstance(e, ToolCallRequest)
        for c in e.calls
        if c.id in results
    ]


def session_tags(events: Sequence[BaseEvent], write_tools: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """The behaviour tags of one session, in `TAGS` order."""
    tags: set[str] = set()
    calls = _outcomes(events)
    for i, (tool, ok) in enumerate(calls):
        if not ok and any(t == tool and later_ok for t, later_ok in calls[i + 1 :]):
            tags.add("tool_error_recovery")  # the same tool failed, then worked
    failed_writes = {t for t, ok in calls if not ok and t in write_tools}
    done_writes = {t for t, ok in calls if ok and t in write_tools}
    if declines(list(events)):
        tags.add("refusal")  # a change the rules did not allow was declined before any attempt
    previous: BaseEvent | None = None
    for event in events:
        if isinstance(event, AssistantMessage) and event.sender == "assistant":
            if isinstance(previous, UserMessage) and _ASKS.search(event.content):
                tags.add("clarification")  # asked before it could act on the request
            if failed_writes - done_writes and REFUSAL_RE.search(event.content):
                tags.add("refusal")  # a change the rules did not allow was declined, nothing written
        if isinstance(event, UserMessage) and _CHANGED_MIND.search(event.content):
            tags.add("change_of_mind")
        if isinstance(event, SessionStarted) and any(len(s.requests) > 1 for s in event.task.subgoals):
            tags.add("multi_call_subgoal")
        if not isinstance(event, ToolCallRequest | ToolResult):
            previous = event
    return tuple(t for t in TAGS if t in tags)


def recorded_tags(events: Sequence[BaseEvent]) -> tuple[str, ...]:
    """The tags the validator recorded on a stored session (its last verdict)."""
    return next((e.tags for e in reversed(events) if isinstance(e, Verdict)), ())
