"""Run statistics, counted the way the seed paper's Table 1 counts them.

Every message counts as a turn: user messages, assistant messages, each tool call and each tool
output. `stats.json` holds the same numbers as the end-of-run table.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import mean
from typing import Any

from convosim.llm.usage import Usage
from convosim.messages import AssistantMessage, BaseEvent, ToolCallRequest, ToolResult, UserMessage


def turn_counts(events: Sequence[BaseEvent]) -> dict[str, int]:
    user = sum(1 for e in events if isinstance(e, UserMessage))
    assistant = sum(1 for e in events if isinstance(e, AssistantMessage))
    calls = sum(len(e.calls) for e in events if isinstance(e, ToolCallRequest))
    outputs = sum(len(e.results) for e in events if isinstance(e, ToolResult))
    errors = sum(1 for e in events if isinstance(e, ToolResult) for r in e.results if r.is_error)
    return {
        "turns": user + assistant + calls + outputs,
        "user_turns": user,
        "assistant_turns": assistant,
        "tool_calls": calls,
        "tool_errors": errors,
    }


def usage_by_role(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Totals per role over the run (the judge included); cost is None when any call's price is unknown."""
    totals: dict[str, Usage] = {}
    for r in rows:
        for role, usage in r.get("usage", {}).items():
            totals.setdefault(role, Usage()).add(usage)
    out = {}
    for role, usage in sorted(totals.items()):
        d = usage.as_dict()
        d["mean_latency_s"] = round(usage.latency_s / usage.calls, 4) if usage.calls else None
        out[role] = d
    return out


def summarise(rows: Sequence[dict[str, Any]], wall_time_s: float) -> dict[str, Any]:
    """`rows`: one dict per session with status, turn counts and sub-goal numbers."""
    n = len(rows)

    def avg(key: str) -> float:
        return round(mean(r[key] for r in rows), 3) if rows else 0.0

    reasons: dict[str, int] = {}
    for r in rows:
        for code in r.get("reason_codes", []):
            reasons[code] = reasons.get(code, 0) + 1
    accepted = sum(1 for r in rows if r["status"] == "accepted")
    return {
        "sessions": n,
        "accepted": accepted,
        "rejected": sum(1 for r in rows if r["status"] == "rejected"),
        "failed": sum(1 for r in rows if r["status"] == "failed"),
        "accepted_pct": round(100.0 * accepted / n, 2) if n else 0.0,
        "mean_turns": avg("turns"),
        "mean_user_turns": avg("user_turns"),
        "mean_subgoals": avg("subgoals_total"),
        "mean_subgoals_completed": avg("subgoals_completed"),
        "mean_tool_calls": avg("tool_calls"),
        "tool_error_rate": round(sum(r["tool_errors"] for r in rows) / max(1, sum(r["tool_calls"] for r in rows)), 4),
        "rejection_reasons": dict(sorted(reasons.items())),
        "llm_usage": usage_by_role(rows),
        "wall_time_s": round(wall_time_s, 3),
        "sessions_per_s": round(n / wall_time_s, 3) if wall_time_s > 0 else None,
    }
