"""LLM-bound efficiency against the scripted test server (real HTTP through litellm).

    python benchmarks/llm_efficiency.py [--latency 0.2] [-c 64 256] [--sessions-per-slot 2]

The server runs in its own process with a fixed reply latency; the user and assistant are LLM
roles. Per concurrency it prints achieved sessions/s, the ideal (concurrency / latency / LLM calls
per session: every call waits one latency and a session's calls are sequential), their ratio (over
the whole run, and in steady state: concurrency / mean session duration, i.e. with every slot busy,
so the ramp-up and the tail, where fewer sessions are live, do not count), and
the client's CPU milliseconds per LLM call. Once CPU per call x calls/s nears one core, the client
(litellm itself costs ~2.6 ms a call here) is the ceiling, not the bus or the server.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from convosim.config import load_scenario
from convosim.llm.client import litellm_module
from convosim.runners.run import run_scenario
from convosim.runners.store import RunStore

ROOT = Path(__file__).resolve().parent.parent


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def start_server(scenario: Path, latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "convosim.testing", str(scenario), "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening "):
        proc.kill()
        raise RuntimeError(f"test server did not start: {line!r}")
    return proc, line.split(" ", 1)[1]


def steady(store: Path, concurrency: int, latency: float) -> tuple[float, float]:
    """(sessions/s, ratio to ideal) while every slot is busy: the ramp-up and tail left out.

    With all `concurrency` slots busy, throughput is concurrency / mean session duration (Little's
    law), and the ideal duration of a session is its own LLM calls x latency, so the ratio is
    sum(calls x latency) / sum(duration): it does not depend on which tasks ran when.
    """
    run_store = RunStore(store)
    try:
        rows = run_store.durations_and_calls()
    finally:
        run_store.close()
    busy = sum(d for d, _ in rows)
    if not rows or busy <= 0:
        return 0.0, 0.0
    return concurrency * len(rows) / busy, sum(c * latency for _, c in rows) / busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--sessions-per-slot", type=int, default=2)
    parser.add_argument(
        "--transport",
        nargs="+",
        default=["litellm", "openai-http"],
        help="litellm, and/or openai-http (a plain POST, no litellm)",
    )
    parser.add_argument("--scenario", type=Path, default=ROOT / "examples/retail/scenario.yaml")
    args = parser.parse_args()
    litellm_module()  # pay litellm's ~2 s import before timing anything
    server, base_url = start_server(args.scenario, args.latency)
    try:
        print(f"LLM-bound efficiency: test server at {args.latency * 1000:.0f} ms latency, LLM user + assistant")
        print(
            f"{'transport':>11} {'concurrency':>11} {'sessions':>8} {'calls/sess':>10} {'sess/s':>8} "
            f"{'ideal':>8} {'ratio':>6} {'steady':>7} {'ratio':>6} {'CPU ms/call':>11} {'calls/s':>8}"
        )
        for transport, c in [(t, c) for t in args.transport for c in args.concurrency]:
            roles = {
                r: {
                    "policy": "llm",
                    "model": f"openai/{r}",
                    "api_base": base_url,
                    "max_concurrency": 4096,
                    "timeout_s": 60,
                    "transport": transport,
                }
                for r in ("user", "assistant")
            }
            n = c * args.sessions_per_slot
            scenario = load_scenario(args.scenario, {"sessions": n, "concurrency": c, "roles": roles})
            with tempfile.TemporaryDirectory() as tmp:
                cpu0, t0 = cpu_s(), time.perf_counter()
                result = run_scenario(scenario, Path(tmp) / "run", show_progress=False)
                wall, cpu = time.perf_counter() - t0, cpu_s() - cpu0
                steady_rate, steady_ratio = steady(Path(tmp) / "run" / "run.sqlite", c, args.latency)
            calls = result.stats["llm_requests_sent"]
            per_session = calls / n
            achieved = n / wall
            ideal = c / (args.latency * per_session)
            print(
                f"{transport:>11} {c:>11} {n:>8} {per_session:>10.1f} {achieved:>8.2f} "
                f"{ideal:>8.2f} {achieved / ideal:>6.1%} {steady_rate:>7.2f} {steady_ratio:>6.1%} "
                f"{1000 * cpu / calls:>11.2f} {calls / wall:>8.0f}"
            )
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


if __name__ == "__main__":
    main()
