"""The fault suite at scale: every fault kind, injected at a seeded rate, through both transports.

    python benchmarks/faults.py [--sessions 250] [--rate 0.35]

The scripted OpenAI-compatible test server (in this process, 127.0.0.1) plays the user and the
assistant and injects 429s (Retry-After as seconds, or an HTTP-date on openai-http), 500s, hangs past
the client timeout, malformed tool arguments, unknown tools, empty choices and non-JSON bodies.
Per transport it prints the faults injected, how the sessions ended, and whether every request the
server saw is counted in the run's usage (sessions + late + pre-flight).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from convosim.config import load_scenario
from convosim.environments.domain import load_domain
from convosim.environments.tasks import load_tasks
from convosim.runners.run import run_scenario
from convosim.testing import FaultPlan, ScriptedChatServer
from convosim.testing.scripted import OfflineResponders
from convosim.testing.server import EXTRA_FAULTS, FAULT_KINDS

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "examples/retail/scenario.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=250)
    parser.add_argument("--rate", type=float, default=0.35, help="share of requests that get a fault")
    args = parser.parse_args()
    base = load_scenario(SCENARIO)
    domain = load_domain(base.domain)
    tasks, _ = load_tasks(base.tasks, domain)
    kinds = (*FAULT_KINDS, *EXTRA_FAULTS)
    total_faults = 0
    for transport in ("litellm", "openai-http"):
        plan = FaultPlan({k: args.rate / len(kinds) for k in kinds}, seed=11, retry_after_s=0.05, hang_s=1.5)
        plan.retry_after_date = transport == "openai-http"
        responders = OfflineResponders(domain.tools, tasks, base.rules, base.persona).responders()
        with ScriptedChatServer(responders, faults=plan) as server, tempfile.TemporaryDirectory() as tmp:
            role = {"api_base": server.base_url, "timeout_s": 0.6, "max_retries": 4, "transport": transport}
            roles = {
                "user": {"policy": "llm", "model": "openai/user", **role},
                "assistant": {"policy": "llm", "model": "openai/assistant", **role},
            }
            scenario = load_scenario(SCENARIO, {"sessions": args.sessions, "concurrency": 48, "roles": roles})
            started = time.perf_counter()
            stats = run_scenario(scenario, Path(tmp) / "run", show_progress=False).stats
            wall = time.perf_counter() - started
            injected = dict(sorted(server.faults_injected.items()))
            served = server.request_count
        counted = sum(u["calls"] for u in stats["llm_usage"].values())
        late = sum(u["calls"] for u in stats.get("late_llm_usage", {}).values())
        preflight = stats.get("preflight", {}).get("calls", 0)
        faults = sum(injected.values())
        total_faults += faults
        print(f"{transport}: {faults} faults injected {injected}")
        print(
            f"  sessions {stats['sessions']}: accepted {stats['accepted']}, rejected {stats['rejected']}, "
            f"failed {stats['failed']} (rows with reasons: all); {wall:.1f} s"
        )
        print(
            f"  requests served {served}; counted {counted} in sessions + {late} late + {preflight} pre-flight"
            f" = {counted + late + preflight} ({'equal' if counted + late + preflight == served else 'MISMATCH'})"
        )
    print(f"total faults injected: {total_faults}")


if __name__ == "__main__":
    main()
