"""Deterministic checks of a finished session against its rubric and the user's rules.

Every failed check becomes a machine-readable `Reason`; a session is accepted only when there
are none. The checks read the recorded transcript, so they judge what actually happened on the
bus, not what any agent believes happened.
"""

from __future__ import annotations

import re
from typing import Any

from convosim.environments.phrasing import PhraseBook, render_value
from convosim.environments.tools import argument_errors
from convosim.messages import (
    AssistantMessage,
    BaseEvent,
    Reason,
    SessionEnded,
    ToolCallRequest,
    ToolResult,
    UserMessage,
)
from convosim.models import Rubric, ToolRequest, ToolSpec
from convosim.rules.user_rules import UserRules

_NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?")


def fact_told(value: Any, text: str) -> bool:
    """Was `value` stated in `text`? Numbers match however they are written (59.9, 59.90,
    $1,059.90), text case-insensitively: an LLM assistant need not echo a tool's exact spelling."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return any(abs(float(m.replace(",", "")) - float(value)) < 0.005 for m in _NUMBER.findall(text))
    return render_value(value).lower() in text.lower()


def _agreement(args: dict[str, Any], gold: dict[str, Any]) -> int:
    return sum(1 for k, v in args.items() if k in gold and gold[k] == v)


def subgoals_in_message(text: str, book: PhraseBook, gold: tuple[tuple[int, ToolRequest], ...]) -> set[int]:
    """Which sub-goals a user message asks for, judged by parsing it like the assistant would."""
    found: set[int] = set()
    for request in book.parse(text):
        scored = [(_agreement(request.args, g.args), -k, k) for k, g in gold if g.tool == request.tool]
        if scored:
            found.add(max(scored)[2])
    return found


def check_tool_calls(events: list[BaseEvent], tools: dict[str, ToolSpec]) -> list[Reason]:
    reasons = []
    for event in events:
        if isinstance(event, ToolCallRequest):
            for call in event.calls:
                tool = tools.get(call.name)
                problems = [f"unknown tool {call.name!r}"] if tool is None else argument_errors(tool, call.arguments)
                if problems:
                    reasons.append(
                        Reason(
                            code="invalid_tool_call",
                            detail={"turn": event.turn, "call_id": call.id, "problems": problems},
                        )
                    )
    return reasons


def check_user_rules(events: list[BaseEvent], rules: UserRules, book: PhraseBook, rubric: Rubric) -> list[Reason]:
    reasons = []
    user_messages = [e for e in events if isinstance(e, UserMessage)]
    for message in user_messages:
        if not message.content.strip():
            reasons.append(Reason(code="rule_empty_message", detail={"turn": message.turn}))
        asked = subgoals_in_message(message.content, book, rubric.gold_calls)
        if len(asked) > rules.max_subgoals_per_message:
            reasons.append(
                Reason(
                    code="rule_too_many_subgoals",
                    detail={
                        "turn": message.turn,
                        "subgoals": sorted(asked),
                        "max": rules.max_subgoals_per_message,
                    },
                )
            )
    if len(user_messages) > rules.max_turns + 1:
        reasons.append(Reason(code="rule_max_turns", detail={"user_turns": len(user_messages)}))
    if not user_messages or not user_messages[-1].done:
        reasons.append(Reason(code="rule_no_end_marker"))
    return reasons


def completed_subgoals(events: list[BaseEvent], rubric: Rubric, assistant_text: str) -> set[int]:
    """Sub-goals whose gold calls all ran successfully and whose facts were all told to the user."""
    outputs = {r.call_id: r for e in events if isinstance(e, ToolResult) for r in e.results}
    executed = [
        (c.name, c.arguments)
        for e in events
        if isinstance(e, ToolCallRequest)
        for c in e.calls
        if c.id in outputs and not outputs[c.id].is_error
    ]
    done: set[int] = set()
    for k in {k for k, _ in rubric.gold_calls}:
        calls_ok = all((g.tool, g.args) in executed for j, g in rubric.gold_calls if j == k)
        facts_ok = all(fact_told(f.value, assistant_text) for f in rubric.facts if f.subgoal == k)
        if calls_ok and facts_ok:
            done.add(k)
    return done


def judge(
    ended: SessionEnded,
    rubric: Rubric,
    tools: dict[str, ToolSpec],
    rules: UserRules,
    book: PhraseBook,
    grounded: bool = True,
) -> tuple[list[Reason], int]:
    """All reasons to reject the session (empty = accept), and how many sub-goals it completed.

    `grounded=False` (simulated tool outputs) skips the checks that compare against the database
    replay (final state, fact values): simulated outputs cannot match them.
    """
    events = list(ended.transcript)
    reasons: list[Reason] = []
    if ended.reason != "completed":
        reasons.append(Reason(code="not_completed", detail=ended.reason))
    if grounded and ended.state_hash != rubric.expected_state_hash:
        reasons.append(
            Reason(code="state_mismatch", detail={"expected": rubric.expected_diff, "actual": ended.state_diff})
        )
    assistant_text = "\n".join(e.content for e in events if isinstance(e, AssistantMessage))
    for fact in rubric.facts if grounded else ():
        if not fact_told(fact.value, assistant_text):
            reasons.append(
                Reason(
                    code="fact_missing",
                    detail={"subgoal": fact.subgoal, "field": fact.field, "value": fact.value},
                )
            )
    reasons += check_tool_calls(events, tools)
    reasons += check_user_rules(events, rules, book, rubric)
    return reasons, len(completed_subgoals(events, rubric, assistant_text))
