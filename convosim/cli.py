"""The `convosim` command line."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from convosim.errors import ConvosimError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="Multi-agent tool-use dialogue simulation.",
)
err = Console(stderr=True)
out = Console()


def _fail(exc: ConvosimError) -> None:
    err.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
    raise typer.Exit(2)


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    n: Annotated[int | None, typer.Option("-n", "--sessions", help="Number of sessions.")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", help="Sessions live at once.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Run seed (same seed, same dataset).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default runs/NAME-TIME).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or table.")] = False,
    user_model: Annotated[str | None, typer.Option(help="LLM (litellm model string) for the user.")] = None,
    assistant_model: Annotated[str | None, typer.Option(help="LLM for the assistant.")] = None,
    tool_model: Annotated[str | None, typer.Option(help="LLM that simulates tool outputs.")] = None,
    judge_model: Annotated[str | None, typer.Option(help="LLM judge added to the validator.")] = None,
    temperature: Annotated[float | None, typer.Option(help="Temperature for the LLM roles above.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Max completion tokens for those roles.")] = None,
    api_base: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL for those roles.")] = None,
    tool_mode: Annotated[str | None, typer.Option(help="sql (default) or simulated.")] = None,
    cache: Annotated[Path | None, typer.Option(help="On-disk LLM response cache (SQLite).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Finish the interrupted run in --out.")] = False,
    isolate: Annotated[list[str] | None, typer.Option(help="Run this role in its own OS process (user).")] = None,
    runner: Annotated[str | None, typer.Option(help="local (default) or ray.")] = None,
    workers: Annotated[int | None, typer.Option(help="With --runner ray: number of Ray workers.")] = None,
    address: Annotated[str | None, typer.Option(help="With --runner ray: an existing cluster's address.")] = None,
    force: Annotated[bool, typer.Option("--force", help="With --resume: accept a changed configuration.")] = False,
) -> None:
    """Run a scenario: simulate sessions, validate them, write the run store and the dataset."""
    from convosim.config import load_scenario
    from convosim.runners.run import run_scenario, stats_table

    models = {"user": user_model, "assistant": assistant_model, "tool_executor": tool_model, "validator": judge_model}
    shared = {"temperature": temperature, "max_tokens": max_tokens, "api_base": api_base}
    roles = {
        role: {"policy": "llm", "model": model, **{k: v for k, v in shared.items() if v is not None}}
        for role, model in models.items()
        if model
    }
    overrides = {
        "sessions": n,
        "concurrency": concurrency,
        "seed": seed,
        "roles": roles or None,
        "tool_mode": tool_mode,
        "cache": cache,
        "isolate": isolate or None,
        "runner": runner,
        "ray_workers": workers,
        "ray_address": address,
    }
    try:
        sc = load_scenario(scenario, overrides)
        target = out_dir or Path("runs") / f"{sc.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        if resume and out_dir is None:
            raise ConvosimError(None, "--resume", "needs --out: the folder of the run to finish")
        result = run_scenario(sc, target, console=err, show_progress=not quiet, resume=resume, force=force)
    except ConvosimError as exc:
        _fail(exc)
        return
    if not quiet:
        out.print(stats_table(result.stats))
    out.print(f"dataset: {result.out_dir / 'dataset.jsonl'}  run store: {result.out_dir / 'run.sqlite'}")


@app.command()
def check(
    domain: Annotated[Path, typer.Argument(help="Domain folder.")],
    tasks: Annotated[Path | None, typer.Option("--tasks", help="Task file (default DOMAIN/tasks.yaml).")] = None,
) -> None:
    """Load and verify a domain (tools, SQL, phrasings) and its tasks (gold replay)."""
    from convosim.environments.domain import load_domain
    from convosim.environments.tasks import load_tasks

    try:
        dom = load_domain(domain)
        task_path = tasks or domain / "tasks.yaml"
        loaded = load_tasks(task_path, dom)[0] if task_path.exists() else []
    except ConvosimError as exc:
        _fail(exc)
        return
    writes = sum(1 for t in dom.tools.values() if t.kind == "write")
    out.print(
        f"{dom.name}: {len(dom.tools)} tools ({writes} writes), {len(dom.template.tables)} tables, "
        f"{len(loaded)} tasks verified"
    )


tools_app = typer.Typer(no_args_is_help=True, help="Stage 1-2: prepare a domain's tools and their output schemas.")
tasks_app = typer.Typer(no_args_is_help=True, help="Stage 3: generate verified tasks.")
app.add_typer(tools_app, name="tools")
app.add_typer(tasks_app, name="tasks")


def _report(report: dict[str, Any]) -> None:
    import json

    out.print_json(json.dumps(report, default=str))


def _toolsmith(model: str | None, api_base: str | None) -> Any:
    if model is None:
        return None
    from convosim.agents.llm_toolsmith import LLMToolsmith
    from convosim.llm.client import LLMClient
    from convosim.llm.config import ModelConfig
    from convosim.llm.usage import UsageMeter

    return LLMToolsmith(LLMClient(ModelConfig(model=model, api_base=api_base), UsageMeter()))


def _task_writer(model: str | None, api_base: str | None) -> Any:
    if model is None:
        return None
    from convosim.agents.llm_toolsmith import LLMTaskWriter

    return LLMTaskWriter(_toolsmith(model, api_base).client)


@tools_app.command("expand")
def tools_expand(
    domain: Annotated[Path, typer.Argument(help="Domain folder (schema.sql, seed data, a few seed tools).")],
    model: Annotated[str | None, typer.Option(help="LLM for question-to-spec + complementary expansion.")] = None,
    api_base: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL for --model.")] = None,
) -> None:
    """Complete a domain's toolset; new tools go to DOMAIN/tools/, hand-written ones are never touched."""
    from convosim.runners.pipeline import expand_tools

    try:
        _report(expand_tools(domain, _toolsmith(model, api_base)))
    except ConvosimError as exc:
        _fail(exc)


