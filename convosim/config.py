"""Scenario files: which domain and tasks, which policy plays each role, rules and run size."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from convosim.errors import ConvosimError, from_validation_error
from convosim.llm.config import ModelConfig
from convosim.rules.user_rules import Persona, UserRules, default_persona, default_rules
from convosim.yamlio import load_data


class RoleConfig(ModelConfig):
    """Who plays a role: the offline policy (default) or an LLM through litellm (model settings)."""

    policy: Literal["offline", "llm"] = "offline"
    model: str | None = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _model_for_llm(self) -> RoleConfig:
        if self.policy == "llm" and not self.model:
            raise ValueError("policy llm needs a model (any litellm model string)")
        return self

    def llm(self) -> ModelConfig:
        assert self.model is not None
        return ModelConfig.model_validate(self.model_dump(exclude={"policy"}))


class RolesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user: RoleConfig = RoleConfig()
    assistant: RoleConfig = RoleConfig()
    tool_executor: RoleConfig = RoleConfig()
    validator: RoleConfig = RoleConfig()


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    session_timeout_s: float = Field(120.0, gt=0)
    max_tool_calls_per_turn: int = Field(6, ge=1)
    query_timeout_s: float = Field(2.0, gt=0)
    max_tool_output_bytes: int = Field(1_000_000, ge=1_000)  # larger tool results are a tool error
    max_cost_usd: float | None = Field(None, gt=0)  # the whole run's LLM spend; needs known prices
    max_tool_errors: int = Field(8, ge=1)  # per session; more ends it (reason: error)
    max_tokens: int | None = Field(None, ge=1)  # per session, all roles; more ends it


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    domain: Path
    tasks: Path
    sessions: int = Field(50, ge=1)
    concurrency: int = Field(16, ge=1)
    seed: int = 0
    roles: RolesConfig = RolesConfig()
    rules: UserRules = Field(default_factory=default_rules)
    persona: Persona = Field(default_factory=default_persona)
    limits: Limits = Limits()
    tool_mode: Literal["sql", "simulated"] = "sql"  # simulated: the tool model invents outputs to schema
    cache: Path | None = None  # on-disk LLM response cache (record/replay)
    isolate: list[Literal["user"]] = Field(default_factory=list)  # roles run in their own OS process
    runner: Literal["local", "ray"] = "local"
    ray_workers: int | None = Field(None, ge=1)
    ray_address: str | None = None  # an existing Ray cluster; default: a local one on this machine
    # Near-duplicate dialogues (estimated Jaccard of word 3-grams) left out of the dataset; None: exact only.
    near_duplicate_threshold: float | None = Field(0.9, gt=0, le=1)


RECORD_ONLY = ("content_sha256",)  # what a run store records beside the settings (runners.run.content_hash)


def scenario_from_record(record: dict[str, Any]) -> Scenario:
    """The scenario a run recorded (its settings, without what was recorded only to compare)."""
    return Scenario.model_validate({k: v for k, v in record.items() if k not in RECORD_ONLY})


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read a scenario YAML; relative paths are relative to the scenario file."""
    path = Path(path)
    data = load_data(path)
    if not isinstance(data, dict):
        raise ConvosimError(path, None, "must be a mapping")
    base = path.parent
    merged: dict[str, Any] = dict(data)
    for key, default in (("rules", default_rules()), ("persona", default_persona())):
        given = data.get(key)
        if given is None or isinstance(given, dict):
            merged[key] = {**default.model_dump(), **(given or {})}
    merged = deep_merge(merged, {k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        scenario = Scenario.model_validate(merged)
    except ValidationError as exc:
        raise from_validation_error(path, exc) from exc
    update: dict[str, Any] = {"domain": base / scenario.domain, "tasks": base / scenario.tasks}
    if scenario.cache is not None and "cache" not in (overrides or {}):
        update["cache"] = base / scenario.cache
    return scenario.model_copy(update=update)
