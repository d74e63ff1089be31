"""Pre-flight: one cheap call per LLM role before the first session.

A missing key, an unreachable endpoint, an unknown model or a model without tool calling would
otherwise fail every session one by one, after the run has started writing. Here each distinct
(model, endpoint) is asked once, with a tool attached when its role calls tools; a failure is a
one-line error naming the role and the cause (exit 2), and nothing is written. The calls are billed,
so they are counted (`stats.json: preflight`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from convosim.config import Scenario
from convosim.errors import ConvosimError
from convosim.llm.client import LLMClient, LLMError
from convosim.llm.usage import Usage, UsageMeter

PING = [{"role": "user", "content": "Reply with the word: ready"}]
PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "ping",
        "description": "Answer a connectivity check.",
        "parameters": {"type": "object", "properties": {}, "required": []},
    },
}
ROLES_WITH_TOOLS = {"assistant"}


async def _check(role: str, client: LLMClient, with_tools: bool) -> None:
    try:
        await client.complete(PING, session_id="preflight", role=role, tools=[PROBE_TOOL] if with_tools else None)
    except LLMError as exc:
        raise ConvosimError(None, f"roles.{role}", f"pre-flight call failed: {exc}") from exc
    finally:
        await client.aclose()


async def run_preflight(scenario: Scenario, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Check every LLM role's model once (`skip`: roles a caller plays itself); raises
    ConvosimError naming the first role that fails. Returns what the checks cost."""
    if scenario.cache is not None:
        return {}  # a run replayed from a response cache may need no server at all
    meter = UsageMeter()
    seen: set[tuple[str, str | None, bool]] = set()
    checks = []
    for role, config in scenario.roles.model_dump().items():
        if config.get("policy") != "llm" or role in skip:
            continue
        model = getattr(scenario.roles, role).llm()
        with_tools = role in ROLES_WITH_TOOLS
        key = (model.model, model.api_base, with_tools)
        if key in seen:
            continue
        seen.add(key)
        quick = model.model_copy(
            update={"max_retries": min(model.max_retries, 2), "timeout_s": min(model.timeout_s, 30)}
        )
        checks.append(_check(role, LLMClient(quick, meter), with_tools))
    await asyncio.gather(*checks)
    if scenario.limits.max_cost_usd is not None:
        unpriced = sorted(role for role, u in meter.by_session.get("preflight", {}).items() if not u.cost_known)
        if unpriced:
            raise ConvosimError(
                None,
                f"roles.{unpriced[0]}",
                "--max-cost needs a known price for every LLM role: set cost_per_1k_input and cost_per_1k_output",
            )
    total = Usage()
    for usage in meter.pop("preflight").values():
        total.add(usage)
    return {"models_checked": len(seen), **total.as_dict()} if seen else {}
