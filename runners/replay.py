"""Looking inside a recorded session: its steps with SQL and DB diffs, strict replay, plain rendering.

A recording is what the run store holds for one session: every bus event in order. To show what
each tool call did to the database, the session's calls are re-executed in order on a fresh
clone of the domain's template (tau2-bench's strict replay): each step's row diff is computed,
and in `verify` mode any output or final state that differs from the recording is reported at
the exact turn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convosim.environments.domain import Domain, load_domain
from convosim.environments.state import diff
from convosim.errors import ConvosimError
from convosim.messages import (
    AssistantMessage,
    BaseEvent,
    ConversationClosed,
    SessionEnded,
    SessionFailed,
    SessionStarted,
    ToolCallRequest,
    ToolResult,
    UserMessage,
    Verdict,
)
from convosim.runners.store import STORE_NAME, RunStore


@dataclass
class Recording:
    run_dir: Path
    session: dict[str, Any]
    scenario: dict[str, Any]
    events: list[BaseEvent]

    @property
    def session_id(self) -> str:
        return str(self.session["session_id"])

    @property
    def turns(self) -> list[int]:
        return sorted({e.turn for e in self.events})


def open_store(run_dir: str | Path) -> RunStore:
    path = Path(run_dir) / STORE_NAME
    if not path.is_file():
        raise ConvosimError(path, None, "no run store here (is this a run's --out folder?)")
    return RunStore(path)


def load_recording(run_dir: str | Path, session_id: str) -> Recording:
    store = open_store(run_dir)
    try:
        sessions = store.sessions()
        rows = [r for r in sessions if r["session_id"] == session_id] or [
            r for r in sessions if r["session_id"].startswith(session_id)
        ]
        if len(rows) != 1:
            found = "no session" if not rows else f"{len(rows)} sessions"
            raise ConvosimError(Path(run_dir) / STORE_NAME, "session", f"{found} matching {session_id!r}")
        row = rows[0]
        return Recording(Path(run_dir), row, store.scenario(row["run_id"]), list(store.events(row["session_id"])))
    finally:
        store.close()


@dataclass
class Step:
    """One recorded bus event, with what it did to the database when it was a tool result."""

    seq: int
    event: BaseEvent
    diffs: dict[str, Any] = field(default_factory=dict)  # call id -> row diff caused by that call
    mismatches: list[str] = field(default_factory=list)


def replay_steps(recording: Recording, domain: Domain | None = None) -> list[Step]:
    """Re-execute the recorded calls in order on a fresh clone: per-step diffs and any mismatch."""
    domain = domain or load_domain(recording.scenario["domain"])
    env = domain.new_session()
    steps = [Step(seq, e) for seq, e in enumerate(recording.events)]
    pending: dict[str, Any] = {}
    try:
        for step in steps:
            event = step.event
            if isinstance(event, ToolCallRequest):
                pending.update({c.id: c for c in event.calls})
            elif isinstance(event, ToolResult):
                for recorded in event.results:
                    call = pending.pop(recorded.call_id, None)
                    if call is None:
                        step.mismatches.append(f"result for unknown call {recorded.call_id}")
                        continue
                    tool = domain.tools.get(call.name)
                    before = env.db.snapshot() if tool is not None and tool.kind == "write" else None
                    again = env.call(call.id, call.name, call.arguments)
                    if before is not None:
                        changed = diff(before, env.db.snapshot(), domain.keys)
                        if changed:
                            step.diffs[call.id] = changed
                    if (again.output, again.is_error) != (recorded.output, recorded.is_error):
                        step.mismatches.append(
                            f"{call.name} ({call.id}): recorded {json.dumps(recorded.output, sort_keys=True)[:200]}"
                            f" but replay gives {json.dumps(again.output, sort_keys=True)[:200]}"
                        )
            elif isinstance(event, SessionEnded) and event.state_hash and env.state_hash() != event.state_hash:
                step.mismatches.append("final database state differs from the recorded state hash")
    finally:
        env.close()
    return steps


def verify(recording: Recording, domain: Domain | None = None) -> list[tuple[int, str]]:
    """(turn, problem) for every difference between the recording and a strict replay."""
    return [(s.event.turn, m) for s in replay_steps(recording, domain) for m in s.mismatches]


# --- rendering -------------------------------------------------------------------------------
def describe_diff(changes: dict[str, Any]) -> list[str]:
    lines = []
    for table, parts in changes.items():
        for row in parts.get("added", []):
            lines.append(f"+ {table} {json.dumps(row, sort_keys=True)}")
        for row in parts.get("removed", []):
            lines.append(f"- {table} {json.dumps(row, sort_keys=True)}")
        for change in parts.get("changed", []):
            fields = ", ".join(f"{k}: {json.dumps(a)} -> {json.dumps(b)}" for k, (a, b) in change["changes"].items())
            lines.append(f"~ {table} {change['key']} {fields}")
    return lines


def _thinking(reasoning: str | None) -> list[str]:
    """A model's reasoning, shown before what it said or called, one line per paragraph line."""
    return [f"    thinking: {line}" for line in (reasoning or "").splitlines() if line.strip()]


