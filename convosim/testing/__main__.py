"""Serve the scripted OpenAI-compatible test server for a scenario, in its own process.

    python -m convosim.testing examples/retail/scenario.yaml [--latency 0.2] [--fault-rate 0]

Models `user`, `assistant`, `judge` and `tool` are played by convosim's offline policies (see
convosim.testing.scripted). It prints `listening <base_url>` once ready and serves until killed.
Benchmarks run it apart from the client so the client's CPU per call is measured alone.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import signal
import sys
import threading

from convosim.config import load_scenario
from convosim.environments.domain import load_domain
from convosim.environments.tasks import load_tasks
from convosim.testing.scripted import OfflineResponders
from convosim.testing.server import FaultPlan, ScriptedChatServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every reply")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="total rate of injected faults")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    domain = load_domain(scenario.domain)
    tasks, _ = load_tasks(scenario.tasks, domain)
    responders = OfflineResponders(domain.tools, tasks, scenario.rules, scenario.persona, seed=args.seed)
    faults = FaultPlan.uniform(args.fault_rate, seed=args.seed) if args.fault_rate else None
    gc.freeze()  # the domain and policies live as long as the server: keep full GCs short
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with ScriptedChatServer(
        responders.responders(), latency_s=args.latency, faults=faults, record_requests=False
    ) as server:
        print(f"listening {server.base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    sys.exit(0)


if __name__ == "__main__":
    main()
