"""Dialogue quality of the embedded default: 300 offline sessions of each example, measured.

    .venv/bin/python benchmarks/dialogue_quality.py [--sessions 300]

Prints, per example: acceptance, mean turns (every message counts) and completed sub-goals, the
diversity metrics of `runners/diversity.py`, and the share of sessions with each behaviour tag,
against issue #13's targets.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from convosim.config import load_scenario
from convosim.rules.behaviours import TAGS
from convosim.runners.diversity import diversity
from convosim.runners.run import run_scenario
from convosim.runners.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {
    "accepted_pct": (">=", 95.0),
    "mean_turns": (">=", 20.0),
    "mean_subgoals_completed": (">=", 2.5),
    "distinct_assistant_messages": (">=", 0.6),
    "distinct_user_messages": (">=", 0.8),
    "distinct_user_bigrams": (">=", 0.2),
    "top_assistant_sentence_share": ("<=", 0.05),
    **{f"sessions_with_{tag}": (">=", 0.1) for tag in TAGS},
}


def measure(example: str, sessions: int, out: Path) -> dict[str, object]:
    scenario = load_scenario(ROOT / "examples" / example / "scenario.yaml", {"sessions": sessions})
    result = run_scenario(scenario, out, show_progress=False)
    store = RunStore(out / "run.sqlite")
    try:
        accepted = [list(store.events(s["session_id"])) for s in store.sessions() if s["status"] == "accepted"]
    finally:
        store.close()
    stats = result.stats
    tags = {f"sessions_with_{tag}": round(stats["behaviour_tags"].get(tag, 0) / sessions, 3) for tag in TAGS}
    return {
        "accepted_pct": stats["accepted_pct"],
        "mean_turns": stats["mean_turns"],
        "mean_subgoals_completed": stats["mean_subgoals_completed"],
        **diversity(accepted),
        **tags,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=300)
    args = parser.parse_args()
    failed = 0
    for example in ("retail", "telecom"):
        with tempfile.TemporaryDirectory() as tmp:
            numbers = measure(example, args.sessions, Path(tmp) / "run")
        print(f"== {example}: {args.sessions} sessions")
        for key, value in numbers.items():
            target = TARGETS.get(key)
            verdict = ""
            if target is not None:
                op, bound = target
                ok = value >= bound if op == ">=" else value <= bound  # type: ignore[operator]
                failed += not ok
                verdict = f"   target {op} {bound}: {'ok' if ok else 'MISSED'}"
            print(f"  {key:30} {json.dumps(value)}{verdict}")
    print(f"targets missed: {failed}")


if __name__ == "__main__":
    main()
