"""The generation pipeline: prepare tools, predict their output schemas, generate tasks, then run.

Each stage writes plain domain files (tools/<name>.yaml, schemas.yaml, a tasks file) that a person
can read and edit, never overwriting hand-written ones, and reports what it kept and rejected.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from convosim.environments.domain import Domain, load_domain
from convosim.environments.output_schemas import check_schemas, derive_schema
from convosim.environments.taskgen import generate_tasks
from convosim.environments.toolgen import Rejected, expand_offline, vet
from convosim.errors import ConvosimError
from convosim.models import Task, ToolSpec
from convosim.yamlio import load_data


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=110, allow_unicode=True)


def write_tools(root: Path, tools: list[ToolSpec]) -> list[Path]:
    folder = root / "tools"
    folder.mkdir(exist_ok=True)
    written = []
    for tool in tools:
        path = folder / f"{tool.name}.yaml"
        if path.exists():
            continue  # never overwrite a tool file
        path.write_text(_dump(tool.model_dump(mode="json", exclude_none=True)), encoding="utf-8")
        written.append(path)
    return written


def expand_tools(root: Path, model: Any = None) -> dict[str, Any]:
    """Stage 1. `model`: an LLM toolsmith (agents.llm_toolsmith) or None for the offline expander."""
    domain = load_domain(root)
    if model is None:
        kept, rejected = expand_offline(domain)
    else:
        proposed, unparsable = model.propose(domain)
        kept, rejected = vet(domain, proposed)
        rejected = [*unparsable, *rejected]
    written = write_tools(root, kept)
    return {
        "stage": "tools",
        "before": len(domain.tools),
        "added": [p.stem for p in written],
        "rejected": [{"tool": r.name, "reason": r.reason} for r in rejected],
    }


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _existing_schemas(root: Path) -> dict[str, Any]:
    path = root / "schemas.yaml"
    if not path.is_file():
        return {}
    data = load_data(path) or {}
    if not isinstance(data, dict):
        raise ConvosimError(path, None, "must map tool names to JSON schemas")
    return data


def write_schemas(root: Path, predictor: Any = None) -> dict[str, Any]:
    """Stage 2: an output schema per tool (derived from SQL; predicted by a model for the rest).

    Schemas already in `schemas.yaml` (derived earlier, or edited by a person) are kept as they
    are; only tools without one get a new schema, so a second run adds and never truncates."""
    domain = load_domain(root)
    existing = _existing_schemas(root)
    inline = {n for n, t in domain.tools.items() if t.output_schema is not None and n not in existing}
    schemas: dict[str, Any] = {}
    for name, tool in domain.tools.items():
        if name in existing or name in inline:
            continue
        schema = derive_schema(domain, tool)
        if schema is not None:
            schemas[name] = schema
    missing = [t for n, t in domain.tools.items() if n not in schemas and n not in existing and n not in inline]
    if missing and predictor is not None:
        schemas.update(predictor.predict(domain, missing, {**existing, **schemas}))
    problems = check_schemas(domain, schemas)
    added = {n: s for n, s in schemas.items() if n not in problems}
    if added or not (root / "schemas.yaml").exists():
        _write_atomic(root / "schemas.yaml", _dump({**existing, **added}))
    covered = set(existing) | inline | set(added)
    return {
        "stage": "schemas",
        "schemas": len(covered),
        "added": sorted(added),
        "kept": sorted(existing),
        "without_schema": sorted(set(domain.tools) - covered),
        "rejected": {n: p[:3] for n, p in problems.items()},
    }


def tasks_report(tasks: list[Task], domain: Domain) -> dict[str, Any]:
    sequences = {tuple(r.tool for s in t.subgoals for r in s.requests) for t in tasks}
    sizes = Counter(len(t.subgoals) for t in tasks)
    return {
        "tasks": len(tasks),
        "mean_subgoals": round(sum(len(t.subgoals) for t in tasks) / len(tasks), 3) if tasks else 0.0,
        "subgoal_histogram": {str(k): sizes[k] for k in sorted(sizes)},
        "distinct_tool_sequences": len(sequences),
        "tools_used": len({r.tool for t in tasks for s in t.subgoals for r in s.requests}),
        "tools_total": len(domain.tools),
        "write_tools_unused": sorted(
            {n for n, tool in domain.tools.items() if tool.kind == "write"}
            - {r.tool for t in tasks for s in t.subgoals for r in s.requests}
        ),
        "refused_requests": sum(r.expect == "refused" for t in tasks for s in t.subgoals for r in s.requests),
        "multi_call_subgoals": sum(len(s.requests) > 1 for t in tasks for s in t.subgoals),
    }


def _existing_tasks(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    data = load_data(out)
    if not isinstance(data, list) or not all(isinstance(t, dict) and "id" in t for t in data):
        raise ConvosimError(out, None, "exists and is not a task list: move it away or choose another --out")
    return data


def write_tasks(
    root: Path,
    out: Path,
    n: int,
    seed: int = 0,
    subgoals: tuple[int, int] = (2, 4),
    writer: Any = None,
    replace: bool = False,
) -> dict[str, Any]:
    """Stage 3: verified tasks grounded in the template database (texts rewritten by `writer`, if any).

    An existing task file is merged with, never overwritten: its tasks (perhaps edited by hand) are
    kept as they are and only tasks with new ids are added. `replace` starts the file afresh."""
    domain = load_domain(root)
    existing = [] if replace else _existing_tasks(out)
    tasks, report = generate_tasks(domain, n, seed=seed, subgoals=subgoals)
    unchanged = 0
    if writer is not None:
        tasks, unchanged = writer.rewrite_all(tasks)
    known = {t["id"] for t in existing}
    added = [t for t in tasks if t.id not in known]
    if added or not out.exists():
        rows = existing + [t.model_dump(mode="json") for t in added]
        _write_atomic(
            out,
            f"# Generated by `convosim tasks generate` (seed {seed}); {len(rows)} tasks. Edits are kept on re-runs.\n"
            + _dump(rows),
        )
    return {
        "stage": "tasks",
        **tasks_report(tasks, domain),
        "file": str(out),
        "added": len(added),
        "kept": len(existing),
        "texts_not_rewritten": unchanged,
        "rejected": dict(report.rejected),
        "rejected_examples": report.examples,
    }


def parse_range(text: str) -> tuple[int, int]:
    """`2-4` -> (2, 4); `3` -> (3, 3)."""
    low, _, high = text.partition("-")
    try:
        bounds = int(low), int(high or low)
    except ValueError:
        bounds = (0, -1)
    if not 1 <= bounds[0] <= bounds[1]:
        raise ConvosimError(None, "--subgoals", f"{text!r} is not a range like 2-4")
    return bounds


def run_pipeline(
    domain: Path,
    n: int,
    *,
    sessions: int | None = None,
    subgoals: tuple[int, int] = (2, 4),
    seed: int = 0,
    out_dir: Path | None = None,
    concurrency: int = 16,
    smith: Any = None,
    writer: Any = None,
    console: Any = None,
) -> tuple[list[dict[str, Any]], Any]:
    """All three stages, then a run of the generated tasks; writes `pipeline.json` in the run folder.
    Returns (stage reports, the run's result)."""
    from convosim.config import load_scenario
    from convosim.runners.run import run_scenario

    reports = [expand_tools(domain, smith), write_schemas(domain, smith)]
    reports.append(write_tasks(domain, domain / "tasks.generated.yaml", n, seed, subgoals, writer))
    scenario_file = domain / "scenario.generated.yaml"
    if not scenario_file.exists():  # a person may have edited it: never overwritten
        scenario_file.write_text(
            f"name: {domain.resolve().name}-generated\ndomain: .\ntasks: tasks.generated.yaml\nseed: {seed}\n"
        )
    n_tasks = reports[-1]["kept"] + reports[-1]["added"]
    scenario = load_scenario(scenario_file, {"sessions": sessions or n_tasks, "concurrency": concurrency, "seed": seed})
    target = out_dir or Path("runs") / f"{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    result = run_scenario(scenario, target, console=console)
    report = {"stages": reports, "run": result.stats}
    (target / "pipeline.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return reports, result


__all__ = ["Rejected", "expand_tools", "parse_range", "run_pipeline", "write_schemas", "write_tasks"]
