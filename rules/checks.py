"""Deterministic checks of a finished session against its rubric and the user's rules.

Every failed check becomes a machine-readable `Reason`; a session is accepted only when there
are none. The checks read the recorded transcript, so they judge what actually happened on the
bus, not what any agent believes happened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from convosim.environments.domain import SessionEnvironment
from convosim.environments.phrasing import PhraseBook, label
from convosim.environments.record_owners import RecordOwners
from convosim.environments.sql_checks import output_columns
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
from convosim.rules.behaviours import REFUSAL_RE
from convosim.rules.conduct import (
    check_claims,
    check_consent,
    check_disclosure,
    check_leaks,
    check_raw_errors,
    check_refusals,
    check_repeats,
)
from convosim.rules.grounding import check_grounding, check_placeholders, fact_told
from convosim.rules.readbacks import check_readbacks
from convosim.rules.replay import check_replay
from convosim.rules.user_rules import UserRules


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


def subgoals_served(events: list[BaseEvent], rubric: Rubric) -> dict[int, set[int]]:
    """For each user message (by index), the sub-goals whose gold calls the assistant made in
    reply to it (up to the next user message): what the message asked for, however it was worded,
    so the rule holds for an LLM user the phrase book cannot parse. Each gold call is credited
    once, to the last time it is made: a read the assistant made on its own first (to check a
    write's precondition) is the user's request only when the user asks for it."""
    remaining = list(rubric.gold_calls)
    served: dict[int, set[int]] = {}
    replying: set[int] = set()  # sub-goals of the calls since the user message reached going back
    for i in range(len(events) - 1, -1, -1):
        event = events[i]
        if isinstance(event, ToolCallRequest):
            for call in reversed(event.calls):
                same = [g for g in remaining if g[1].tool == call.name and g[1].args == call.arguments]
                if same:  # going back, the latest sub-goal that makes this call
                    remaining.remove(same[-1])
                    replying.add(same[-1][0])
        elif isinstance(event, UserMessage):
            if replying:
                served[i] = replying
            replying = set()
    return served


def check_user_rules(events: list[BaseEvent], rules: UserRules, book: PhraseBook, rubric: Rubric) -> list[Reason]:
    reasons = []
    user_messages = [(i, e) for i, e in enumerate(events) if isinstance(e, UserMessage)]
    served = subgoals_served(events, rubric)
    for i, message in user_messages:
        if not message.content.strip():
            reasons.append(Reason(code="rule_empty_message", detail={"turn": message.turn}))
        asked = subgoals_in_message(message.content, book, rubric.gold_calls) | served.get(i, set())
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
    if not user_messages or not user_messages[-1][1].done:
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
    refused_told = REFUSAL_RE.search(assistant_text) is not None
    for k in {k for k, _ in rubric.gold_calls}:
        calls_ok = all(
            (g.tool, g.args) not in executed and refused_told if g.expect == "refused" else (g.tool, g.args) in executed
            for j, g in rubric.gold_calls
            if j == k
        )
        facts_ok = all(fact_told(f.value, assistant_text) for f in rubric.facts if f.subgoal == k)
        if calls_ok and facts_ok:
            done.add(k)
    return done


@dataclass(frozen=True)
class Checks:
    """What the validator judges a session with, besides its rubric: built once per run.

    `new_environment` (None when tool outputs are simulated) gives a fresh clone of the template
    for the strict replay; without it the checks that compare with the database are skipped."""

    tools: dict[str, ToolSpec]
    rules: UserRules
    book: PhraseBook
    policy: str
    new_environment: Callable[[], SessionEnvironment] | None = None
    owners: RecordOwners | None = None  # whose records are whose (None: the domain names no owner table)

    @cached_property
    def write_tools(self) -> frozenset[str]:
        return frozenset(name for name, tool in self.tools.items() if tool.kind == "write")

    @cached_property
    def public_text(self) -> str:
        """What anyone may say: the policy and the tools' own documentation and phrasings."""
        docs = [t.description + "\n" + "\n".join(t.phrasings) for t in self.tools.values()]
        return "\n".join([self.policy, *docs])

    @cached_property
    def labels(self) -> frozenset[str]:
        """How the domain's fields are named in dialogue: every parameter and output column."""
        names = {n for t in self.tools.values() for n in t.properties}
        names |= {n for t in self.tools.values() for n in (t.output_schema or {}).get("properties", {})}
        names |= {n for t in self.tools.values() for n in output_columns(t)}
        return frozenset(label(n) for n in names)


def judge(ended: SessionEnded, rubric: Rubric, checks: Checks) -> tuple[list[Reason], int]:
    """All reasons to reject the session (empty = accept), and how many sub-goals it completed.

    Without a database to replay against (simulated tool outputs), the checks that compare with
    the gold replay (final state, fact values, recorded outputs) are skipped: they cannot match.
    """
    grounded = checks.new_environment is not None
    events: list[BaseEvent] = list(ended.transcript)
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
    refused = [g for _, g in rubric.gold_calls if g.expect == "refused"]
    if refused and not REFUSAL_RE.search(assistant_text):  # asked for something not allowed, never told no
        reasons.append(Reason(code="refusal_not_told", detail={"tools": sorted({g.tool for g in refused})}))
    reasons += check_tool_calls(events, checks.tools)
    reasons += check_user_rules(events, checks.rules, checks.book, rubric)
    reasons += check_placeholders(events)
    reasons += check_consent(events, checks.tools)
    reasons += check_refusals(events, rubric, checks.tools, checks.policy)
    reasons += check_raw_errors(events)
    reasons += check_repeats(events, checks.tools)
    reasons += check_leaks(events, checks.public_text)
    reasons += check_readbacks(events, checks.tools, checks.labels)
    if grounded:
        assert checks.new_environment is not None
        reasons += check_grounding(events, checks.policy, checks.labels)
        reasons += check_claims(events, checks.policy)
        if checks.owners is not None:
            reasons += check_disclosure(events, rubric, checks.owners)
        reasons += check_replay(ended, checks.new_environment)
    return reasons, len(completed_subgoals(events, rubric, assistant_text))
