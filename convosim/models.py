"""Data models shared by every layer: roles, tools, tasks, rubrics.

These are plain data; behaviour lives in `environments`, `rules`, `agents` and `runners`.
The split between `Task` (the whole truth, seen by the runner and validator) and `UserTask`
(what the user simulator is allowed to know) is the privacy boundary of the design.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, field_validator

from convosim.json_schemas import schema_problems

Role = Literal["runner", "user", "assistant", "tool_executor", "validator", "supervisor"]

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
REF_PATTERN = re.compile(r"^\$\{(\d+)\.([A-Za-z_][A-Za-z0-9_]*)\}$")
# Template syntax that must never be spoken: `${...}` (even unclosed), `{{ ... }}`, `{slot}`.
PLACEHOLDER = re.compile(r"\$\{[^}]*\}?|\{\{[^}]*\}\}|\{[A-Za-z_][A-Za-z0-9_]*\}")


@dataclass(frozen=True)
class Ref:
    """A task argument `${K.field}`: the value of `field` in sub-goal K's output (K from 1), which
    the user only learns from the assistant's answer. Parsed here and nowhere else."""

    subgoal: int
    field: str

    @classmethod
    def parse(cls, value: Any) -> Ref | None:
        m = REF_PATTERN.match(value) if isinstance(value, str) else None
        return cls(int(m.group(1)), m.group(2)) if m else None

    @staticmethod
    def looks_like(value: Any) -> bool:
        """Template syntax that is not a well-formed reference (`${three.reason}`): an error."""
        return isinstance(value, str) and "${" in value and REF_PATTERN.match(value) is None

    def __str__(self) -> str:
        return f"${{{self.subgoal}.{self.field}}}"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Precondition(Frozen):
    """A rule of the policy a write is bound by, declared so every role reads the same rule.

    A careful assistant reads the record (already in the conversation, or through `read` called
    with the write's own arguments) and refuses with `reason` when `field` is not one of `allowed`,
    without offering or attempting the write; the validator holds any assistant to the same rule.
    """

    field: str = Field(pattern=NAME_PATTERN)
    allowed: tuple[str | int | float | bool, ...] = Field(min_length=1)
    reason: str = Field(min_length=3)  # in words a person says: "only pending orders can be cancelled"
    read: str | None = None  # a read tool whose parameters the write's arguments fill, showing `field`


class ToolSpec(Frozen):
    """A domain tool: public documentation (name, description, parameters, phrasings) plus its SQL."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(min_length=1)
    kind: Literal["read", "write"]
    returns: Literal["one", "many"] = "one"
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    sql: str | None = None
    phrasings: tuple[str, ...] = Field(min_length=1)
    output_schema: dict[str, Any] | None = None
    # A write changes a record only after the assistant said what it will do and the user agreed;
    # a domain may waive that for a write that changes nothing the user owns (a log entry, say).
    confirm: bool = True
    precondition: Precondition | None = None

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") != "object":
            raise ValueError("must be a JSON schema with type: object")
        props = value.get("properties", {})
        if not isinstance(props, dict):
            raise ValueError("properties must be a mapping")
        for name, prop in props.items():
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"parameter name {name!r} is not an identifier")
            if not isinstance(prop, dict) or "type" not in prop:
                raise ValueError(f"parameter {name!r} needs a type")
        for name in value.get("required", []):
            if name not in props:
                raise ValueError(f"required parameter {name!r} is not in properties")
        problems = schema_problems(value)
        if problems:
            raise ValueError(problems[0])
        return value

    @field_validator("output_schema")
    @classmethod
    def _valid_output_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """Outputs are held to it (simulated ones made from it): a broken one fails at load, not mid-run."""
        if value is not None:
            try:
                jsonschema.Draft202012Validator.check_schema(value)
            except jsonschema.SchemaError as exc:
                where = ".".join(str(p) for p in exc.path) or "(root)"
                raise ValueError(f"not a valid JSON schema at {where}: {exc.message}") from exc
        return value

    @property
    def properties(self) -> dict[str, dict[str, Any]]:
        props: dict[str, dict[str, Any]] = self.parameters.get("properties", {})
        return props

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.parameters.get("required", ()))

    def openai(self) -> dict[str, Any]:
        """The tool as an OpenAI `tools` entry: what a real assistant is shown."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


class ToolRequest(Frozen):
    """One gold call. An argument may be a reference `${K.field}` to sub-goal K's output (1-based)."""

    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    # "refused": the user asks for something the rules do not allow; the call must fail (nothing is
    # written) and the assistant must say it cannot, which is what completes the sub-goal.
    expect: Literal["done", "refused"] = "done"


class SubGoal(Frozen):
    description: str = Field(min_length=1)
    requests: tuple[ToolRequest, ...] = Field(min_length=1)
    # Output fields of this sub-goal's calls whose values the user must end up being told.
    facts: tuple[str, ...] = ()


class Task(Frozen):
    id: str = Field(min_length=1)
    context: str = ""
    goal: str = Field(min_length=1)
    subgoals: tuple[SubGoal, ...] = Field(min_length=1)

    def user_view(self) -> UserTask:
        """What the user simulator may know: the goal and sub-goals, without rubric facts."""
        return UserTask(
            id=self.id,
            context=self.context,
            goal=self.goal,
            subgoals=tuple(UserSubGoal(description=s.description, requests=s.requests) for s in self.subgoals),
        )


class UserSubGoal(Frozen):
    description: str
    requests: tuple[ToolRequest, ...]


class UserTask(Frozen):
    id: str
    context: str
    goal: str
    subgoals: tuple[UserSubGoal, ...]


class Fact(Frozen):
    subgoal: int
    field: str
    value: Any


class Rubric(Frozen):
    """What the validator judges against: the expected end state and facts, from a gold replay."""

    task_id: str
    expected_state_hash: str
    expected_diff: dict[str, Any]
    facts: tuple[Fact, ...]
    gold_calls: tuple[tuple[int, ToolRequest], ...]  # (sub-goal index, resolved call)
