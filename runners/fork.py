"""Counterfactual replay: restore a recorded session at turn K and let the roles go on live.

Before turn K every role says exactly what the recording says (the environment re-executes the
recorded calls, so the database is restored too, and offline policies are fed the same
observations so their state is what it was). From turn K on, every role is live again; the roles
named with `--live` are played by the policy you choose (offline, or an LLM per `--ROLE-model`).
The result is a new session in the same run store, linked to its parent, judged like any other.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convosim import logs
from convosim.agents.policies import (
    AssistantAction,
    AssistantObservation,
    AssistantPolicy,
    PlannedCall,
    UserAction,
    UserObservation,
    UserPolicy,
)
from convosim.config import Scenario, deep_merge, scenario_from_record
from convosim.environments.domain import load_domain
from convosim.environments.tasks import load_tasks
from convosim.errors import ConvosimError
from convosim.messages import AssistantMessage, ToolCallRequest, UserMessage
from convosim.runners.replay import Recording, load_recording, open_store
from convosim.runners.roles import PolicyHooks
from convosim.runners.run import export
from convosim.runners.session import SessionSpec
from convosim.runners.session_factory import SessionFactory

ROLES = ("user", "assistant", "tool_executor", "validator")


class ReplayedUser:
    """Says the recorded user messages before turn K (keeping a warm inner policy in step), then live."""

    def __init__(self, recorded: dict[int, UserMessage], from_turn: int, inner: UserPolicy, warm: bool) -> None:
        self.recorded, self.from_turn, self.inner, self.warm = recorded, from_turn, inner, warm

    async def act(self, observation: UserObservation) -> UserAction:
        if observation.turn < self.from_turn and observation.turn in self.recorded:
            if self.warm:
                await self.inner.act(observation)
            m = self.recorded[observation.turn]
            return UserAction(content=m.content, done=m.done, end_reason=m.end_reason)
        return await self.inner.act(observation)


class ReplayedAssistant:
    """Takes the recorded assistant actions, in order, while the conversation is before turn K."""

    def __init__(
        self, recorded: list[tuple[int, AssistantAction]], from_turn: int, inner: AssistantPolicy, warm: bool
    ) -> None:
        self.recorded, self.from_turn, self.inner, self.warm = list(recorded), from_turn, inner, warm

    async def act(self, observation: AssistantObservation) -> AssistantAction:
        turn = sum(1 for m in observation.messages if m["role"] == "user")
        if turn < self.from_turn and self.recorded and self.recorded[0][0] == turn:
            if self.warm:
                await self.inner.act(observation)
            return self.recorded.pop(0)[1]
        return await self.inner.act(observation)


@dataclass
class ForkResult:
    session_id: str
    status: str
    parent_session_id: str
    fork_turn: int


def _recorded_actions(recording: Recording) -> tuple[dict[int, UserMessage], list[tuple[int, AssistantAction]]]:
    users = {e.turn: e for e in recording.events if isinstance(e, UserMessage)}
    actions: list[tuple[int, AssistantAction]] = []
    for e in recording.events:
        if isinstance(e, ToolCallRequest):
            calls = tuple(PlannedCall(name=c.name, arguments=c.arguments) for c in e.calls)
            actions.append((e.turn, AssistantAction(tool_calls=calls)))
        elif isinstance(e, AssistantMessage):
            actions.append((e.turn, AssistantAction(content=e.content)))
    return users, actions


def fork_session(
    run_dir: str | Path,
    session_id: str,
    from_turn: int,
    live: set[str],
    role_overrides: dict[str, dict[str, Any]] | None = None,
) -> ForkResult:
    recording = load_recording(run_dir, session_id)
    if from_turn < 1 or from_turn > max(recording.turns):
        raise ConvosimError(None, "--from-turn", f"must be between 1 and {max(recording.turns)}")
    unknown = live - set(ROLES)
    if unknown:
        raise ConvosimError(None, "--live", f"unknown role(s) {sorted(unknown)}; choose from {', '.join(ROLES)}")
    data = deep_merge(recording.scenario, {"roles": {r: o for r, o in (role_overrides or {}).items() if r in live}})
    scenario = scenario_from_record(data)
    logs.configure(recording.run_dir / "convosim.log.jsonl")
    try:
        return asyncio.run(_fork(recording, scenario, from_turn))
    finally:
        logs.configure(None)


async def _fork(recording: Recording, scenario: Scenario, from_turn: int) -> ForkResult:
    domain = load_domain(scenario.domain)
    tasks, rubrics = load_tasks(scenario.tasks, domain)
    task = next((t for t in tasks if t.id == recording.session["task_id"]), None)
    if task is None:
        raise ConvosimError(scenario.tasks, "tasks", f"task {recording.session['task_id']!r} is no longer there")
    store = open_store(recording.run_dir)
    parent = recording.session_id
    sessions = store.sessions()
    forks = sum(1 for r in sessions if r["parent_session_id"] == parent)
    child = f"{parent}-k{from_turn}-{forks + 1}"
    idx = 1 + max(r["idx"] for r in sessions)
    users, actions = _recorded_actions(recording)
    hooks = PolicyHooks(
        seeds_from=lambda _sid: parent,  # the parent's offline user and assistant, in the same state
        wrap_user=lambda p: ReplayedUser(users, from_turn, p, warm=scenario.roles.user.policy == "offline"),
        wrap_assistant=lambda p: ReplayedAssistant(
            actions, from_turn, p, warm=scenario.roles.assistant.policy == "offline"
        ),
    )
    started = time.time()
    async with SessionFactory(scenario, domain, rubrics, hooks=hooks) as factory:
        outcome = await factory.run(SessionSpec(idx=idx, session_id=child, task=task, trial=recording.session["trial"]))
    try:
        store.write_session(
            run_id=recording.session["run_id"],
            session_id=child,
            idx=idx,
            task_id=task.id,
            trial=recording.session["trial"],
            status=outcome.status,
            end_reason=outcome.end_reason,
            started_at=started,
            events=outcome.events,
            verdict=outcome.verdict,
            usage=outcome.usage,
            parent_session_id=parent,
            fork_turn=from_turn,
        )
        export(store, recording.session["run_id"], domain, recording.run_dir, scenario.near_duplicate_threshold)
    finally:
        store.close()
    return ForkResult(child, outcome.status, parent, from_turn)