@tools_app.command("schemas")
def tools_schemas(
    domain: Annotated[Path, typer.Argument(help="Domain folder.")],
    model: Annotated[str | None, typer.Option(help="LLM that predicts schemas for tools without SQL.")] = None,
    api_base: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL for --model.")] = None,
) -> None:
    """Write DOMAIN/schemas.yaml: an output JSON schema per tool, checked on real outputs."""
    from convosim.runners.pipeline import write_schemas

    try:
        _report(write_schemas(domain, _toolsmith(model, api_base)))
    except ConvosimError as exc:
        _fail(exc)


@tasks_app.command("generate")
def tasks_generate(
    domain: Annotated[Path, typer.Argument(help="Domain folder.")],
    n: Annotated[int, typer.Option("-n", help="How many tasks.")] = 100,
    subgoals: Annotated[str, typer.Option(help="Sub-goals per task, e.g. 2-4.")] = "2-4",
    seed: Annotated[int, typer.Option(help="Sampler seed.")] = 0,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Task file (default DOMAIN/tasks.generated.yaml).")
    ] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Start the task file afresh instead of adding.")] = False,
) -> None:
    """Generate tasks grounded in the template database, each verified by a gold replay.

    An existing task file is added to, never overwritten (its tasks are kept as they are)."""
    from convosim.runners.pipeline import parse_range, write_tasks

    try:
        target = out_file or domain / "tasks.generated.yaml"
        _report(write_tasks(domain, target, n, seed, parse_range(subgoals), replace=replace))
    except ConvosimError as exc:
        _fail(exc)


@app.command()
def pipeline(
    domain: Annotated[Path, typer.Argument(help="Domain folder: schema, seed data and a few seed tools.")],
    n: Annotated[int, typer.Option("-n", help="How many tasks to generate.")] = 100,
    sessions: Annotated[int | None, typer.Option(help="Sessions to run (default: one per task).")] = None,
    subgoals: Annotated[str, typer.Option(help="Sub-goals per task, e.g. 2-4.")] = "2-4",
    seed: Annotated[int, typer.Option(help="Seed for task generation and the run.")] = 0,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Run output folder.")] = None,
    concurrency: Annotated[int, typer.Option(help="Sessions live at once.")] = 16,
    model: Annotated[str | None, typer.Option(help="LLM for the generation stages (default: offline).")] = None,
    api_base: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL for --model.")] = None,
) -> None:
    """Expand tools, derive output schemas, generate tasks, then run them; report every stage."""
    from convosim.config import load_scenario
    from convosim.runners.pipeline import expand_tools, parse_range, write_schemas, write_tasks
    from convosim.runners.run import run_scenario, stats_table

    try:
        smith = _toolsmith(model, api_base)
        reports = [expand_tools(domain, smith), write_schemas(domain, smith)]
        tasks_file = domain / "tasks.generated.yaml"
        writer = _task_writer(model, api_base)
        reports.append(write_tasks(domain, tasks_file, n, seed, parse_range(subgoals), writer))
        scenario_file = domain / "scenario.generated.yaml"
        if not scenario_file.exists():  # a person may have edited it: never overwritten
            scenario_file.write_text(
                f"name: {domain.resolve().name}-generated\ndomain: .\ntasks: tasks.generated.yaml\nseed: {seed}\n"
            )
        n_tasks = reports[-1]["kept"] + reports[-1]["added"]
        scenario = load_scenario(
            scenario_file, {"sessions": sessions or n_tasks, "concurrency": concurrency, "seed": seed}
        )
        target = out_dir or Path("runs") / f"{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        result = run_scenario(scenario, target, console=err)
    except ConvosimError as exc:
        _fail(exc)
        return
    for report in reports:
        _report({k: v for k, v in report.items() if k != "rejected_examples"})
    out.print(stats_table(result.stats))
    import json

    (target / "pipeline.json").write_text(json.dumps({"stages": reports, "run": result.stats}, indent=2, default=str))
    out.print(f"report: {target / 'pipeline.json'}  dataset: {target / 'dataset.jsonl'}")


