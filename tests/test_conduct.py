"""The offline assistant acts by its domain's policy: it checks a write's precondition on the record
before offering it, refuses a forbidden change with the policy's reason (never reading it back nor
attempting it), reads an allowed change back and makes it only after a yes, and tells tool errors
in plain words. Each behaviour is shown on real runs of both examples and on the policy directly.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from convosim.agents.offline_assistant import OfflineAssistantPolicy
from convosim.agents.policies import AssistantObservation
from convosim.environments.domain import load_domain
from convosim.environments.phrasing import PhraseBook
from convosim.environments.tasks import load_tasks
from convosim.messages import AssistantMessage, ToolCallRequest, ToolResult, UserMessage
from convosim.rules.behaviours import REFUSAL_RE
from convosim.rules.conduct import AGREE

from conftest import EXAMPLES
from support import run, scenario_for, transcripts


def _observe(*messages: dict[str, str]) -> AssistantObservation:
    return AssistantObservation(system="policy", messages=tuple(messages), tools=())


def test_a_forbidden_change_seen_in_the_conversation_is_refused_at_once_with_the_reason() -> None:
    domain = load_domain(EXAMPLES / "retail")
    policy = OfflineAssistantPolicy(PhraseBook(domain.tools), seed=1)
    shown = {"order_id": 1016, "status": "shipped", "total": 10.0, "shipping_address": "x", "created_at": "2026-01-02"}
    action = asyncio.run(
        policy.act(
            _observe(
                {"role": "tool", "content": json.dumps(shown), "tool_call_id": "c1"},
                {"role": "user", "content": "Please cancel order 1016."},
            )
        )
    )
    assert action.tool_calls == () and action.content is not None
    assert REFUSAL_RE.search(action.content) and "shipped" in action.content and "pending" in action.content
    assert "?" not in action.content.split(".")[0]  # nothing offered


def test_an_unseen_record_is_read_first_then_an_allowed_change_is_read_back() -> None:
    domain = load_domain(EXAMPLES / "retail")
    policy = OfflineAssistantPolicy(PhraseBook(domain.tools), seed=1)
    first = asyncio.run(policy.act(_observe({"role": "user", "content": "Please cancel order 1001."})))
    assert [(c.name, c.arguments) for c in first.tool_calls] == [("get_order", {"order_id": 1001})]
    row = {"order_id": 1001, "status": "pending", "total": 1.0, "shipping_address": "x", "created_at": "2026-01-02"}
    second = asyncio.run(
        policy.act(
            _observe(
                {"role": "user", "content": "Please cancel order 1001."},
                {"role": "tool", "content": json.dumps(row), "tool_call_id": "c1"},
            )
        )
    )
    assert second.tool_calls == () and second.content is not None
    assert "1001" in second.content and second.content.rstrip().endswith("?")  # read back, then asked


def test_a_tool_error_is_told_in_plain_words() -> None:
    domain = load_domain(EXAMPLES / "retail")
    policy = OfflineAssistantPolicy(PhraseBook(domain.tools), seed=3)
    asyncio.run(policy.act(_observe({"role": "user", "content": "What's the status of order 9999?"})))
    error = {"error": "no matching record found"}
    reply = asyncio.run(
        policy.act(
            _observe(
                {"role": "user", "content": "What's the status of order 9999?"},
                {"role": "tool", "content": json.dumps(error), "tool_call_id": "c1"},
            )
        )
    )
    assert reply.content is not None and "9999" in reply.content
    assert "no matching record" not in reply.content.lower()


@pytest.mark.parametrize("name", ["retail", "telecom"])
def test_in_real_runs_refusals_carry_the_reason_and_writes_follow_a_yes(name: str, tmp_path: Path) -> None:
    scenario = scenario_for(EXAMPLES / name / "scenario.yaml", sessions=60, seed=11)
    result = run(scenario, tmp_path / "out")
    assert result.stats["accepted"] == 60, result.stats
    domain = load_domain(scenario.domain)
    _, rubrics = load_tasks(scenario.tasks, domain)
    refusals = writes = 0
    for row, events in transcripts(tmp_path / "out").values():
        forbidden = {g.tool for _, g in rubrics[row["task_id"]].gold_calls if g.expect == "refused"}
        for i, event in enumerate(events):
            if not isinstance(event, ToolCallRequest):
                continue
            for call in event.calls:
                assert call.name not in forbidden, f"{row['session_id']}: a forbidden change was attempted"
                if domain.tools[call.name].kind == "write":
                    writes += 1
                    said = [e for e in events[:i] if isinstance(e, UserMessage)][-1]
                    asked = [e for e in events[:i] if isinstance(e, AssistantMessage)][-1]
                    assert AGREE.search(said.content) and asked.content.rstrip().endswith("?")
        for tool in forbidden:
            rule = domain.tools[tool].precondition
            assert rule is not None
            told = [e.content for e in events if isinstance(e, AssistantMessage) and REFUSAL_RE.search(e.content)]
            assert any(rule.reason in t for t in told), told
            refusals += 1
        errors = [r for e in events if isinstance(e, ToolResult) for r in e.results if r.is_error]
        for error in errors:
            text = str(error.output["error"]) if isinstance(error.output, dict) else ""
            spoken = " ".join(e.content for e in events if isinstance(e, AssistantMessage))
            assert not re.search(re.escape(text), spoken, re.IGNORECASE)
    print(f"{name}: {refusals} refusals with their reason, {writes} writes each after a read-back and a yes")
    assert refusals >= 3 and writes >= 20
