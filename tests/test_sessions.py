"""Whole sessions through the real bus and real SQLite, asserted on the recorded transcript."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from convosim.agents.assistant import AssistantRole
from convosim.agents.offline_assistant import OfflineAssistantPolicy
from convosim.agents.offline_language import CONFIRM_RE, READBACK_RE
from convosim.agents.policies import AssistantAction, AssistantObservation
from convosim.environments.domain import load_domain
from convosim.environments.phrasing import PhraseBook
from convosim.environments.tasks import load_tasks
from convosim.messages import (
    AssistantMessage,
    BaseEvent,
    ConversationClosed,
    SessionEnded,
    SessionStarted,
    ToolCallRequest,
    ToolResult,
    UserMessage,
    Verdict,
)
from convosim.models import Rubric, Task, ToolSpec
from convosim.rules.checks import subgoals_in_message
from convosim.runners.run import RunResult

from support import run, scenario_for, transcripts


@dataclass
class RetailRun:
    result: RunResult
    sessions: dict[str, tuple[dict[str, Any], list[BaseEvent]]]
    tasks: dict[str, Task]
    rubrics: dict[str, Rubric]
    book: PhraseBook
    tools: dict[str, ToolSpec]


class RecordingAssistant:
    """The real offline assistant policy, keeping every observation it was given."""

    seen: ClassVar[list[AssistantObservation]] = []

    def __init__(self, book: PhraseBook) -> None:
        self.inner = OfflineAssistantPolicy(book)

    async def act(self, observation: AssistantObservation) -> AssistantAction:
        RecordingAssistant.seen.append(observation)
        return await self.inner.act(observation)


@pytest.fixture(scope="module")
def retail_run(tmp_path_factory, retail_dir):
    out = tmp_path_factory.mktemp("retail") / "run"
    scenario = scenario_for(retail_dir / "scenario.yaml", sessions=16, concurrency=8)
    domain = load_domain(retail_dir)
    book = PhraseBook(domain.tools)
    RecordingAssistant.seen = []

    def assistant(session_id: str) -> AssistantRole:
        return AssistantRole(session_id, RecordingAssistant(book), domain.policy, domain.openai_tools(), 6)

    result = run(scenario, out, overrides={"assistant": assistant})
    tasks, rubrics = load_tasks(retail_dir / "tasks.yaml", domain)
    return RetailRun(result, transcripts(out), {t.id: t for t in tasks}, rubrics, book, domain.tools)


def test_every_session_follows_the_bus_protocol(retail_run) -> None:
    sessions = retail_run.sessions
    assert len(sessions) == 16
    for row, events in sessions.values():
        assert isinstance(events[0], SessionStarted) and events[0].recipient == "user"
        assert isinstance(events[-1], Verdict) and events[-1].accepted == (row["status"] == "accepted")
        assert isinstance(events[-2], SessionEnded) and isinstance(events[-3], ConversationClosed)
        assert all(e.session_id == row["session_id"] for e in events)
        # Causal order: each tool result follows its request, each assistant reply follows a user turn.
        pending: set[str] = set()
        for e in events:
            if isinstance(e, ToolCallRequest):
                pending |= {c.id for c in e.calls}
            if isinstance(e, ToolResult):
                assert {r.call_id for r in e.results} <= pending
                pending -= {r.call_id for r in e.results}
        assert not pending
        turns = [e.turn for e in events if isinstance(e, UserMessage)]
        assert turns == list(range(1, len(turns) + 1))
        assert events[-4].type == "assistant_message"  # the assistant answered the end marker
        last_user = [e for e in events if isinstance(e, UserMessage)][-1]
        assert last_user.done and last_user.end_reason == "completed"


def test_tool_calls_really_changed_the_session_database(retail_run) -> None:
    sessions, rubrics, tools = retail_run.sessions, retail_run.rubrics, retail_run.tools
    for row, events in sessions.values():
        ended = next(e for e in events if isinstance(e, SessionEnded))
        rubric = rubrics[row["task_id"]]
        assert ended.state_hash == rubric.expected_state_hash
        writes = any(tools[c.name].kind == "write" for e in events if isinstance(e, ToolCallRequest) for c in e.calls)
        assert bool(ended.state_diff) == writes


def test_assistant_never_receives_task_text(retail_run) -> None:
    sessions, tasks = retail_run.sessions, retail_run.tasks
    assert RecordingAssistant.seen, "the assistant policy was never called"
    private = set()
    for task in tasks.values():
        private |= {task.goal, task.context} | {s.description for s in task.subgoals}
    private.discard("")
    for observation in RecordingAssistant.seen:
        blob = observation.model_dump_json()
        leaked = [text for text in private if text in blob]
        assert not leaked, leaked[:2]
    for _, events in sessions.values():
        to_assistant = [e for e in events if e.recipient == "assistant"]
        assert {e.type for e in to_assistant} <= {"user_message", "tool_result"}
        for e in to_assistant:
            blob = e.model_dump_json()
            assert not [text for text in private if text in blob]


def test_task_reaches_only_the_user(retail_run) -> None:
    sessions = retail_run.sessions
    for _, events in sessions.values():
        assert [e.recipient for e in events if isinstance(e, SessionStarted)] == ["user"]
        ended = [e for e in events if isinstance(e, SessionEnded)]
        assert [e.recipient for e in ended] == ["validator"]


def test_user_messages_respect_the_subgoal_limit(retail_run) -> None:
    sessions, rubrics, book = retail_run.sessions, retail_run.rubrics, retail_run.book
    seen_two = False
    for row, events in sessions.values():
        rubric = rubrics[row["task_id"]]
        for e in events:
            if isinstance(e, UserMessage):
                count = len(subgoals_in_message(e.content, book, rubric.gold_calls))
                assert count <= 2, e.content
                seen_two |= count == 2
    assert seen_two, "no user message ever joined two sub-goals"


def test_user_never_sees_tool_calls(retail_run) -> None:
    sessions = retail_run.sessions
    for _, events in sessions.values():
        to_user = {e.type for e in events if e.recipient == "user"}
        assert to_user == {"session_started", "assistant_message"}


def test_sessions_are_multi_turn_and_multi_subgoal(retail_run) -> None:
    result = retail_run.result
    stats = result.stats
    assert stats["accepted_pct"] >= 90
    assert stats["mean_subgoals"] >= 2.5
    assert stats["mean_user_turns"] >= 5
    assert json.loads((result.out_dir / "stats.json").read_text()) == stats


def test_logs_carry_session_and_agent(retail_run) -> None:
    result, sessions = retail_run.result, retail_run.sessions
    lines = [json.loads(line) for line in (result.out_dir / "convosim.log.jsonl").read_text().splitlines()]
    finished = [line for line in lines if line["event"] == "session_finished"]
    assert {line["session_id"] for line in finished} == set(sessions)
    assert all(line["agent"] == "runner" for line in finished)


def _texts(events) -> list[str]:
    return [e.content for e in events if isinstance(e, UserMessage | AssistantMessage)]


def test_read_back_and_correction_moves_happen(retail_run) -> None:
    sessions = retail_run.sessions
    all_text = "\n".join(t for _, events in sessions.values() for t in _texts(events))
    assert CONFIRM_RE.search(all_text)
    assert READBACK_RE.search(all_text)


def test_out_dir_with_a_run_is_never_overwritten(tmp_path: Path, retail_dir) -> None:
    from convosim.errors import ConvosimError

    out = tmp_path / "run"
    scenario = scenario_for(retail_dir / "scenario.yaml", sessions=2, concurrency=2)
    run(scenario, out)
    before = (out / "dataset.jsonl").read_bytes()
    with pytest.raises(ConvosimError, match="already holds a run"):
        run(scenario, out)
    assert (out / "dataset.jsonl").read_bytes() == before


def test_finished_sessions_leave_nothing_behind(retail_dir) -> None:
    """Agents, cached topics, environments and buffers are released as each session ends."""
    import asyncio

    from convosim.config import load_scenario
    from convosim.runners.run import load_inputs, session_specs
    from convosim.runners.session_factory import SessionFactory

    scenario = load_scenario(retail_dir / "scenario.yaml", {"sessions": 120, "concurrency": 24})
    domain, tasks, rubrics = load_inputs(scenario)

    async def go() -> tuple[dict[str, int], int, list[str]]:
        statuses: list[str] = []
        async with SessionFactory(scenario, domain, rubrics) as sessions:
            await sessions.run_all(
                session_specs(scenario, tasks), scenario.concurrency, lambda o: statuses.append(o.status)
            )
            return sessions.engine.bus.footprint(), len(sessions.engine.live), statuses

    footprint, live, statuses = asyncio.run(go())
    assert len(statuses) == 120 and set(statuses) == {"accepted"}
    assert footprint == {"agents": 0, "topics": 0} and live == 0
