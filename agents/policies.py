"""Policy interfaces: what each role decides, separated from how the agent talks on the bus.

A policy is a small object with one async method: observation in, action out. Offline policies,
LLM policies and replayed recordings all implement these, so roles can be mixed freely.
The observation types are the privacy boundary made concrete: `AssistantObservation` has no
field through which task text could reach the assistant.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from convosim.messages import EndReason
from convosim.models import UserTask


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DialogueLine(_Model):
    """One visible line of the conversation: the user sees only text, never tool calls."""

    speaker: Literal["user", "assistant"]
    text: str


class UserObservation(_Model):
    task: UserTask
    history: tuple[DialogueLine, ...]
    turn: int


class UserAction(_Model):
    content: str
    done: bool = False
    end_reason: EndReason | None = None


class AssistantObservation(_Model):
    """Exactly what a deployed assistant has: its system prompt, tool specs and the chat so far."""

    system: str
    tools: tuple[dict[str, Any], ...]
    messages: tuple[dict[str, Any], ...]  # OpenAI chat format: user / assistant(tool_calls) / tool


class PlannedCall(_Model):
    name: str
    arguments: dict[str, Any] | str  # str: the model's raw text that was not a JSON object


class AssistantAction(_Model):
    content: str | None = None
    tool_calls: tuple[PlannedCall, ...] = ()
    reasoning: str | None = None  # a reasoning model's thinking: recorded and exported, never shown to the user


class UserPolicy(Protocol):
    async def act(self, observation: UserObservation) -> UserAction: ...


class AssistantPolicy(Protocol):
    async def act(self, observation: AssistantObservation) -> AssistantAction: ...
