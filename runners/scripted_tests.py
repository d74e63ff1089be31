"""`convosim test PATH...`: scripted scenarios with expectations, run like any session.

A test file scripts any role's turns and states what must happen. The user's line is said
verbatim (`say`) or is an intent the scenario's own user policy words (`intent`: a request, or a
move); the assistant's answer to a turn may be scripted too (`assistant`: its tool calls, run for
real, then its words), else the scenario's assistant (offline or an LLM) answers:

    name: cancel a delivered order is refused
    scenario: ../examples/retail/scenario.yaml     # domain, roles (any assistant: offline or LLM)
    task: retail-041                               # the rubric the verdict is judged against
    turns:
      - say: "What's the status of order 1003?"
        expect:
          - tool_called: {name: get_order, arguments: {order_id: 1003}}
          - mentions: delivered
      - intent: {tool: cancel_order, args: {order_id: 1003}}   # worded by the user policy
        expect: [{no_write: true}]
      - intent: {move: goodbye}
        assistant: {say: "Goodbye!"}                           # scripted: no policy involved
    expect:                                        # after the session
      - db: {query: "SELECT status FROM orders WHERE order_id = 1003", rows: [[delivered]]}
      - verdict: rejected

Each test runs as a one-session run in its own folder (`replay` and `logs` work on it); the
database expectations are checked on a fresh clone with the session's recorded calls re-executed
in order. Results print like pytest's; `--junit FILE` writes JUnit XML; any failure exits 1.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from convosim.agents.policies import (
    AssistantAction,
    AssistantObservation,
    AssistantPolicy,
    Intent,
    PlannedCall,
    UserAction,
    UserObservation,
    UserPolicy,
    VoicesIntents,
)
from convosim.config import load_scenario
from convosim.errors import ConvosimError, from_validation_error
from convosim.messages import AssistantMessage, BaseEvent, ToolCallRequest, ToolResult, UserMessage, Verdict
from convosim.runners.roles import PolicyHooks
from convosim.runners.run import load_inputs, run_scenario
from convosim.runners.store import RunStore


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolCalled(_Model):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)  # a subset the call's arguments must contain


class DbRows(_Model):
    query: str
    rows: list[list[Any]]


class Expectation(_Model):
    """Exactly one of the fields."""

    tool_called: ToolCalled | None = None
    no_write: bool | None = None
    mentions: str | None = None
    db: DbRows | None = None
    verdict: str | None = None  # accepted | rejected

    @model_validator(mode="after")
    def _one(self) -> Expectation:
        if len(self.model_fields_set) != 1:
            raise ValueError("an expectation states exactly one of tool_called, no_write, mentions, db, verdict")
        return self

    def describe(self) -> str:
        return json.dumps(self.model_dump(exclude_none=True), sort_keys=True)


class AssistantScript(_Model):
    """The assistant's answer to a turn, scripted: its tool calls (run for real), then its words."""

    calls: list[ToolCalled] = Field(default_factory=list)
    say: str = Field(min_length=1)


class Turn(_Model):
    """One user turn: a line said verbatim (`say`) or an intent the scenario's user policy voices
    (`intent`), optionally the assistant's scripted answer, and what must hold after it."""

    say: str | None = Field(default=None, min_length=1)
    intent: Intent | None = None
    assistant: AssistantScript | None = None
    expect: list[Expectation] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_line(self) -> Turn:
        if (self.say is None) == (self.intent is None):
            raise ValueError("a turn has exactly one of say (the words) or intent (for the user policy to word)")
        if self.intent is not None and (self.intent.tool is None) == (self.intent.move is None):
            raise ValueError("an intent is a request (tool, args) or a move (confirm, goodbye)")
        return self


class ScriptedTest(_Model):
    name: str
    scenario: Path
    task: str | None = None
    turns: list[Turn] = Field(min_length=1)
    expect: list[Expectation] = Field(default_factory=list)


