"""The validator rejects what is wrong, with machine-readable reasons, and keeps rejected sessions."""

from __future__ import annotations

import json
import random

import pytest
import yaml

from convosim.agents.assistant import AssistantRole
from convosim.agents.offline_assistant import OfflineAssistantPolicy
from convosim.agents.offline_user import OfflineUserPolicy
from convosim.agents.policies import AssistantAction, AssistantObservation, PlannedCall
from convosim.agents.user import UserSimulator
from convosim.environments.domain import load_domain
from convosim.environments.phrasing import PhraseBook
from convosim.rules.user_rules import UserRules

from support import run, scenario_for, transcripts


class SkipsWrites:
    """Says a change is done without making it: the user is satisfied, the database is not."""

    def __init__(self, book: PhraseBook) -> None:
        self.inner = OfflineAssistantPolicy(book)
        self.writes = {name for name, tool in book.tools.items() if tool.kind == "write"}

    async def act(self, observation: AssistantObservation) -> AssistantAction:
        action = await self.inner.act(observation)
        call = action.tool_calls[0] if action.tool_calls else None
        if call is not None and call.name in self.writes:
            self.inner.running = None
            values = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in call.arguments.items())
            return AssistantAction(content=f"Done, the change is saved: {values}. Anything else?")
        return action


class CallsUnknownTools:
    def __init__(self, book: PhraseBook) -> None:
        self.inner = OfflineAssistantPolicy(book)
        self.first = True

    async def act(self, observation: AssistantObservation) -> AssistantAction:
        if self.first:
            self.first = False
            return AssistantAction(tool_calls=(PlannedCall(name="teleport_order", arguments={"x": 1}),))
        if observation.messages[-1]["role"] == "tool" and "teleport" in observation.messages[-1]["content"]:
            return await self.inner.act(observation.model_copy(update={"messages": observation.messages[:-2]}))
        return await self.inner.act(observation)


class Crashes:
    async def act(self, observation: AssistantObservation) -> AssistantAction:
        raise RuntimeError("model exploded")


@pytest.fixture(scope="module")
def retail(retail_dir):
    domain = load_domain(retail_dir)
    return domain, PhraseBook(domain.tools)


def _assistant(domain, policy_factory):
    return lambda sid: AssistantRole(sid, policy_factory(), domain.policy, domain.openai_tools(), 6)


def test_unmade_change_is_rejected_with_the_state_diff(tmp_path, retail_dir, retail) -> None:
    domain, book = retail
    scenario = scenario_for(retail_dir / "scenario.yaml", sessions=3, concurrency=3)  # tasks 1-3 all write
    result = run(scenario, tmp_path / "run", overrides={"assistant": _assistant(domain, lambda: SkipsWrites(book))})
    assert result.stats["accepted"] == 0 and result.stats["rejected"] == 3
    rejected = [json.loads(line) for line in (tmp_path / "run" / "rejected.jsonl").read_text().splitlines()]
    assert len(rejected) == 3 and (tmp_path / "run" / "dataset.jsonl").read_text() == ""
    for item in rejected:
        codes = {r["code"] for r in item["reasons"]}
        assert "state_mismatch" in codes
        mismatch = next(r for r in item["reasons"] if r["code"] == "state_mismatch")
        assert mismatch["detail"]["expected"] and mismatch["detail"]["actual"] == {}
        assert item["messages"], "rejected sessions keep their transcript"


def test_unknown_tool_call_is_reported(tmp_path, retail_dir, retail) -> None:
    domain, book = retail
    scenario = scenario_for(retail_dir / "scenario.yaml", sessions=1, concurrency=1)
    result = run(
        scenario, tmp_path / "run", overrides={"assistant": _assistant(domain, lambda: CallsUnknownTools(book))}
    )
    [(row, _events)] = transcripts(tmp_path / "run").values()
    assert row["status"] == "rejected"
    codes = [r["code"] for r in row["reasons"]]
    assert "invalid_tool_call" in codes
    assert result.stats["tool_error_rate"] > 0


def test_user_breaking_the_subgoal_rule_is_rejected(tmp_path, retail_dir, retail) -> None:
    _domain, book = retail
    tasks = yaml.safe_load((retail_dir / "tasks.yaml").read_text())
    independent = [t for t in tasks if t["subgoals"][0]["requests"][0]["tool"] == "search_products"]
    (tmp_path / "tasks.yaml").write_text(yaml.safe_dump(independent))
    scenario = scenario_for(retail_dir / "scenario.yaml", sessions=6, concurrency=3, tasks=tmp_path / "tasks.yaml")
    greedy = UserRules(max_subgoals_per_message=4, join_probability=1.0)

    def user(sid: str) -> UserSimulator:
        return UserSimulator(sid, OfflineUserPolicy(book, greedy, scenario.persona, 1), greedy)

    run(scenario, tmp_path / "run", overrides={"user": user})
    rows = [row for row, _ in transcripts(tmp_path / "run").values()]
    flagged = [row for row in rows if any(r["code"] == "rule_too_many_subgoals" for r in row["reasons"])]
    assert flagged and all(row["status"] == "rejected" for row in flagged)
    detail = next(r for r in flagged[0]["reasons"] if r["code"] == "rule_too_many_subgoals")["detail"]
    assert len(detail["subgoals"]) > detail["max"] == 2


