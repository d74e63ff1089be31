"""`convosim run`: load a scenario, run its sessions on the bus, persist and export them."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from convosim import logs
from convosim.bus import RoleFactory
from convosim.config import Scenario
from convosim.environments.domain import Domain, load_domain
from convosim.environments.tasks import load_tasks
from convosim.errors import ConvosimError
from convosim.models import Role, Rubric, Task
from convosim.runners.export import AtomicJsonl, openai_messages
from convosim.runners.preflight import run_preflight
from convosim.runners.queries import run_stats
from convosim.runners.ray_runner import run_on_ray
from convosim.runners.roles import PolicyHooks, derived_seed
from convosim.runners.row_checks import RowChecks
from convosim.runners.session import SessionOutcome, SessionSpec
from convosim.runners.session_factory import SessionFactory
from convosim.runners.stats import RunTally, turn_counts
from convosim.runners.store import STORE_NAME, RunStore


@dataclass
class RunResult:
    out_dir: Path
    run_id: str
    stats: dict[str, Any]


def session_specs(scenario: Scenario, tasks: list[Task]) -> Iterator[SessionSpec]:
    """Session i plays task i mod T (trial i div T); ids are stable for (scenario, seed, task, trial)."""
    for idx in range(scenario.sessions):
        task = tasks[idx % len(tasks)]
        trial = idx // len(tasks)
        session_id = f"{derived_seed(scenario.name, scenario.seed, task.id, trial):016x}"
        yield SessionSpec(idx=idx, session_id=session_id, task=task, trial=trial)


def load_inputs(scenario: Scenario) -> tuple[Domain, list[Task], dict[str, Rubric]]:
    domain = load_domain(scenario.domain)
    tasks, rubrics = load_tasks(scenario.tasks, domain)
    return domain, tasks, rubrics


def export(
    store: RunStore, run_id: str, domain: Domain, out_dir: Path, near_threshold: float | None = 0.9
) -> dict[str, int]:
    """Rebuild dataset.jsonl and rejected.jsonl from the store in one streaming pass. An accepted
    session whose row fails the row checks (a duplicate or near copy, no system prompt) goes to
    rejected.jsonl with its reasons, never to the dataset. Returns the counts written."""
    tools = domain.openai_tools()
    checks = RowChecks(domain.policy, near_threshold)
    counts = {"dataset_rows": 0, "rejected_rows": 0, "rejected_at_export": 0}
    with AtomicJsonl(out_dir / "dataset.jsonl") as dataset, AtomicJsonl(out_dir / "rejected.jsonl") as rejected:
        for row in store.sessions(run_id):
            messages = openai_messages(domain.policy, store.events(row["session_id"]))
            line = {"messages": messages, "tools": tools}
            reasons = list(row["reasons"])
            if row["status"] == "accepted":
                at_export = checks.check(row["session_id"], line)
                if not at_export:
                    dataset.write(line)
                    counts["dataset_rows"] += 1
                    continue
                reasons = [r.model_dump() for r in at_export]
                counts["rejected_at_export"] += 1
            rejected.write(
                {
                    "session_id": row["session_id"],
                    "task_id": row["task_id"],
                    "status": row["status"] if row["status"] != "accepted" else "rejected_at_export",
                    "end_reason": row["end_reason"],
                    "reasons": reasons,
                    **line,
                }
            )
            counts["rejected_rows"] += 1
    return counts


# Settings that may differ between a run and its resume: they change speed, not content.
RESUMABLE_CHANGES = {
    "concurrency",
    "sessions",
    "cache",
    "isolate",
    "runner",
    "ray_workers",
    "ray_address",
    "limits.max_cost_usd",  # a run stopped at its budget is resumed with a higher one
}


def config_changes(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the settings that differ between two recorded scenarios."""
    changed = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += config_changes(a, b, f"{prefix}{key}.")
        elif a != b and f"{prefix}{key}" not in RESUMABLE_CHANGES:
            changed.append(f"{prefix}{key}")
    return changed


