"""The user's behavioural rules and persona as data; defaults live in user_behaviour.yaml."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


class UserRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_subgoals_per_message: int = Field(1, ge=1)
    max_subgoals_per_message: int = Field(2, ge=1)
    join_probability: float = Field(0.25, ge=0, le=1)
    # React to each answer (acknowledge, correct, complain) before the next request; off, the user
    # goes straight on: the offline user drops its reactions, an LLM user is not told the rule.
    react_to_every_answer: bool = True
    max_turns: int = Field(30, ge=2)
    max_misunderstandings: int = Field(3, ge=1)
    # "If unsure a change was made, ask the assistant to confirm it": chance of reading a change back.
    confirm_changes_probability: float = Field(0.75, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> UserRules:
        if self.min_subgoals_per_message > self.max_subgoals_per_message:
            raise ValueError("min_subgoals_per_message exceeds max_subgoals_per_message")
        return self


class Persona(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    verbosity: Literal["terse", "verbose", "mixed"] = "mixed"
    temperament: Literal["polite", "impatient", "mixed"] = "mixed"
    # Chance that the user first gives a wrong value for a change, then corrects it on confirmation.
    slip_rate: float = Field(0.3, ge=0, le=1)
    # Chance that the user names a wrong record once (a read fails, the user puts it right).
    wrong_id_rate: float = Field(0.25, ge=0, le=1)
    # Chance that the user asks for one change, then changes its mind when it is read back.
    change_of_mind_rate: float = Field(0.5, ge=0, le=1)


@cache
def defaults() -> dict[str, Any]:
    text = resources.files("convosim.rules").joinpath("user_behaviour.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


REACT_TEXT = "React to every answer"


def rule_texts(rules: UserRules | None = None) -> list[str]:
    """What an LLM user is told: the default texts, less the reaction rule when it is switched off."""
    texts = list(defaults()["texts"])
    if rules is not None and not rules.react_to_every_answer:
        texts = [t for t in texts if not t.startswith(REACT_TEXT)]
    return texts


def default_rules() -> UserRules:
    return UserRules.model_validate(defaults()["rules"])


def default_persona() -> Persona:
    return Persona.model_validate(defaults()["persona"])