def test_a_crashing_agent_fails_only_its_session(tmp_path, retail_dir, retail) -> None:
    domain, book = retail
    scenario = scenario_for(retail_dir / "scenario.yaml", sessions=6, concurrency=3)
    doomed: set[str] = set()

    def assistant(sid: str) -> AssistantRole:
        if len(doomed) < 2 and sid not in doomed:
            doomed.add(sid)
            return AssistantRole(sid, Crashes(), domain.policy, domain.openai_tools(), 6)
        return AssistantRole(sid, OfflineAssistantPolicy(book), domain.policy, domain.openai_tools(), 6)

    result = run(scenario, tmp_path / "run", overrides={"assistant": assistant})
    rows = {row["session_id"]: row for row, _ in transcripts(tmp_path / "run").values()}
    assert len(rows) == 6
    assert {sid for sid, row in rows.items() if row["status"] == "failed"} == doomed
    assert all(row["status"] == "accepted" for sid, row in rows.items() if sid not in doomed)
    assert result.stats["failed"] == 2
    log = [json.loads(x) for x in (tmp_path / "run" / "convosim.log.jsonl").read_text().splitlines()]
    failures = [x for x in log if x["event"] == "handler_failed"]
    assert {x["session_id"] for x in failures} == doomed and {x["agent"] for x in failures} == {"assistant"}
    rejected = [json.loads(x) for x in (tmp_path / "run" / "rejected.jsonl").read_text().splitlines()]
    assert {x["session_id"] for x in rejected} == doomed


class AlwaysWrongTool:
    async def act(self, observation: AssistantObservation) -> AssistantAction:
        return AssistantAction(tool_calls=(PlannedCall(name="nope", arguments={}),))


def test_tool_error_limit_ends_the_session_with_a_reason(tmp_path, retail_dir, retail) -> None:
    domain, _ = retail
    scenario = scenario_for(retail_dir / "scenario.yaml", sessions=2, limits={"max_tool_errors": 3})
    run(scenario, tmp_path / "run", overrides={"assistant": _assistant(domain, AlwaysWrongTool)})
    for row, events in transcripts(tmp_path / "run").values():
        assert row["status"] == "rejected" and row["end_reason"] == "limit"
        closed = [e for e in events if e.type == "conversation_closed"]
        assert closed[0].detail == "more than 3 tool errors" and closed[0].limit == "tool_errors"
        assert {"code": "not_completed", "detail": "limit"} in row["reasons"]


@pytest.mark.parametrize(
    ("value", "text", "told"),
    [
        (59.9, "The new total is $59.90.", True),
        (59.9, "It comes to 59.9 in total", True),
        (1059.9, "That's $1,059.90.", True),
        (59.9, "The total is 59.99.", False),
        (1001, "Order 1001 is pending.", True),
        (1001, "Order 10010 is pending.", False),
        ("Shipped", "your order has been shipped", True),
        ("delivered", "it is pending", False),
    ],
)
def test_facts_match_however_the_assistant_writes_them(value, text, told) -> None:
    from convosim.rules.checks import fact_told

    assert fact_told(value, text) is told


def test_subgoal_rule_holds_for_a_user_the_phrase_book_cannot_parse(retail_dir, retail) -> None:
    """An LLM user words requests its own way; what the assistant did in reply shows what it asked."""
    from convosim.environments.tasks import load_tasks
    from convosim.messages import ToolCall, ToolCallRequest, UserMessage
    from convosim.rules.checks import check_user_rules

    domain, book = retail
    _, rubrics = load_tasks(retail_dir / "tasks.yaml", domain)
    rubric = next(r for r in rubrics.values() if len({k for k, _ in r.gold_calls}) >= 3)
    common = {"session_id": "s", "turn": 1}
    said = "hey so basically sort out everything on my list for me pls"
    asked = UserMessage(id="u", sender="user", recipient="assistant", content=said, **common)
    calls = tuple(ToolCall(id=f"c{i}", name=g.tool, arguments=g.args) for i, (_, g) in enumerate(rubric.gold_calls))
    request = ToolCallRequest(id="r", sender="assistant", recipient="tool_executor", calls=calls, **common)
    bye = UserMessage(id="b", sender="user", recipient="assistant", content="bye", done=True, **common)
    codes = [r.code for r in check_user_rules([asked, request, bye], UserRules(), book, rubric)]
    assert codes == ["rule_too_many_subgoals"]
    one_each = [asked, request.model_copy(update={"calls": calls[:1]}), bye]
    assert check_user_rules(one_each, UserRules(), book, rubric) == []


def test_a_user_told_not_to_react_goes_straight_to_the_next_request(tmp_path, retail_dir) -> None:
    from convosim.agents.offline_speech import as_regex, expand
    from convosim.agents.offline_user import REACTIONS
    from convosim.rules.user_rules import rule_texts

    reactions = [as_regex(pattern) for pattern in REACTIONS.values()]
    scenario = scenario_for(retail_dir / "scenario.yaml", sessions=20, rules={"react_to_every_answer": False})
    result = run(scenario, tmp_path / "run")
    assert result.stats["accepted"] == 20
    said = [
        e.content for _, events in transcripts(tmp_path / "run").values() for e in events if e.type == "user_message"
    ]
    assert not [s for s in said if any(r.match(s) for r in reactions)]
    # the check can fail: a reaction of each kind is recognised at the start of a message
    reacted = [f"{expand(random.Random(i), p)} Could you check order 1001?" for i, p in enumerate(REACTIONS.values())]
    assert all(any(r.match(s) for r in reactions) for s in reacted)
    assert not any(t.startswith("React to every answer") for t in rule_texts(scenario.rules))
    assert any(t.startswith("React to every answer") for t in rule_texts(UserRules()))