def render_step(step: Step) -> list[str]:
    e = step.event
    head = f"[{e.sender} -> {e.recipient}]"
    if isinstance(e, SessionStarted):
        lines = [
            f"{head} session started: task {e.task.id} ({len(e.task.subgoals)} sub-goals)",
            f"    goal: {e.task.goal}",
        ]
    elif isinstance(e, UserMessage):
        lines = [f"{head} {e.content}" + (f"   <end marker: {e.end_reason}>" if e.done else "")]
    elif isinstance(e, AssistantMessage):
        lines = [*_thinking(e.reasoning), f"{head} {e.content}"]
    elif isinstance(e, ToolCallRequest):
        lines = _thinking(e.reasoning)
        lines += [f"{head} call {c.name} {json.dumps(c.arguments, sort_keys=True)}  ({c.id})" for c in e.calls]
    elif isinstance(e, ToolResult):
        lines = []
        for r in e.results:
            flag = " ERROR" if r.is_error else ""
            lines.append(f"{head} {r.name}{flag} -> {json.dumps(r.output, sort_keys=True)}")
            if r.sql:
                lines.append(f"    SQL: {' '.join(r.sql.split())}")
            lines += [f"    DB {line}" for line in describe_diff(step.diffs.get(r.call_id, {}))]
    elif isinstance(e, ConversationClosed):
        lines = [f"{head} conversation closed ({e.reason}{': ' + e.detail if e.detail else ''})"]
    elif isinstance(e, SessionFailed):
        lines = [f"{head} session failed: {e.error.splitlines()[0]}"]
    elif isinstance(e, SessionEnded):
        lines = [f"{head} session ended ({e.reason}); state hash {e.state_hash[:12]}"]
    elif isinstance(e, Verdict):
        verdict = "ACCEPTED" if e.accepted else "REJECTED"
        lines = [f"{head} verdict {verdict} ({e.subgoals_completed}/{e.subgoals_total} sub-goals)"]
        lines += [f"    reason {r.code}: {json.dumps(r.detail, sort_keys=True)[:300]}" for r in e.reasons]
        lines += [f"    note {r.code}: {json.dumps(r.detail, sort_keys=True)[:300]}" for r in e.notes]
    else:
        lines = [f"{head} {e.type}"]
    lines += [f"    MISMATCH {m}" for m in step.mismatches]
    return lines


def keep(step: Step, agent: str | None, event_type: str | None) -> bool:
    e = step.event
    return (agent is None or agent in (e.sender, e.recipient)) and (event_type is None or e.type == event_type)


def render_turn(steps: list[Step], turn: int, agent: str | None = None, event_type: str | None = None) -> list[str]:
    lines = []
    for step in steps:
        if step.event.turn == turn and keep(step, agent, event_type):
            lines += render_step(step)
    return lines


def render_plain(
    recording: Recording, steps: list[Step], agent: str | None = None, event_type: str | None = None
) -> str:
    row = recording.session
    out = [
        f"session {recording.session_id}  task {row['task_id']}  status {row['status']}"
        + (f"  (fork of {row['parent_session_id']} at turn {row['fork_turn']})" if row.get("parent_session_id") else "")
    ]
    for turn in recording.turns:
        body = render_turn(steps, turn, agent, event_type)
        if body:
            out.append(f"-- turn {turn} --")
            out += body
    return "\n".join(out)
