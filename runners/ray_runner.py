"""`--runner ray`: sessions sharded across Ray workers, results streamed back into the one store.

Each worker is a Ray actor running the same async engine (its own bus, environments and
concurrency) over the batches of sessions it is handed; finished sessions come back as JSON (the
same typed events the store keeps) and the driver writes them as they arrive, so resume works
unchanged. Works on a local cluster (`ray.init` with this machine's cores, listening on
127.0.0.1) or an existing one (`--address`), which must have convosim installed on its nodes.
Ray is an optional extra: `pip install convosim[ray]`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from convosim.errors import ConvosimError
from convosim.llm.usage import Usage
from convosim.messages import Verdict, event_from_json
from convosim.models import Task
from convosim.runners.session import SessionOutcome, SessionSpec


def outcome_to_json(outcome: SessionOutcome) -> dict[str, Any]:
    return {
        "idx": outcome.spec.idx,
        "session_id": outcome.spec.session_id,
        "task_id": outcome.spec.task.id,
        "trial": outcome.spec.trial,
        "status": outcome.status,
        "end_reason": outcome.end_reason,
        "verdict": outcome.verdict.model_dump_json() if outcome.verdict else None,
        "events": [e.model_dump_json() for e in outcome.events],
        "started_at": outcome.started_at,
        "error": outcome.error,
        "usage": {role: u.to_record() for role, u in outcome.usage.items()},
    }


def outcome_from_json(data: dict[str, Any], tasks: dict[str, Task]) -> SessionOutcome:
    spec = SessionSpec(data["idx"], data["session_id"], tasks[data["task_id"]], data["trial"])
    verdict = event_from_json(data["verdict"]) if data["verdict"] else None
    assert verdict is None or isinstance(verdict, Verdict)
    return SessionOutcome(
        spec,
        data["status"],
        data["end_reason"],
        verdict,
        [event_from_json(e) for e in data["events"]],
        data["started_at"],
        data["error"],
        {role: Usage.from_record(u) for role, u in data["usage"].items()},
    )


class ShardWorker:
    """A Ray actor: one engine, fed batches of sessions by the driver."""

    def __init__(self, scenario: dict[str, Any]) -> None:
        from convosim.config import scenario_from_record
        from convosim.runners.run import load_inputs

        self.scenario = scenario_from_record(scenario)
        self.domain, tasks, self.rubrics = load_inputs(self.scenario)
        self.tasks = {t.id: t for t in tasks}
        self.sessions: Any = None  # a started SessionFactory, for the actor's lifetime

    async def _start(self) -> None:
        from convosim.runners.session_factory import SessionFactory

        self.sessions = await SessionFactory(self.scenario, self.domain, self.rubrics).__aenter__()

    async def run(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.sessions is None:
            await self._start()
        specs = [SessionSpec(s["idx"], s["session_id"], self.tasks[s["task_id"]], s["trial"]) for s in batch]
        done: list[dict[str, Any]] = []
        await self.sessions.run_all(specs, self.scenario.concurrency, lambda o: done.append(outcome_to_json(o)))
        return done

    def pid(self) -> int:
        return os.getpid()


def run_on_ray(
    scenario: dict[str, Any],
    todo: Sequence[SessionSpec],
    tasks: dict[str, Task],
    on_outcome: Callable[[SessionOutcome], None],
    workers: int | None = None,
    address: str | None = None,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Run `todo` on Ray; calls `on_outcome` in this process as each batch comes back."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as exc:
        raise ConvosimError(None, "--runner", "ray is not installed: pip install 'convosim[ray]'") from exc
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(
                num_cpus=workers or os.cpu_count() or 1,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
                _node_ip_address="127.0.0.1",
            )
    try:
        count = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        actor = ray.remote(num_cpus=1)(ShardWorker)
        pool = [actor.remote(scenario) for _ in range(count)]
        size = batch_size or max(1, int(scenario.get("concurrency", 16)))
        batches = [
            [
                {"idx": s.idx, "session_id": s.session_id, "task_id": s.task.id, "trial": s.trial}
                for s in todo[i : i + size]
            ]
            for i in range(0, len(todo), size)
        ]
        pending: dict[Any, Any] = {}
        for worker in pool:
            if batches:
                pending[worker.run.remote(batches.pop(0))] = worker
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            worker = pending.pop(ready[0])
            for data in ray.get(ready[0]):
                on_outcome(outcome_from_json(data, tasks))
            if batches:
                pending[worker.run.remote(batches.pop(0))] = worker
        pids = ray.get([w.pid.remote() for w in pool])
        return {"workers": count, "worker_pids": sorted(pids)}
    finally:
        if started_here:
            ray.shutdown()
