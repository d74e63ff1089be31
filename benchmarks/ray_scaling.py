"""Ray scale-out: offline sessions/s with the local runner and with 1 and 2 Ray workers.

    python benchmarks/ray_scaling.py [-n 3000] [-w 1 2]

Each Ray worker runs its own engine (one core); the driver writes the one run store. On a 2-core
machine the driver and the workers share the cores, so expect well under 2x.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from convosim.config import load_scenario
from convosim.runners.run import run_scenario

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--sessions", type=int, default=3000)
    parser.add_argument("-w", "--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--scenario", type=Path, default=ROOT / "examples/retail/scenario.yaml")
    args = parser.parse_args()
    print(f"Ray scaling: {args.sessions} offline sessions of {args.scenario.parent.name}")
    print(f"{'runner':>14} {'sessions/s':>11} {'wall s':>8} {'accepted %':>11}")
    configs: list[tuple[str, dict]] = [("local", {})] + [
        (f"ray x{w}", {"runner": "ray", "ray_workers": w}) for w in args.workers
    ]
    for label, extra in configs:
        scenario = load_scenario(args.scenario, {"sessions": args.sessions, "concurrency": 32, **extra})
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            result = run_scenario(scenario, Path(tmp) / "run", show_progress=False)
            wall = time.perf_counter() - started
        print(f"{label:>14} {args.sessions / wall:>11.1f} {wall:>8.2f} {result.stats['accepted_pct']:>11.1f}")


if __name__ == "__main__":
    main()
