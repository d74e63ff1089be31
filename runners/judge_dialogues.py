"""`convosim judge DOMAIN DIALOGUES.jsonl`: the run's own validator on dialogues made anywhere.

This is how a user audits data another tool (or another run) made, and the entry point the
mutation test drives. One line per dialogue, in the OpenAI chat format of `convosim export
--format openai` (`messages`, optional `tools`), plus `task_id` naming a task of the domain's
task file: on the row, or on the same line of the export's `*.metadata.jsonl` beside it. Without
it, the checks that need a rubric (final state, facts, refusals) judge against an empty one.

Every tool call is re-executed in order on a fresh clone of the domain's database: a recorded
`tool` message must match what the call really returns (`tool_output_mismatch`), a call with no
recorded output gets the real one, and the final state is the re-executed one. The last user
message is taken as the end of the conversation (a dialogue from outside has no end marker).

Bad input (a line that is not JSON, a message with an unknown role, an unknown task id, a tool
call without an id) stops the command with exit 2 naming the file, the line and the field, and
writes nothing. Verdicts go to a new JSONL file; an existing one is never overwritten.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convosim.environments.domain import Domain, SessionEnvironment
from convosim.errors import ConvosimError
from convosim.messages import (
    AssistantMessage,
    Event,
    Reason,
    SessionEnded,
    SessionStarted,
    ToolCall,
    ToolCallRequest,
    ToolOutput,
    ToolResult,
    UserMessage,
)
from convosim.models import Rubric, Task
from convosim.rules.checks import Checks, judge


@dataclass(frozen=True)
class DialogueVerdict:
    line: int
    task_id: str | None
    accepted: bool
    reasons: tuple[Reason, ...]
    subgoals_completed: int

    def row(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "task_id": self.task_id,
            "accepted": self.accepted,
            "reasons": [r.model_dump() for r in self.reasons],
            "subgoals_completed": self.subgoals_completed,
        }


def read_dialogues(path: Path, needs_messages: bool = True) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) for every non-empty line; a malformed one is an exit-2 error naming it."""
    if not path.is_file():
        raise ConvosimError(path, None, "file not found")
    with path.open(encoding="utf-8") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConvosimError(path, f"line {n}", f"not JSON: {exc.msg}") from exc
            if not isinstance(row, dict) or (needs_messages and not isinstance(row.get("messages"), list)):
                raise ConvosimError(path, f"line {n}.messages", "each line needs a `messages` list")
            yield n, row


class _Transcript:
    """Builds bus events from chat messages, executing each call on the session's environment."""

    def __init__(self, session_id: str, env: SessionEnvironment, where: tuple[Path, int]) -> None:
        self.session_id, self.env, self.where = session_id, env, where
        self.events: list[Event] = []
        self.turn = 0
        self.pending: dict[str, ToolCall] = {}  # called, no output recorded yet

    def _id(self) -> str:
        return f"{self.session_id}-{len(self.events)}"

    def _error(self, field: str, message: str) -> ConvosimError:
        return ConvosimError(self.where[0], f"line {self.where[1]}.{field}", message)

    def _emit(
        self,
        kind: type[UserMessage | AssistantMessage | ToolCallRequest | ToolResult],
        sender: str,
        recipient: str,
        **fields: Any,
    ) -> None:
        """One event of this session at the current turn, numbered in order."""
        common = {"id": self._id(), "session_id": self.session_id, "turn": self.turn}
        self.events.append(kind.model_validate({**common, "sender": sender, "recipient": recipient, **fields}))

    def add(self, k: int, message: dict[str, Any]) -> None:
        role = message.get("role")
        if role == "system":
            return
        if role in ("user", "assistant"):
            self._flush()  # a call whose output the file does not hold gets the real one first
        if role == "user":
            self.turn += 1
            self._emit(UserMessage, "user", "assistant", content=str(message.get("content") or ""))
        elif role == "assistant" and message.get("tool_calls"):
            calls = tuple(self._call(k, j, c) for j, c in enumerate(message["tool_calls"]))
            self.pending |= {c.id: c for c in calls}
            self._emit(ToolCallRequest, "assistant", "tool_executor", calls=calls)
        elif role == "assistant":
            self._emit(AssistantMessage, "assistant", "user", content=str(message.get("content") or ""))
        elif role == "tool":
            call = self.pending.pop(str(message.get("tool_call_id")), None)
            if call is None:
                raise self._error(f"messages[{k}].tool_call_id", "answers no call made before it")
            self._result(call, _output(message.get("content")))
        else:
            raise self._error(f"messages[{k}].role", f"unknown role {role!r}")

    def _call(self, k: int, j: int, raw: Any) -> ToolCall:
        function = raw.get("function") if isinstance(raw, dict) else None
        if not isinstance(function, dict) or not raw.get("id") or not function.get("name"):
            raise self._error(f"messages[{k}].tool_calls[{j}]", "needs an id and a function name")
        args: Any = function.get("arguments", "{}")
        try:
            parsed = json.loads(args) if isinstance(args, str) else args
        except json.JSONDecodeError:
            parsed = args  # the model's raw text: the validator calls it an invalid call
        return ToolCall(
            id=str(raw["id"]), name=str(function["name"]), arguments=parsed if isinstance(parsed, dict) else str(args)
        )

    def _result(self, call: ToolCall, recorded: Any) -> None:
        """The recorded output as the assistant saw it; the call itself runs on the fresh database."""
        real = self.env.call(call.id, call.name, call.arguments)
        output = (
            real
            if recorded is _MISSING
            else ToolOutput(
                call_id=call.id,
                name=call.name,
                output=recorded,
                is_error=isinstance(recorded, dict) and set(recorded) == {"error"},
            )
        )
        self._emit(ToolResult, "tool_executor", "assistant", results=(output,))

    def _flush(self) -> None:
        """Calls whose output the file does not hold get the real one."""
        for call in list(self.pending.values()):
            self._result(call, _MISSING)
        self.pending.clear()

    def finish(self) -> list[Event]:
        self._flush()
        users = [i for i, e in enumerate(self.events) if isinstance(e, UserMessage)]
        if users:  # the dialogue ends with its last user message
            last = self.events[users[-1]]
            assert isinstance(last, UserMessage)
            self.events[users[-1]] = last.model_copy(update={"done": True})
        return self.events


