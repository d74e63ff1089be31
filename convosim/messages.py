"""Typed, immutable events exchanged on the bus.

Every message an agent sends is one of these frozen pydantic models. They carry enough identity
(session, turn, sender, recipient) for the recorder to persist them in order and for a viewer to
replay a session without knowing anything about the agents that produced them. `Event` is the
tagged union that round-trips through JSON (`EVENT_ADAPTER`).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from convosim.models import Role, UserTask

EndReason = Literal["completed", "hopeless", "max_turns", "limit", "error", "timeout"]


def event_id(session_id: str, kind: str, n: int | None = None) -> str:
    """Every event id is minted here: `<session>-<kind>[-<n>]`, unique within its session and
    stable across runs of the same seed (so datasets and stores compare byte for byte)."""
    return f"{session_id}-{kind}" if n is None else f"{session_id}-{kind}-{n}"


LimitKind = Literal["tool_errors", "tokens"]


class BaseEvent(BaseModel):
    """Fields every bus message carries; `turn` is the dialogue round (one per user message)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str  # the discriminator: each event class fixes it to its own literal
    id: str
    session_id: str
    turn: int = Field(ge=0)
    sender: Role
    recipient: Role
    ts: float = Field(default_factory=time.time)


class SessionStarted(BaseEvent):
    """Runner -> User. The task is private to the User; no other role ever receives it."""

    type: Literal["session_started"] = "session_started"
    task: UserTask


class UserMessage(BaseEvent):
    """User -> Assistant. `done` is the explicit end marker of the conversation."""

    type: Literal["user_message"] = "user_message"
    content: str
    done: bool = False
    end_reason: EndReason | None = None


class ToolCall(BaseModel):
    """One function call as an OpenAI-style assistant would emit it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    arguments: dict[str, Any] | str  # str: raw text the model produced that is not a JSON object


class ToolCallRequest(BaseEvent):
    """Assistant -> ToolExecutor."""

    type: Literal["tool_call_request"] = "tool_call_request"
    calls: tuple[ToolCall, ...]
    reasoning: str | None = None  # what the model thought before calling, when it says (never sent back to it)


class ToolOutput(BaseModel):
    """The result of one call; `sql` and `changes` are debugging aids, never shown to the assistant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    call_id: str
    name: str
    output: Any
    is_error: bool = False
    sql: str | None = None
    rows_changed: int = 0


class ToolResult(BaseEvent):
    """ToolExecutor -> Assistant."""

    type: Literal["tool_result"] = "tool_result"
    results: tuple[ToolOutput, ...]


class AssistantMessage(BaseEvent):
    """Assistant -> User: text only; the user never sees tool calls."""

    type: Literal["assistant_message"] = "assistant_message"
    content: str
    reasoning: str | None = None  # the model's reasoning for this answer; the user never sees it


class ConversationClosed(BaseEvent):
    """User -> Supervisor once the user has left (after the assistant answered the end marker)."""

    type: Literal["conversation_closed"] = "conversation_closed"
    reason: EndReason
    detail: str | None = None  # why, in words (e.g. "more than 8 tool errors")
    limit: LimitKind | None = None  # with reason "limit": which per-session limit was hit


class SessionFailed(BaseEvent):
    """Any role -> Supervisor when a handler raised: one session's failure never stops the run."""

    type: Literal["session_failed"] = "session_failed"
    error: str


class SessionEnded(BaseEvent):
    """Supervisor -> Validator: the final state of the session's database and its transcript."""

    type: Literal["session_ended"] = "session_ended"
    task_id: str
    reason: EndReason
    state_hash: str
    state_diff: dict[str, Any]
    transcript: tuple[Event, ...]


class Reason(BaseModel):
    """A machine-readable verdict reason: a stable `code` plus free-form `detail`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    detail: Any = None


class Verdict(BaseEvent):
    """Validator -> Supervisor."""

    type: Literal["verdict"] = "verdict"
    accepted: bool
    reasons: tuple[Reason, ...] = ()
    notes: tuple[Reason, ...] = ()  # observations that do not reject (e.g. a judge's structural remarks)
    subgoals_total: int = 0
    subgoals_completed: int = 0
    tags: tuple[str, ...] = ()  # behaviours seen in the session (rules/behaviours.py): not faults


Event = Annotated[
    SessionStarted
    | UserMessage
    | ToolCallRequest
    | ToolResult
    | AssistantMessage
    | ConversationClosed
    | SessionFailed
    | SessionEnded
    | Verdict,
    Field(discriminator="type"),
]

SessionEnded.model_rebuild()
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_TYPES: tuple[type[BaseEvent], ...] = (
    SessionStarted,
    UserMessage,
    ToolCallRequest,
    ToolResult,
    AssistantMessage,
    ConversationClosed,
    SessionFailed,
    SessionEnded,
    Verdict,
)


def event_from_json(data: str | bytes) -> BaseEvent:
    return EVENT_ADAPTER.validate_json(data)


def event_to_json(event: BaseEvent) -> str:
    return event.model_dump_json()