@app.command()
def replay(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run's output folder.")],
    session: Annotated[str, typer.Argument(help="Session id (a unique prefix is enough).")],
    plain: Annotated[bool, typer.Option("--plain", help="Print turn by turn instead of the viewer.")] = False,
    agent: Annotated[str | None, typer.Option(help="Only messages sent or received by this agent.")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Only this event type.")] = None,
    check: Annotated[bool, typer.Option("--verify", help="Strict replay: re-execute and compare.")] = False,
    from_turn: Annotated[int | None, typer.Option(help="Fork: restore the session at this turn, go on live.")] = None,
    live: Annotated[list[str] | None, typer.Option(help="Fork: role(s) re-driven (repeatable).")] = None,
    user_model: Annotated[str | None, typer.Option(help="Fork: LLM for the user.")] = None,
    assistant_model: Annotated[str | None, typer.Option(help="Fork: LLM for the assistant.")] = None,
    tool_model: Annotated[str | None, typer.Option(help="Fork: LLM for simulated tools.")] = None,
    judge_model: Annotated[str | None, typer.Option(help="Fork: LLM judge.")] = None,
    api_base: Annotated[str | None, typer.Option(help="Fork: OpenAI-compatible base URL for the models.")] = None,
) -> None:
    """Step through a recorded session, verify it by strict replay, or fork it from a turn."""
    from convosim.runners.replay import load_recording, render_plain, replay_steps, verify

    try:
        if from_turn is not None:
            from convosim.runners.fork import fork_session

            models = {
                "user": user_model,
                "assistant": assistant_model,
                "tool_executor": tool_model,
                "validator": judge_model,
            }
            overrides = {
                r: {"policy": "llm", "model": m, **({"api_base": api_base} if api_base else {})}
                for r, m in models.items()
                if m
            }
            result = fork_session(run_dir, session, from_turn, set(live or overrides), overrides)
            out.print(
                f"fork {result.session_id} of {result.parent_session_id} at turn {result.fork_turn}: {result.status}"
            )
            return
        recording = load_recording(run_dir, session)
        if check:
            problems = verify(recording)
            for turn, problem in problems:
                out.print(f"turn {turn}: {problem}", highlight=False, markup=False)
            if problems:
                raise typer.Exit(1)
            out.print(f"verified: {recording.session_id} replays exactly ({len(recording.events)} events)")
            return
        steps = replay_steps(recording)
        if plain or not sys.stdout.isatty():
            sys.stdout.write(render_plain(recording, steps, agent, event_type) + "\n")
            return
        from convosim.runners.viewer import ReplayApp

        ReplayApp(recording, steps).run()
    except ConvosimError as exc:
        _fail(exc)


@app.command()
def logs(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run's output folder.")],
    session: Annotated[str | None, typer.Option(help="A session id or prefix (its forks included).")] = None,
    agent: Annotated[str | None, typer.Option(help="Sent or received by this agent.")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Event type, e.g. tool_result.")] = None,
    grep: Annotated[str | None, typer.Option(help="Text anywhere in the event (case-insensitive).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines for scripts.")] = False,
) -> None:
    """Query the message log across a run."""
    import json

    from rich.table import Table

    from convosim.runners.queries import query_events, summary_text

    try:
        rows = query_events(run_dir, session, agent, event_type, grep)
    except ConvosimError as exc:
        _fail(exc)
        return
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row, sort_keys=True) + "\n")
        return
    table = Table(show_header=True)
    for column in ("session", "parent", "turn", "type", "from", "to", "text"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["session_id"],
            row["parent_session_id"] or "",
            str(row["turn"]),
            row["type"],
            row["sender"],
            row["recipient"],
            summary_text(row)[:200],
        )
    out.print(table)
    out.print(f"{len(rows)} events")


@app.command()
def stats(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run's output folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """A run's numbers: acceptance and rejection reasons, turns, sub-goals, tools, tokens/cost/latency."""
    import json

    from rich.table import Table

    from convosim.runners.queries import run_stats
    from convosim.runners.run import stats_table

    try:
        numbers = run_stats(run_dir)
    except ConvosimError as exc:
        _fail(exc)
        return
    if as_json:
        sys.stdout.write(json.dumps(numbers, indent=2) + "\n")
        return
    out.print(stats_table(numbers))
    tools = Table("tool", "calls", "errors", "error rate", title="tools")
    for name, t in numbers["tools"].items():
        tools.add_row(name, str(t["calls"]), str(t["errors"]), f"{t['error_rate']:.1%}")
    out.print(tools)


def main() -> None:
    try:
        app()
    except ConvosimError as exc:  # pragma: no cover - commands catch their own
        err.print(f"error: {exc}")
        sys.exit(2)