def content_hash(domain: Domain, rubrics: dict[str, Rubric]) -> str:
    """What a run's data depends on besides its settings: the template database, the policy, every
    tool as loaded and every task's rubric. A resume refuses a change here as it refuses one in the
    settings: mixing old and new system prompts or tools in one dataset is never what anyone wants."""
    parts = {
        "template": domain.template_hash,
        "policy": domain.policy,
        "tools": [t.model_dump(mode="json") for t in domain.tools.values()],
        "rubrics": {k: r.model_dump(mode="json") for k, r in sorted(rubrics.items())},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _open_run(
    store_path: Path, recorded: dict[str, Any], scenario: Scenario, resume: bool, force: bool
) -> tuple[RunStore, str, set[str]]:
    """(store, run id, ids of sessions already finished) for a new run or the one being resumed."""
    if not store_path.exists():
        store = RunStore(store_path)
        run_id = f"{derived_seed(scenario.name, scenario.seed, time.time_ns()):016x}"
        store.start_run(run_id, recorded, scenario.seed)
        return store, run_id, set()
    if not resume:
        raise ConvosimError(
            store_path, None, "this folder already holds a run: add --resume to finish it, or choose another --out"
        )
    store = RunStore(store_path)
    first = store.runs()[0]
    run_id = first["run_id"]
    before = dict(first["scenario"])
    before.setdefault("content_sha256", recorded["content_sha256"])  # a store older than the content check
    changed = config_changes(before, json.loads(json.dumps(recorded, sort_keys=True, default=str)))
    if changed and not force:
        store.close()
        what = [
            "domain or task content (policy, tools, seed data, tasks)" if c == "content_sha256" else c for c in changed
        ]
        raise ConvosimError(
            store_path, ", ".join(what), "differs from the run being resumed (add --force to resume anyway)"
        )
    rows = [r for r in store.sessions(run_id) if not r["parent_session_id"]]
    failed = [r["session_id"] for r in rows if r["status"] == "failed"]
    store.delete_sessions(failed)  # failed = never judged (a dead server, a crash): run them again
    done = {r["session_id"] for r in rows if r["status"] != "failed"}
    store.mark_running(run_id)
    return store, run_id, done


async def _run_local(
    scenario: Scenario,
    domain: Domain,
    rubrics: dict[str, Rubric],
    overrides: dict[Role, RoleFactory],
    todo: list[SessionSpec],
    on_outcome: Callable[[SessionOutcome], None],
    hooks: PolicyHooks | None = None,
) -> dict[str, Any]:
    """This process's own engine (the default runner); returns extra numbers for stats.json."""
    async with SessionFactory(scenario, domain, rubrics, overrides=overrides, hooks=hooks) as sessions:
        await sessions.run_all(todo, scenario.concurrency, on_outcome)
        return await sessions.numbers()


async def _run(
    scenario: Scenario,
    out_dir: Path,
    console: Console,
    show_progress: bool,
    overrides: dict[Role, RoleFactory],
    resume: bool = False,
    force: bool = False,
    hooks: PolicyHooks | None = None,
) -> RunResult:
    domain, tasks, rubrics = load_inputs(scenario)
    checked = await run_preflight(scenario, skip=frozenset(overrides))  # before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    store_path = out_dir / STORE_NAME
    recorded = scenario.model_dump(mode="json") | {
        "domain": str(scenario.domain.resolve()),
        "tasks": str(scenario.tasks.resolve()),
        "content_sha256": content_hash(domain, rubrics),
    }
    store, run_id, done = _open_run(store_path, recorded, scenario, resume, force)
    # Everything loaded so far (libraries, domain, tasks) lives for the whole run: keep the cyclic
    # GC from re-scanning it on every full collection (litellm alone is ~1M objects). Unfrozen
    # when the run ends (run_scenario), so repeated runs in one process free what they leave.
    gc.collect()
    gc.freeze()
    logs.configure(out_dir / "convosim.log.jsonl")
    log = structlog.get_logger("convosim.run")
    todo = [spec for spec in session_specs(scenario, tasks) if spec.session_id not in done]
    log.info(
        "run_started",
        run_id=run_id,
        sessions=scenario.sessions,
        already_done=len(done),
        todo=len(todo),
        concurrency=scenario.concurrency,
    )
    tally = RunTally()
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("accepted {task.fields[accepted]}"),
        TextColumn("spent {task.fields[spent]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not show_progress,
        transient=False,
    ) as progress:
        bar = progress.add_task(scenario.name, total=scenario.sessions, accepted=0, completed=len(done), spent="$0")
        spent = 0.0

        def on_outcome(outcome: SessionOutcome) -> None:
            verdict = outcome.verdict
            status = store.write_session(
                run_id=run_id,
                session_id=outcome.spec.session_id,
                idx=outcome.spec.idx,
                task_id=outcome.spec.task.id,
                trial=outcome.spec.trial,
                status=outcome.status,
                end_reason=outcome.end_reason,
                started_at=outcome.started_at,
                events=outcome.events,
                verdict=verdict,
                usage=outcome.usage,
                error=outcome.error,
            )
            if status != outcome.status:  # it could not be stored as it was: failed, with its reason
                verdict = None
            tally.add(
                {
                    "status": status,
                    **turn_counts(outcome.events),
                    "subgoals_total": len(outcome.spec.task.subgoals),
                    "subgoals_completed": verdict.subgoals_completed if verdict else 0,
                    "usage": outcome.usage,
                    "reason_codes": sorted({r.code for r in verdict.reasons})
                    if verdict
                    else [outcome.end_reason or "error"],
                    "tags": verdict.tags if verdict else (),
                }
            )
            nonlocal spent
            spent += sum(u.cost_usd for u in outcome.usage.values())
            progress.update(bar, advance=1, accepted=tally.status["accepted"], spent=f"${spent:.4f}")

        extra: dict[str, Any] = {}
        if scenario.runner == "ray":
            extra["ray"] = run_on_ray(
                recorded, todo, {t.id: t for t in tasks}, on_outcome, scenario.ray_workers, scenario.ray_address
            )
        else:
            extra.update(await _run_local(scenario, domain, rubrics, overrides, todo, on_outcome, hooks))
    wall = time.perf_counter() - started
    exported = export(store, run_id, domain, out_dir, scenario.near_duplicate_threshold)
    if done:  # a resumed run: its numbers cover every session, not only this invocation's
        stats = run_stats(out_dir)
        stats["wall_time_s"] = round(wall, 3)
    else:
        stats = tally.summary(wall)
    stats.update(extra)
    stats.update(exported)
    if checked:
        stats["preflight"] = checked
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    store.finish_run(run_id)
    store.close()
    log.info("run_finished", run_id=run_id, **{k: v for k, v in stats.items() if k != "rejection_reasons"})
    return RunResult(out_dir, run_id, stats)


def run_scenario(
    scenario: Scenario,
    out_dir: Path,
    console: Console | None = None,
    show_progress: bool = True,
    overrides: dict[Role, RoleFactory] | None = None,
    resume: bool = False,
    force: bool = False,
    hooks: PolicyHooks | None = None,
) -> RunResult:
    """Run a scenario to completion. `overrides` replaces the scenario's factory for some roles;
    `hooks` adapt the policies the scenario picks (a scripted test plays some turns around them).

    With `resume`, an interrupted run in `out_dir` is completed: finished sessions (committed with
    their events and verdict) are kept, any other is run again from the start.
    """
    console = console or Console(stderr=True)
    try:
        return asyncio.run(_run(scenario, out_dir, console, show_progress, overrides or {}, resume, force, hooks))
    finally:
        gc.unfreeze()
        logs.configure(None)