_MISSING = object()


def _output(content: Any) -> Any:
    if not isinstance(content, str):
        return content
    try:
        return json.loads(content)
    except json.JSONDecodeError:
        return content


def _metadata(dialogues: Path) -> dict[int, dict[str, Any]]:
    """Line -> metadata from the export's side file (`train.metadata.jsonl` beside `train.jsonl`)."""
    side = dialogues.with_name(dialogues.name.removesuffix(".jsonl") + ".metadata.jsonl")
    return dict(read_dialogues(side, needs_messages=False)) if side.is_file() else {}


def judge_dialogue(
    n: int, row: dict[str, Any], path: Path, domain: Domain, tasks: dict[str, tuple[Task, Rubric]], checks: Checks
) -> DialogueVerdict:
    task_id = row.get("task_id")
    if task_id is not None and str(task_id) not in tasks:
        raise ConvosimError(path, f"line {n}.task_id", f"no task {task_id!r} in the domain's task file")
    env = domain.new_session()
    try:
        session_id = f"judge-{n}"
        built = _Transcript(session_id, env, (path, n))
        for k, message in enumerate(row["messages"]):
            if not isinstance(message, dict):
                raise ConvosimError(path, f"line {n}.messages[{k}]", "a message must be an object")
            built.add(k, message)
        events = built.finish()
        state_hash, state_diff = env.final_state()
    finally:
        env.close()
    if task_id is not None:
        task, rubric = tasks[str(task_id)]
        start = SessionStarted(
            id=f"{session_id}-start",
            session_id=session_id,
            turn=0,
            sender="runner",
            recipient="user",
            task=task.user_view(),
        )
        events = [start, *events]
    else:
        rubric = Rubric(task_id="", expected_state_hash=state_hash, expected_diff=state_diff, facts=(), gold_calls=())
    ended = SessionEnded(
        id=f"{session_id}-ended",
        session_id=session_id,
        turn=built.turn,
        sender="supervisor",
        recipient="validator",
        task_id=str(task_id or ""),
        reason="completed",
        state_hash=state_hash,
        state_diff=state_diff,
        transcript=tuple(events),
    )
    reasons, completed = judge(ended, rubric, checks)
    return DialogueVerdict(n, None if task_id is None else str(task_id), not reasons, tuple(reasons), completed)


def judge_file(domain_path: Path, dialogues: Path, tasks_path: Path | None, out_path: Path) -> list[DialogueVerdict]:
    """Every dialogue of the file judged; the verdicts written to `out_path` only once all are in."""
    from convosim.environments.domain import load_domain
    from convosim.environments.phrasing import PhraseBook
    from convosim.environments.tasks import load_tasks
    from convosim.rules.user_rules import UserRules
    from convosim.runners.export import AtomicJsonl

    if out_path.exists():
        raise ConvosimError(out_path, None, "already exists: verdicts are never written over (choose another --out)")
    domain = load_domain(domain_path)
    task_file = tasks_path or domain_path / "tasks.yaml"
    tasks: dict[str, tuple[Task, Rubric]] = {}
    if task_file.exists():
        loaded, rubrics = load_tasks(task_file, domain)
        tasks = {t.id: (t, rubrics[t.id]) for t in loaded}
    checks = Checks(
        tools=domain.tools,
        rules=UserRules(),
        book=PhraseBook(domain.tools),
        policy=domain.policy,
        new_environment=domain.new_session,
        owners=domain.record_owners,
    )
    side = _metadata(dialogues)
    verdicts = [
        judge_dialogue(n, {"task_id": side.get(n, {}).get("task_id"), **row}, dialogues, domain, tasks, checks)
        for n, row in read_dialogues(dialogues)
    ]
    with AtomicJsonl(out_path) as sink:
        for verdict in verdicts:
            sink.write(verdict.row())
    return verdicts
