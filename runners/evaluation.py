"""`convosim eval`: score an assistant model over a scenario's tasks, K trials each.

pass^k is tau2-bench's: for a task tried n times with c successes, the chance that k trials drawn
from those n all succeed, C(c, k) / C(n, k); averaged over tasks. It rewards an assistant that
succeeds every time, not once in a while. A trial succeeds when the validator accepts it (final
database state, facts told, rules kept); the database-state success rate and the sub-goals
completed are reported beside it, with tokens, cost and rejection reasons. Everything is read
back from an ordinary run store, so an evaluation resumes like any run.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from math import comb
from pathlib import Path
from typing import Any

from convosim.runners.replay import open_store


def pass_hat_k(trials: int, successes: int, k: int) -> float:
    """C(c, k) / C(n, k): all of k trials drawn from the n succeed (tau2-bench's pass^k)."""
    if k > trials:
        raise ValueError(f"pass^{k} needs at least {k} trials, not {trials}")
    return comb(successes, k) / comb(trials, k)


def evaluate(run_dir: str | Path) -> dict[str, Any]:
    """The scores of a finished run, per task and overall (K = the fewest trials of any task)."""
    store = open_store(run_dir)
    try:
        sessions = [s for s in store.sessions() if not s.get("parent_session_id")]
        usage = store.usage()
        run = store.runs()[0]
    finally:
        store.close()
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in sessions:
        by_task[s["task_id"]].append(s)
    k_max = min((len(v) for v in by_task.values()), default=0)
    tasks: dict[str, Any] = {}
    reasons: Counter[str] = Counter()
    for task_id, rows in sorted(by_task.items()):
        n = len(rows)
        c = sum(r["status"] == "accepted" for r in rows)
        codes = [{x["code"] for x in r["reasons"]} for r in rows]
        reasons.update(code for cs in codes for code in cs)
        db_ok = sum(r["status"] != "failed" and "state_mismatch" not in cs for r, cs in zip(rows, codes, strict=True))
        tasks[task_id] = {
            "trials": n,
            "successes": c,
            "pass^k": {str(k): round(pass_hat_k(n, c, k), 4) for k in range(1, k_max + 1)},
            "db_success": round(db_ok / n, 4),
            "subgoal_success": _subgoal_success(rows),
        }
    assistant = [u["assistant"] for u in usage.values() if "assistant" in u]
    overall = {
        "pass^k": {
            str(k): round(sum(t["pass^k"][str(k)] for t in tasks.values()) / len(tasks), 4) for k in range(1, k_max + 1)
        }
        if tasks
        else {},
        "db_success": round(sum(t["db_success"] for t in tasks.values()) / len(tasks), 4) if tasks else 0.0,
        "subgoal_success": _subgoal_success(sessions),
        "assistant_tokens": sum(u.prompt_tokens + u.completion_tokens for u in assistant),
        "assistant_cost_usd": None
        if any(u.cost_unknown_calls for u in assistant)
        else round(sum(u.cost_usd for u in assistant), 6),
        "rejection_reasons": dict(sorted(reasons.items())),
    }
    roles = run["scenario"].get("roles") or {}
    model = (roles.get("assistant") or {}).get("model") or "offline"
    return {"model": model, "scenario": run["scenario"].get("name"), "k": k_max, "tasks": tasks, "overall": overall}


def _subgoal_success(rows: list[dict[str, Any]]) -> float:
    done, total = sum(r["subgoals_completed"] or 0 for r in rows), sum(r["subgoals_total"] or 0 for r in rows)
    return round(done / total, 4) if total else 0.0


def write_evaluation(run_dir: str | Path) -> dict[str, Any]:
    result = evaluate(run_dir)
    target = Path(run_dir) / "eval.json"
    staged = target.with_suffix(".json.tmp")
    staged.write_text(json.dumps(result, indent=2), encoding="utf-8")
    staged.replace(target)
    return result
