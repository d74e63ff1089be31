"""Policy interfaces: what each role decides, separated from how the agent talks on the bus.

A policy is a small object with one async method: observation in, action out. Offline policies,
LLM policies and replayed recordings all implement these, so roles can be mixed freely.
The observation types are the privacy boundary made concrete: `AssistantObservation` has no
field through which task text could reach the assistant.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

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


class Intent(_Model):
    """What a scripted test wants the user to say next, for the user's own policy to put in words:
    a request (a tool and its arguments), or a move (say yes to a change, say goodbye)."""

    tool: str | None = None
    args: dict[str, Any] = {}
    move: Literal["confirm", "goodbye"] | None = None

    def instruction(self, description: str = "") -> str:
        """The intent as an instruction to a model playing the user."""
        if self.move == "confirm":
            return "Say yes: the assistant should go ahead with the change it just read back."
        if self.move == "goodbye":
            return "Say you have everything you need, thank the assistant and say goodbye."
        what = description.rstrip(".") or str(self.tool)  # the task's own words for it, when it has them
        details = ", ".join(f"{k} {v}" for k, v in self.args.items())
        return f"Ask the assistant to {what[:1].lower()}{what[1:]} ({details}), giving those details."


class UserPolicy(Protocol):
    async def act(self, observation: UserObservation) -> UserAction: ...


@runtime_checkable
class VoicesIntents(Protocol):
    """A user policy that can put a scripted intent in its own words."""

    async def voice(self, intent: Intent, observation: UserObservation) -> str: ...


class AssistantPolicy(Protocol):
    async def act(self, observation: AssistantObservation) -> AssistantAction: ...
