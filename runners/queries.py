"""Querying a run: the message log across sessions (`convosim logs`) and its numbers (`convosim stats`)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from convosim.rules.behaviours import recorded_tags
from convosim.runners.diversity import Diversity
from convosim.runners.replay import open_store
from convosim.runners.stats import summarise, turn_counts


def query_events(
    run_dir: str | Path,
    session: str | None = None,
    agent: str | None = None,
    event_type: str | None = None,
    grep: str | None = None,
) -> list[dict[str, Any]]:
    """Events matching every given filter, in (session, bus) order, with their session's lineage."""
    store = open_store(run_dir)
    try:
        return store.query_events(session, agent, event_type, grep)
    finally:
        store.close()


def summary_text(row: dict[str, Any]) -> str:
    p = row["payload"]
    if "content" in p:
        return str(p["content"])
    if "calls" in p:
        return "; ".join(f"{c['name']} {json.dumps(c['arguments'], sort_keys=True)}" for c in p["calls"])
    if "results" in p:
        return "; ".join(
            f"{r['name']}{' ERROR' if r['is_error'] else ''} {json.dumps(r['output'])[:120]}" for r in p["results"]
        )
    if "reasons" in p:
        return ("accepted" if p["accepted"] else "rejected") + " " + ", ".join(r["code"] for r in p["reasons"])
    return str(p.get("reason") or p.get("error") or "")


def run_stats(run_dir: str | Path) -> dict[str, Any]:
    store = open_store(run_dir)
    try:
        sessions = store.sessions()
        usage = store.usage()
        rows = []
        per_tool: dict[str, Counter[str]] = {}
        variety = Diversity()
        for s in sessions:
            events = list(store.events(s["session_id"]))
            if s["status"] == "accepted":
                variety.add(events)
            for e in events:
                for r in getattr(e, "results", ()) if e.type == "tool_result" else ():
                    counter = per_tool.setdefault(r.name, Counter())
                    counter["calls"] += 1
                    counter["errors"] += int(r.is_error)
            rows.append(
                {
                    "status": s["status"],
                    **turn_counts(events),
                    "subgoals_total": s["subgoals_total"] or 0,
                    "subgoals_completed": s["subgoals_completed"] or 0,
                    "usage": usage.get(s["session_id"], {}),
                    "reason_codes": sorted({r["code"] for r in s["reasons"]})
                    or ([s["end_reason"] or "error"] if s["status"] == "failed" else []),
                    "tags": recorded_tags(events),
                }
            )
        stats = summarise(rows, store.time_span())
        stats["tools"] = {
            name: {"calls": c["calls"], "errors": c["errors"], "error_rate": round(c["errors"] / c["calls"], 4)}
            for name, c in sorted(per_tool.items())
        }
        stats["forks"] = sum(1 for s in sessions if s.get("parent_session_id"))
        stats["diversity"] = variety.summary()
        return stats
    finally:
        store.close()