class ScriptedUser:
    """The user of a test: the scripted turns in order, the last one ending the session. A verbatim
    line is said as written; an intent is put in words by the scenario's own user policy (offline
    or LLM), which this wraps."""

    def __init__(self, inner: UserPolicy, turns: list[Turn]) -> None:
        self.inner = inner
        self.turns = turns
        self.said = 0

    async def act(self, observation: UserObservation) -> UserAction:
        turn = self.turns[min(self.said, len(self.turns) - 1)]
        self.said += 1
        if turn.say is not None:
            line = turn.say
        else:
            assert turn.intent is not None
            if not isinstance(self.inner, VoicesIntents):
                raise ValueError(f"the user policy {type(self.inner).__name__} cannot voice an intent")
            line = await self.inner.voice(turn.intent, observation)
        last = self.said >= len(self.turns)
        return UserAction(content=line, done=last, end_reason="completed" if last else None)


class ScriptedAssistant:
    """The assistant of a test: scripted answers on the turns that have one (their tool calls run
    on the session's database like any), the scenario's own assistant on the others."""

    def __init__(self, inner: AssistantPolicy, turns: list[Turn]) -> None:
        self.inner = inner
        self.scripts = {i: t.assistant for i, t in enumerate(turns, start=1) if t.assistant is not None}

    async def act(self, observation: AssistantObservation) -> AssistantAction:
        turn = sum(1 for m in observation.messages if m.get("role") == "user")
        script = self.scripts.get(turn)
        if script is None:
            return await self.inner.act(observation)
        if script.calls and observation.messages[-1].get("role") == "user":
            return AssistantAction(
                tool_calls=tuple(PlannedCall(name=c.name, arguments=c.arguments) for c in script.calls)
            )
        return AssistantAction(content=script.say)


@dataclass
class Failure:
    where: str  # "turn 2" or "end"
    expectation: str
    why: str
    excerpt: list[str] = field(default_factory=list)


@dataclass
class TestResult:
    name: str
    path: Path
    run_dir: Path
    checked: int
    failures: list[Failure]
    error: str | None = None

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None


def load_test(path: Path) -> ScriptedTest:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConvosimError(path, None, f"cannot read the test: {exc}") from exc
    if not isinstance(data, dict):
        raise ConvosimError(path, None, "a test is a mapping with name, scenario, turns")
    data.setdefault("name", path.stem)
    try:
        test = ScriptedTest.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(path, exc) from exc
    scenario = test.scenario if test.scenario.is_absolute() else (path.parent / test.scenario).resolve()
    return test.model_copy(update={"scenario": scenario})


def _by_turn(events: list[BaseEvent]) -> dict[int, list[BaseEvent]]:
    """Events answering each user message (its turn), user message first."""
    out: dict[int, list[BaseEvent]] = {}
    for event in events:
        if isinstance(event, UserMessage | AssistantMessage | ToolCallRequest | ToolResult):
            out.setdefault(event.turn, []).append(event)
    return out


def _excerpt(events: list[BaseEvent]) -> list[str]:
    lines = []
    for e in events:
        if isinstance(e, UserMessage | AssistantMessage):
            lines.append(f"{e.sender}: {e.content}")
        elif isinstance(e, ToolCallRequest):
            lines += [f"call {c.name} {json.dumps(c.arguments, sort_keys=True)}" for c in e.calls]
        elif isinstance(e, ToolResult):
            lines += [f"{r.name}{' ERROR' if r.is_error else ''} -> {json.dumps(r.output)[:200]}" for r in e.results]
    return lines


def _check(
    expectation: Expectation, events: list[BaseEvent], writes: set[str], db: Any, verdict: Verdict | None
) -> str | None:
    """None if the expectation holds, else why not."""
    calls = [c for e in events if isinstance(e, ToolCallRequest) for c in e.calls]
    results = {r.call_id: r for e in events if isinstance(e, ToolResult) for r in e.results}
    if expectation.tool_called is not None:
        want = expectation.tool_called
        for call in calls:
            args = call.arguments if isinstance(call.arguments, dict) else {}
            if call.name == want.name and all(args.get(k) == v for k, v in want.arguments.items()):
                return None
        return f"no call of {want.name} with {want.arguments}; calls: {[c.name for c in calls] or 'none'}"
    if expectation.no_write is not None:
        done = [c.name for c in calls if c.name in writes and c.id in results and not results[c.id].is_error]
        return f"a write went through: {done}" if done and expectation.no_write else None
    if expectation.mentions is not None:
        said = " ".join(e.content for e in events if isinstance(e, AssistantMessage))
        return (
            None
            if expectation.mentions.casefold() in said.casefold()
            else f"the assistant never said {expectation.mentions!r}"
        )
    if expectation.db is not None:
        rows = [list(r) for r in db.execute(expectation.db.query).fetchall()]
        return None if rows == expectation.db.rows else f"rows {rows}, expected {expectation.db.rows}"
    status = "accepted" if verdict is not None and verdict.accepted else "rejected"
    if status == expectation.verdict:
        return None
    reasons = [r.code for r in verdict.reasons] if verdict is not None else ["no verdict"]
    return f"verdict {status} ({', '.join(reasons) or 'no reasons'}), expected {expectation.verdict}"


