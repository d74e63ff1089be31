"""Builds the per-session role objects a scenario asks for: offline policies or LLMs per role.

This is the one place that decides which policy plays which role, so roles can be mixed freely
(an LLM user with the offline assistant, and so on) without touching the agents or the engine.
LLM roles share one usage meter and, optionally, one on-disk response cache; clients for the same
model and endpoint share one concurrency limit for the whole run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from convosim.agents.assistant import AssistantRole
from convosim.agents.llm_assistant import LLMAssistantPolicy
from convosim.agents.llm_judge import LLMJudge
from convosim.agents.llm_tool_simulator import ToolSimulator
from convosim.agents.llm_user import LLMUserPolicy
from convosim.agents.offline_assistant import OfflineAssistantPolicy
from convosim.agents.offline_user import OfflineUserPolicy
from convosim.agents.policies import AssistantPolicy, UserPolicy
from convosim.agents.tool_executor import ToolExecutorRole
from convosim.agents.user import UserSimulator
from convosim.agents.validator import ValidatorRole
from convosim.bus import RoleFactory
from convosim.config import RoleConfig, Scenario
from convosim.environments.domain import Domain, SessionEnvironment
from convosim.environments.phrasing import PhraseBook
from convosim.errors import ConvosimError
from convosim.llm.budget import Budget
from convosim.llm.cache import ResponseCache
from convosim.llm.client import LLMClient
from convosim.llm.usage import UsageMeter
from convosim.models import Role, Rubric
from convosim.rules.checks import Checks


def derived_seed(*parts: object) -> int:
    """A stable 64-bit seed from any parts (independent of PYTHONHASHSEED)."""
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16], 16)


@dataclass(frozen=True)
class PolicyHooks:
    """How a caller adapts the policies a scenario picks without reaching into any agent: a fork
    replays its parent's recorded turns around them, and plays the parent's offline user."""

    # Whose seeds a session's offline policies use (a fork: its parent's).
    seeds_from: Callable[[str], str] | None = None
    wrap_user: Callable[[UserPolicy], UserPolicy] | None = None
    wrap_assistant: Callable[[AssistantPolicy], AssistantPolicy] | None = None


@dataclass
class Roles:
    factories: dict[Role, RoleFactory]
    meter: UsageMeter
    cache: ResponseCache | None = None
    clients: dict[str, LLMClient] = field(default_factory=dict)

    def requests_sent(self) -> int:
        return sum(c.requests_sent for c in self.clients.values())

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()
        if self.cache is not None:
            self.cache.close()


def validator_checks(scenario: Scenario, domain: Domain, book: PhraseBook | None = None) -> Checks:
    """What the validator judges with: the same for every session of a run (and for re-judging)."""
    return Checks(
        tools=domain.tools,
        rules=scenario.rules,
        book=book or PhraseBook(domain.tools),
        policy=domain.policy,
        new_environment=domain.new_session if grounded_in_state(scenario, domain) else None,
        owners=domain.record_owners,
    )


def grounded_in_state(scenario: Scenario, domain: Domain) -> bool:
    """Whether every tool output comes from the session's own state (SQL, or the offline simulation
    of tools without SQL), so outputs, facts and the final state can be checked against a replay.
    A tool model inventing outputs is held to the schemas only."""
    if scenario.tool_mode == "simulated":
        return False
    return scenario.roles.tool_executor.policy != "llm" or all(t.sql is not None for t in domain.tools.values())


def build_roles(
    scenario: Scenario,
    domain: Domain,
    rubrics: Mapping[str, Rubric],
    environment_of: Callable[[str], SessionEnvironment],
    meter: UsageMeter,
    hooks: PolicyHooks | None = None,
    budget: Budget | None = None,
) -> Roles:
    hooks = hooks or PolicyHooks()
    book = PhraseBook(domain.tools)
    tools_openai = domain.openai_tools()
    cache = ResponseCache(scenario.cache) if scenario.cache is not None else None
    roles = Roles(factories={}, meter=meter, cache=cache)
    by_endpoint: dict[tuple[str, str | None], LLMClient] = {}

    def client_for(config: RoleConfig) -> LLMClient:
        model = config.llm()
        key = model.model_dump_json()
        if key not in roles.clients:
            client = LLMClient(model, meter, cache, budget=budget)
            sibling = by_endpoint.setdefault((model.model, model.api_base), client)
            client.share_limit_with(sibling)
            roles.clients[key] = client
        return roles.clients[key]

    cfg = scenario.roles
    # Tools without SQL are simulated offline from their output schemas (environments/simulation.py)
    # unless a tool model plays them; simulating a whole SQL domain needs the model.
    if scenario.tool_mode == "simulated" and cfg.tool_executor.policy != "llm":
        raise ConvosimError(None, "roles.tool_executor", "tool_mode: simulated needs a tool model (policy: llm)")

    def user(session_id: str) -> UserSimulator:
        policy: UserPolicy
        if cfg.user.policy == "llm":
            policy = LLMUserPolicy(client_for(cfg.user), session_id, scenario.rules, scenario.persona)
        else:
            seed = derived_seed(scenario.seed, hooks.seeds_from(session_id) if hooks.seeds_from else session_id)
            policy = OfflineUserPolicy(book, scenario.rules, scenario.persona, seed)
        if hooks.wrap_user is not None:
            policy = hooks.wrap_user(policy)
        return UserSimulator(session_id, policy, scenario.rules)

    def assistant(session_id: str) -> AssistantRole:
        policy: AssistantPolicy
        if cfg.assistant.policy == "llm":
            policy = LLMAssistantPolicy(client_for(cfg.assistant), session_id)
        else:
            owner = hooks.seeds_from(session_id) if hooks.seeds_from else session_id
            policy = OfflineAssistantPolicy(book, derived_seed(scenario.seed, f"{owner}/assistant"))
        if hooks.wrap_assistant is not None:
            policy = hooks.wrap_assistant(policy)
        return AssistantRole(session_id, policy, domain.policy, tools_openai, scenario.limits.max_tool_calls_per_turn)

    def tool_executor(session_id: str) -> ToolExecutorRole:
        simulator = None
        if cfg.tool_executor.policy == "llm":
            simulator = ToolSimulator(client_for(cfg.tool_executor), session_id)
        return ToolExecutorRole(
            session_id, environment_of(session_id), simulator, simulate_all=scenario.tool_mode == "simulated"
        )

    checks = validator_checks(scenario, domain, book)

    def validator(session_id: str) -> ValidatorRole:
        judge = LLMJudge(client_for(cfg.validator)) if cfg.validator.policy == "llm" else None
        return ValidatorRole(session_id, rubrics, checks, judge)

    roles.factories = {"user": user, "assistant": assistant, "tool_executor": tool_executor, "validator": validator}
    return roles
