"""`convosim plan`: what a run will cost before it is paid for.

A pilot runs a few sessions spread evenly over the run's sessions (so over its tasks), through the
same factory, engine and roles as the run, writing nothing; per-session usage is scaled to the
whole run, per role: calls, tokens, cost (unknown when a model has no price) and wall time at the
run's concurrency (mean session duration x sessions / concurrency, as with every slot busy).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from convosim.config import Scenario
from convosim.llm.usage import Usage
from convosim.runners.preflight import run_preflight
from convosim.runners.session import SessionOutcome, SessionSpec
from convosim.runners.session_factory import SessionFactory


def pilot_specs(specs: list[SessionSpec], k: int) -> list[SessionSpec]:
    """`k` sessions evenly spread over the run (first, last and between)."""
    if k >= len(specs):
        return specs
    picks = sorted({round(j * (len(specs) - 1) / max(k - 1, 1)) for j in range(k)})
    return [specs[i] for i in picks]


async def _pilot(scenario: Scenario, pilot: int) -> tuple[list[tuple[SessionOutcome, float]], int]:
    from convosim.runners.run import load_inputs, session_specs

    domain, tasks, rubrics = load_inputs(scenario)
    await run_preflight(scenario)
    specs = list(session_specs(scenario, tasks))
    picked = pilot_specs(specs, pilot)
    done: list[tuple[SessionOutcome, float]] = []
    async with SessionFactory(scenario, domain, rubrics) as sessions:
        await sessions.run_all(picked, scenario.concurrency, lambda o: done.append((o, time.time() - o.started_at)))
    return done, len(specs)


def plan_run(scenario: Scenario, pilot: int = 8) -> dict[str, Any]:
    """Estimates for the whole run from a pilot of `pilot` sessions (nothing is written)."""
    done, total = asyncio.run(_pilot(scenario, pilot))
    scale = total / max(len(done), 1)
    by_role: dict[str, Usage] = {}
    for outcome, _ in done:
        for role, usage in outcome.usage.items():
            by_role.setdefault(role, Usage()).add(usage)
    roles: dict[str, dict[str, Any]] = {}
    for role, usage in sorted(by_role.items()):
        roles[role] = {
            "calls": round(usage.calls * scale),
            "prompt_tokens": round(usage.prompt_tokens * scale),
            "completion_tokens": round(usage.completion_tokens * scale),
            "cost_usd": round(usage.cost_usd * scale, 4) if usage.cost_known else None,
        }
    mean_s = sum(d for _, d in done) / max(len(done), 1)
    costs: list[float | None] = [r["cost_usd"] for r in roles.values()]
    known = [c for c in costs if c is not None]
    return {
        "sessions": total,
        "pilot_sessions": len(done),
        "pilot_accepted": sum(1 for o, _ in done if o.status == "accepted"),
        "roles": roles,
        "total_calls": sum(r["calls"] for r in roles.values()),
        "total_tokens": sum(r["prompt_tokens"] + r["completion_tokens"] for r in roles.values()),
        "total_cost_usd": round(sum(known), 4) if len(known) == len(costs) else None,
        "estimated_wall_time_s": round(mean_s * total / min(scenario.concurrency, total), 1),
    }
