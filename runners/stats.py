"""Run statistics, counted the way the seed paper's Table 1 counts them.

Every message counts as a turn: user messages, assistant messages, each tool call and each tool
output. `stats.json` holds the same numbers as the end-of-run table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from convosim.llm.usage import Usage
from convosim.messages import AssistantMessage, BaseEvent, ToolCallRequest, ToolResult, UserMessage
from convosim.rules.behaviours import TAGS


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


class RunTally:
    """Running totals of a run's sessions: constant memory however many sessions there are."""

    SUMS = ("turns", "user_turns", "subgoals_total", "subgoals_completed", "tool_calls", "tool_errors")

    def __init__(self) -> None:
        self.n = 0
        self.status: Counter[str] = Counter()
        self.sums: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.tags: Counter[str] = Counter()
        self.usage: dict[str, Usage] = {}

    def add(self, row: dict[str, Any]) -> None:
        self.n += 1
        self.status[row["status"]] += 1
        for key in self.SUMS:
            self.sums[key] += row[key]
        self.reasons.update(row.get("reason_codes", []))
        self.tags.update(row.get("tags", ()))
        for role, usage in row.get("usage", {}).items():
            self.usage.setdefault(role, Usage()).add(usage)

    def summary(self, wall_time_s: float) -> dict[str, Any]:
        n = self.n

        def avg(key: str) -> float:
            return round(self.sums[key] / n, 3) if n else 0.0

        accepted = self.status["accepted"]
        llm = {}
        for role, usage in sorted(self.usage.items()):
            d = usage.as_dict()
            d["mean_latency_s"] = round(usage.latency_s / usage.calls, 4) if usage.calls else None
            llm[role] = d
        return {
            "sessions": n,
            "accepted": accepted,
            "rejected": self.status["rejected"],
            "failed": self.status["failed"],
            "accepted_pct": round(100.0 * accepted / n, 2) if n else 0.0,
            "mean_turns": avg("turns"),
            "mean_user_turns": avg("user_turns"),
            "mean_subgoals": avg("subgoals_total"),
            "mean_subgoals_completed": avg("subgoals_completed"),
            "mean_tool_calls": avg("tool_calls"),
            "tool_error_rate": round(self.sums["tool_errors"] / max(1, self.sums["tool_calls"]), 4),
            "rejection_reasons": dict(sorted(self.reasons.items())),
            "behaviour_tags": {tag: self.tags[tag] for tag in TAGS if self.tags[tag]},
            "llm_usage": llm,
            "wall_time_s": round(wall_time_s, 3),
            "sessions_per_s": round(n / wall_time_s, 3) if wall_time_s > 0 else None,
        }


def summarise(rows: Iterable[dict[str, Any]], wall_time_s: float) -> dict[str, Any]:
    """`rows`: one dict per session with status, turn counts, sub-goal numbers, reasons and usage."""
    tally = RunTally()
    for row in rows:
        tally.add(row)
    return tally.summary(wall_time_s)
