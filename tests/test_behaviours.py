"""Behaviours worth training on, labelled: the offline user produces each at the persona's rates,
the sessions stay accepted (a recovered tool error is a feature, not a rejection), the detectors
read them from any transcript, and a rate of 0 switches a behaviour off."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convosim.cli import app
from convosim.messages import (
    AssistantMessage,
    ToolCall,
    ToolCallRequest,
    ToolOutput,
    ToolResult,
    UserMessage,
)
from convosim.rules.behaviours import recorded_tags, session_tags

from conftest import EXAMPLES
from support import run, scenario_for, transcripts

BEHAVIOURS = ("tool_error_recovery", "clarification", "change_of_mind", "multi_call_subgoal", "refusal")


@pytest.mark.parametrize("example", ["retail", "telecom"])
def test_each_behaviour_in_a_tenth_of_sessions_and_all_accepted(example: str, tmp_path: Path) -> None:
    result = run(scenario_for(EXAMPLES / example / "scenario.yaml", sessions=200), tmp_path / "run")
    assert result.stats["accepted_pct"] >= 95
    tags = result.stats["behaviour_tags"]
    assert {b: tags.get(b, 0) >= 20 for b in BEHAVIOURS} == dict.fromkeys(BEHAVIOURS, True), tags
    sessions = transcripts(tmp_path / "run")
    recovered = [events for row, events in sessions.values() if "tool_error_recovery" in recorded_tags(events)]
    for events in recovered:  # a failed call, then the same tool worked, and the session was accepted
        errors = [r for e in events if isinstance(e, ToolResult) for r in e.results if r.is_error]
        assert errors and any(e.type == "verdict" and e.accepted for e in events)
    exported = CliRunner().invoke(app, ["export", str(tmp_path / "run"), "--out", str(tmp_path / "out")])
    assert exported.exit_code == 0, exported.output
    meta = [json.loads(line) for line in (tmp_path / "out" / "train.metadata.jsonl").read_text().splitlines()]
    assert Counter(t for m in meta for t in m["tags"]) == Counter({k: v for k, v in tags.items()})


def test_a_rate_of_zero_switches_a_behaviour_off(tmp_path: Path) -> None:
    persona = {"wrong_id_rate": 0.0, "change_of_mind_rate": 0.0}
    result = run(scenario_for(EXAMPLES / "retail" / "scenario.yaml", sessions=100, persona=persona), tmp_path / "run")
    tags = result.stats["behaviour_tags"]
    assert "tool_error_recovery" not in tags and "change_of_mind" not in tags
    assert tags["clarification"] > 0 and result.stats["accepted_pct"] == 100


def _events(*pairs: tuple[str, object]) -> list:
    out = []
    for n, (kind, value) in enumerate(pairs):
        base = {"id": f"e{n}", "session_id": "s", "turn": n}
        if kind == "user":
            out.append(UserMessage(**base, sender="user", recipient="assistant", content=str(value)))
        elif kind == "assistant":
            out.append(AssistantMessage(**base, sender="assistant", recipient="user", content=str(value)))
        elif kind == "call":
            name, call_id = value  # type: ignore[misc]
            out.append(
                ToolCallRequest(
                    **base,
                    sender="assistant",
                    recipient="tool_executor",
                    calls=(ToolCall(id=call_id, name=name, arguments={}),),
                )
            )
        else:
            name, call_id, error = value  # type: ignore[misc]
            output = ToolOutput(call_id=call_id, name=name, output={"error": "x"} if error else {}, is_error=error)
            out.append(ToolResult(**base, sender="tool_executor", recipient="assistant", results=(output,)))
    return out


def test_the_detectors_read_an_llm_worded_transcript() -> None:
    """Wording an LLM might use, not the offline grammar's."""
    recovered = _events(
        ("user", "Status of order 77?"),
        ("call", ("get_order", "c1")),
        ("result", ("get_order", "c1", True)),
        ("assistant", "That order doesn't exist."),
        ("user", "Oops, on second thought it's order 71."),
        ("call", ("get_order", "c2")),
        ("result", ("get_order", "c2", False)),
        ("assistant", "Order 71 is pending."),
    )
    assert session_tags(recovered) == ("tool_error_recovery", "change_of_mind")
    asked = _events(
        ("user", "Cancel my order please."), ("assistant", "Sure, which order number is it? What is the order id?")
    )
    assert session_tags(asked) == ("clarification",)
    refused = _events(
        ("user", "Cancel order 3."),
        ("call", ("cancel_order", "c1")),
        ("result", ("cancel_order", "c1", True)),
        ("assistant", "I'm sorry, I can't cancel an order that has shipped."),
    )
    assert session_tags(refused, frozenset({"cancel_order"})) == ("refusal",)
    offered = _events(("user", "Thanks."), ("assistant", "Anything else I can do for you?"))
    assert session_tags(offered) == ()  # offering more help is not asking for a missing value