def run_test(path: Path, out_root: Path, roles: dict[str, Any] | None = None) -> TestResult:
    test = load_test(path)
    scenario = load_scenario(test.scenario, {"roles": roles} if roles else None)
    domain, tasks, _ = load_inputs(scenario)
    task = next((t for t in tasks if t.id == test.task), None) if test.task else tasks[0]
    if task is None:
        raise ConvosimError(path, "task", f"{test.task!r} is not a task of {scenario.tasks}")
    run_dir = out_root / path.stem
    one_task = run_dir.parent / f".{path.stem}.tasks.yaml"
    one_task.parent.mkdir(parents=True, exist_ok=True)
    one_task.write_text(yaml.safe_dump([task.model_dump(mode="json")], sort_keys=False), encoding="utf-8")
    scenario = scenario.model_copy(update={"sessions": 1, "tasks": one_task, "concurrency": 1})
    scripted = any(t.assistant is not None for t in test.turns)
    hooks = PolicyHooks(
        wrap_user=lambda policy: ScriptedUser(policy, test.turns),
        wrap_assistant=(lambda policy: ScriptedAssistant(policy, test.turns)) if scripted else None,
    )
    run_scenario(scenario, run_dir, show_progress=False, hooks=hooks)
    store = RunStore(run_dir / "run.sqlite")
    try:
        events = list(store.events(store.sessions()[0]["session_id"]))
    finally:
        store.close()
    verdict = next((e for e in reversed(events) if isinstance(e, Verdict)), None)
    writes = {n for n, t in domain.tools.items() if t.kind == "write"}
    env = domain.new_session()  # the session's database again: its successful calls re-run in order
    try:
        results = {r.call_id: r for e in events if isinstance(e, ToolResult) for r in e.results}
        for event in events:
            for call in event.calls if isinstance(event, ToolCallRequest) else ():
                if call.id in results and not results[call.id].is_error:
                    env.call(call.id, call.name, call.arguments)
        turns = _by_turn(events)
        user_turns = sorted(t for t, evs in turns.items() if any(isinstance(e, UserMessage) for e in evs))
        failures, checked = [], 0
        for i, turn in enumerate(test.turns):
            here = turns.get(user_turns[i], []) if i < len(user_turns) else []
            for expectation in turn.expect:
                checked += 1
                why = _check(expectation, here, writes, env.db.conn, verdict)
                if why is not None:
                    failures.append(Failure(f"turn {i + 1}", expectation.describe(), why, _excerpt(here)))
        for expectation in test.expect:
            checked += 1
            why = _check(expectation, events, writes, env.db.conn, verdict)
            if why is not None:
                failures.append(Failure("end", expectation.describe(), why, _excerpt(events)[-8:]))
    finally:
        env.close()
    return TestResult(test.name, path, run_dir, checked, failures)


def junit_xml(results: list[TestResult]) -> str:
    suite = ET.Element(
        "testsuite",
        name="convosim",
        tests=str(len(results)),
        failures=str(sum(not r.passed for r in results)),
    )
    for result in results:
        case = ET.SubElement(suite, "testcase", classname=str(result.path), name=result.name)
        for failure in result.failures:
            node = ET.SubElement(case, "failure", message=f"{failure.where}: {failure.expectation}: {failure.why}")
            node.text = "\n".join(failure.excerpt)
        ET.SubElement(case, "system-out").text = f"run: {result.run_dir}"
    return ET.tostring(suite, encoding="unicode")
