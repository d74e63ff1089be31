"""Memory: per concurrent session, and flatness over a long offline run.

    python benchmarks/memory.py per-session [-c 1 64 256 1024]
    python benchmarks/memory.py flat [-n 20000] [--every 2000]

`per-session` runs each concurrency in a fresh process (2 x C sessions) and prints its peak RSS
and (peak - peak at the smallest C) / (C - smallest C): the memory one live session costs.
`flat` runs N offline sessions in this process and prints RSS every --every sessions; finished
sessions' agents, databases and buffers are released, so the curve must stay flat.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "examples/retail/scenario.yaml"


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


def one(concurrency: int) -> None:
    """Child mode: run 2 x C sessions and print peak RSS (MB) as JSON."""
    import resource

    from convosim.config import load_scenario
    from convosim.runners.run import run_scenario

    scenario = load_scenario(SCENARIO, {"sessions": 2 * concurrency, "concurrency": concurrency})
    with tempfile.TemporaryDirectory() as tmp:
        result = run_scenario(scenario, Path(tmp) / "run", show_progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_mb": peak, "accepted_pct": result.stats["accepted_pct"]}))


def per_session(levels: list[int]) -> None:
    print(f"{'concurrency':>11} {'sessions':>8} {'peak RSS MB':>12} {'MB per live session':>20}")
    base = None
    for c in levels:
        out = subprocess.run([sys.executable, __file__, "_one", str(c)], capture_output=True, text=True, check=True)
        peak = json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]
        if base is None:
            base = (c, peak)
            per = "-"
        else:
            per = f"{(peak - base[1]) / (c - base[0]):.3f}"
        print(f"{c:>11} {2 * c:>8} {peak:>12.1f} {per:>20}")


def flat(n: int, every: int) -> None:
    from convosim.config import load_scenario
    from convosim.runners.run import run_scenario

    scenario = load_scenario(SCENARIO, {"sessions": n, "concurrency": 64})
    samples: list[tuple[int, float]] = []
    stop = threading.Event()

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "run" / "run.sqlite"

        def watch() -> None:
            from convosim.runners.store import count_sessions

            mark = 0
            while not stop.wait(0.5):
                if not store.exists():
                    continue
                done = count_sessions(store)
                if done >= mark:
                    samples.append((done, rss_mb()))
                    mark = (done // every + 1) * every

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        started = time.perf_counter()
        result = run_scenario(scenario, Path(tmp) / "run", show_progress=False)
        stop.set()
        thread.join()
    print(
        f"flat memory: {n} offline sessions in {time.perf_counter() - started:.0f} s "
        f"({result.stats['accepted_pct']}% accepted)"
    )
    print(f"{'sessions done':>13} {'RSS MB':>8}")
    for done, mb in samples:
        print(f"{done:>13} {mb:>8.1f}")
    if len(samples) >= 3:
        middle, last = samples[len(samples) // 3][1], samples[-1][1]
        print(f"growth from 1/3 of the run to the end: {last - middle:+.1f} MB")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "_one":
        one(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("per-session")
    p.add_argument("-c", "--concurrency", type=int, nargs="+", default=[1, 64, 256, 1024])
    f = sub.add_parser("flat")
    f.add_argument("-n", "--sessions", type=int, default=20000)
    f.add_argument("--every", type=int, default=2000)
    args = parser.parse_args()
    if args.mode == "per-session":
        per_session(args.concurrency)
    else:
        flat(args.sessions, args.every)


if __name__ == "__main__":
    main()
