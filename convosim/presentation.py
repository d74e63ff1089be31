"""How numbers and logs look in a terminal (rich tables): presentation only, no logic."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def stats_table(stats: dict[str, Any]) -> Table:
    table = Table(title="convosim run", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in (
        "sessions",
        "accepted_pct",
        "rejected",
        "failed",
        "dataset_rows",
        "rejected_at_export",
        "mean_turns",
        "mean_user_turns",
        "mean_subgoals",
        "mean_subgoals_completed",
        "mean_tool_calls",
        "tool_error_rate",
        "wall_time_s",
        "sessions_per_s",
    ):
        if key in stats:  # a stored run's numbers have no export counts until it is exported
            table.add_row(key, str(stats[key]))
    for key, value in stats.get("diversity", {}).items():  # over accepted sessions (runners/diversity.py)
        table.add_row(key.replace("_", " "), str(value))
    for tag, count in stats.get("behaviour_tags", {}).items():
        table.add_row(f"behaviour: {tag}", f"{count} ({100 * count / max(1, stats['sessions']):.0f}%)")
    for code, count in stats["rejection_reasons"].items():
        table.add_row(f"reason: {code}", str(count))
    for role, usage in stats.get("llm_usage", {}).items():
        cost = "unknown" if usage["cost_usd"] is None else f"${usage['cost_usd']:.4f}"
        table.add_row(
            f"llm {role}",
            f"{usage['calls']} calls, {usage['prompt_tokens'] + usage['completion_tokens']} tokens, {cost}, "
            f"{usage['mean_latency_s']} s/call",
        )
    return table


def tools_table(stats: dict[str, Any]) -> Table:
    tools = Table("tool", "calls", "errors", "error rate", title="tools")
    for name, t in stats["tools"].items():
        tools.add_row(name, str(t["calls"]), str(t["errors"]), f"{t['error_rate']:.1%}")
    return tools


def events_table(rows: list[dict[str, Any]], text_of: Any) -> Table:
    table = Table(show_header=True)
    for column in ("session", "parent", "turn", "type", "from", "to", "text"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["session_id"],
            row["parent_session_id"] or "",
            str(row["turn"]),
            row["type"],
            row["sender"],
            row["recipient"],
            text_of(row)[:200],
        )
    return table


def plan_table(estimate: dict[str, Any]) -> Table:
    table = Table(title=f"plan: {estimate['sessions']} sessions (pilot of {estimate['pilot_sessions']})")
    for column in ("role", "calls", "prompt tokens", "completion tokens", "cost"):
        table.add_column(column, justify="right" if column != "role" else "left")
    for role, r in estimate["roles"].items():
        cost = "unknown" if r["cost_usd"] is None else f"${r['cost_usd']:.4f}"
        table.add_row(role, str(r["calls"]), str(r["prompt_tokens"]), str(r["completion_tokens"]), cost)
    total = "unknown" if estimate["total_cost_usd"] is None else f"${estimate['total_cost_usd']:.4f}"
    table.add_row("total", str(estimate["total_calls"]), "", str(estimate["total_tokens"]) + " tokens", total)
    table.caption = f"estimated wall time {estimate['estimated_wall_time_s']} s"
    return table


def eval_table(result: dict[str, Any]) -> Table:
    ks = list(result["overall"]["pass^k"])
    table = Table(
        "task",
        "trials",
        "successes",
        *[f"pass^{k}" for k in ks],
        "db success",
        "sub-goals",
        title=f"eval: {result['model']} on {result['scenario']}",
    )
    for task_id, t in result["tasks"].items():
        table.add_row(
            task_id,
            str(t["trials"]),
            str(t["successes"]),
            *[f"{t['pass^k'][k]:.3f}" for k in ks],
            f"{t['db_success']:.0%}",
            f"{t['subgoal_success']:.0%}",
        )
    o = result["overall"]
    table.add_row(
        "overall",
        "",
        "",
        *[f"{o['pass^k'][k]:.3f}" for k in ks],
        f"{o['db_success']:.0%}",
        f"{o['subgoal_success']:.0%}",
        style="bold",
    )
    return table


def compare_table(a: dict[str, Any], b: dict[str, Any]) -> Table:
    table = Table("metric", a["model"], b["model"], title=f"eval compare on {a['scenario']}")
    for k in sorted(set(a["overall"]["pass^k"]) & set(b["overall"]["pass^k"]), key=int):
        table.add_row(f"pass^{k}", f"{a['overall']['pass^k'][k]:.3f}", f"{b['overall']['pass^k'][k]:.3f}")
    for key in ("db_success", "subgoal_success", "assistant_tokens", "assistant_cost_usd"):
        table.add_row(key.replace("_", " "), str(a["overall"][key]), str(b["overall"][key]))
    return table
