"""Builds the per-session role objects a scenario asks for (offline policies today).

This is the one place that decides which policy plays which role, so adding LLM or replayed
policies means adding a branch here, not touching the agents or the engine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping

from convosim.agents.assistant import AssistantRole
from convosim.agents.offline_assistant import OfflineAssistantPolicy
from convosim.agents.offline_user import OfflineUserPolicy
from convosim.agents.tool_executor import ToolExecutorRole
from convosim.agents.user import UserSimulator
from convosim.agents.validator import ValidatorRole
from convosim.bus import RoleFactory
from convosim.config import Scenario
from convosim.environments.domain import Domain, SessionEnvironment
from convosim.environments.phrasing import PhraseBook
from convosim.models import Role, Rubric


def derived_seed(*parts: object) -> int:
    """A stable 64-bit seed from any parts (independent of PYTHONHASHSEED)."""
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16], 16)


def role_factories(
    scenario: Scenario,
    domain: Domain,
    rubrics: Mapping[str, Rubric],
    environment_of: Callable[[str], SessionEnvironment],
) -> dict[Role, RoleFactory]:
    book = PhraseBook(domain.tools)
    tools_openai = domain.openai_tools()

    def user(session_id: str) -> UserSimulator:
        policy = OfflineUserPolicy(book, scenario.rules, scenario.persona, derived_seed(scenario.seed, session_id))
        return UserSimulator(session_id, policy, scenario.rules)

    def assistant(session_id: str) -> AssistantRole:
        return AssistantRole(
            session_id,
            OfflineAssistantPolicy(book),
            domain.policy,
            tools_openai,
            scenario.limits.max_tool_calls_per_turn,
        )

    def tool_executor(session_id: str) -> ToolExecutorRole:
        return ToolExecutorRole(session_id, environment_of(session_id))

    def validator(session_id: str) -> ValidatorRole:
        return ValidatorRole(session_id, rubrics, domain.tools, scenario.rules, book)

    return {"user": user, "assistant": assistant, "tool_executor": tool_executor, "validator": validator}
