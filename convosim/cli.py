"""The `convosim` command line: parse options, call one function, print its result.

Every command runs inside one error boundary (`_command`): a `ConvosimError` (bad input, named by
file, item and field) prints one line and exits 2; logic lives in `runners/`, looks in
`convosim.presentation`.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from convosim.errors import ConvosimError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="Multi-agent tool-use dialogue simulation.",
)
tools_app = typer.Typer(no_args_is_help=True, help="Stage 1-2: prepare a domain's tools and their output schemas.")
tasks_app = typer.Typer(no_args_is_help=True, help="Stage 3: generate verified tasks.")
app.add_typer(tools_app, name="tools")
app.add_typer(tasks_app, name="tasks")
err = Console(stderr=True)
out = Console()

P = ParamSpec("P")
R = TypeVar("R")


def _command(fn: Callable[P, R]) -> Callable[P, R | None]:
    """The error boundary every command runs in: bad input is one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return fn(*args, **kwargs)
        except ConvosimError as exc:
            err.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
            raise typer.Exit(2) from exc

    return guarded


ROLE_OF_MODEL = {"user": "user", "assistant": "assistant", "tool": "tool_executor", "judge": "validator"}


def role_overrides(models: dict[str, str | None], **shared: Any) -> dict[str, dict[str, Any]]:
    """`--user-model M` and friends as scenario `roles:` entries: the one place they are built
    (for `run` and `fork` alike). `shared` settings (api_base, temperature, ...) apply to each."""
    settings = {k: v for k, v in shared.items() if v is not None}
    return {
        ROLE_OF_MODEL[name]: {"policy": "llm", "model": model, **settings} for name, model in models.items() if model
    }


def _report(report: dict[str, Any]) -> None:
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


UserModel = Annotated[str | None, typer.Option(help="LLM (litellm model string) for the user.")]
AssistantModel = Annotated[str | None, typer.Option(help="LLM for the assistant.")]
ToolModel = Annotated[str | None, typer.Option(help="LLM that simulates tool outputs.")]
JudgeModel = Annotated[str | None, typer.Option(help="LLM judge added to the validator.")]
ApiBase = Annotated[str | None, typer.Option(help="OpenAI-compatible base URL for the LLM roles.")]
RunDir = Annotated[Path, typer.Argument(metavar="RUN", help="A run's output folder.")]
SessionArg = Annotated[str, typer.Argument(help="Session id (a unique prefix is enough).")]


@app.command()
@_command
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    n: Annotated[int | None, typer.Option("-n", "--sessions", help="Number of sessions.")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", help="Sessions live at once.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Run seed (same seed, same dataset).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default runs/NAME-TIME).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or table.")] = False,
    user_model: UserModel = None,
    assistant_model: AssistantModel = None,
    tool_model: ToolModel = None,
    judge_model: JudgeModel = None,
    temperature: Annotated[float | None, typer.Option(help="Temperature for the LLM roles above.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Max completion tokens for those roles.")] = None,
    api_base: ApiBase = None,
    tool_mode: Annotated[str | None, typer.Option(help="sql (default) or simulated.")] = None,
    cache: Annotated[Path | None, typer.Option(help="On-disk LLM response cache (SQLite).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Finish the interrupted run in --out.")] = False,
    isolate: Annotated[list[str] | None, typer.Option(help="Run this role in its own OS process (user).")] = None,
    runner: Annotated[str | None, typer.Option(help="local (default) or ray.")] = None,
    workers: Annotated[int | None, typer.Option(help="With --runner ray: number of Ray workers.")] = None,
    address: Annotated[str | None, typer.Option(help="With --runner ray: an existing cluster's address.")] = None,
    force: Annotated[bool, typer.Option("--force", help="With --resume: accept a changed configuration.")] = False,
    max_cost: Annotated[
        float | None, typer.Option("--max-cost", help="Stop cleanly once the LLM calls cost this many USD.")
    ] = None,
) -> None:
    """Run a scenario: simulate sessions, validate them, write the run store and the dataset."""
    from convosim.config import load_scenario
    from convosim.presentation import stats_table
    from convosim.runners.run import run_scenario

    models = {"user": user_model, "assistant": assistant_model, "tool": tool_model, "judge": judge_model}
    roles = role_overrides(models, temperature=temperature, max_tokens=max_tokens, api_base=api_base)
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
        "limits": {"max_cost_usd": max_cost} if max_cost is not None else None,
    }
    sc = load_scenario(scenario, overrides)
    if resume and out_dir is None:
        raise ConvosimError(None, "--resume", "needs --out: the folder of the run to finish")
    target = out_dir or Path("runs") / f"{sc.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        result = run_scenario(sc, target, console=err, show_progress=not quiet, resume=resume, force=force)
    except KeyboardInterrupt:
        again = f"convosim run {scenario} --out {target} --resume"
        err.print(f"interrupted: the finished sessions are kept in {target}; to finish the run: {again}")
        raise typer.Exit(130) from None
    if not quiet:
        out.print(stats_table(result.stats))
    out.print(f"dataset: {result.out_dir / 'dataset.jsonl'}  run store: {result.out_dir / 'run.sqlite'}")
    budget = result.stats.get("budget")
    if budget and budget["reached"]:
        again = f"convosim run {scenario} --out {result.out_dir} --resume --max-cost <higher>"
        err.print(f"stopped at the budget: ${budget['spent_usd']} of ${budget['cap_usd']}; to go on: {again}")
        return
    if result.stats["sessions"] and result.stats["failed"] == result.stats["sessions"]:
        err.print("[red]error:[/red] every session failed (see rejected.jsonl for the reasons)", highlight=False)
        raise typer.Exit(1)  # a run that produced nothing never reports success


@app.command()
@_command
def plan(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    n: Annotated[int | None, typer.Option("-n", "--sessions", help="Sessions of the run to plan.")] = None,
    pilot: Annotated[int, typer.Option(help="Sessions to run as the pilot (spread over the run).")] = 8,
    user_model: UserModel = None,
    assistant_model: AssistantModel = None,
    tool_model: ToolModel = None,
    judge_model: JudgeModel = None,
    api_base: ApiBase = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """Estimate a run's LLM calls, tokens, cost and time from a small pilot (writes nothing)."""
    from convosim.config import load_scenario
    from convosim.presentation import plan_table
    from convosim.runners.plan import plan_run

    models = {"user": user_model, "assistant": assistant_model, "tool": tool_model, "judge": judge_model}
    roles = role_overrides(models, api_base=api_base)
    sc = load_scenario(scenario, {"sessions": n, "roles": roles or None})
    estimate = plan_run(sc, pilot)
    if as_json:
        sys.stdout.write(json.dumps(estimate, indent=2) + "\n")
        return
    out.print(plan_table(estimate))


@app.command()
@_command
def check(
    domain: Annotated[Path, typer.Argument(help="Domain folder.")],
    tasks: Annotated[Path | None, typer.Option("--tasks", help="Task file (default DOMAIN/tasks.yaml).")] = None,
) -> None:
    """Load and verify a domain (tools, SQL, phrasings) and its tasks (gold replay)."""
    from convosim.environments.domain import load_domain
    from convosim.environments.tasks import load_tasks

    dom = load_domain(domain)
    task_path = tasks or domain / "tasks.yaml"
    loaded = load_tasks(task_path, dom)[0] if task_path.exists() else []
    writes = sum(1 for t in dom.tools.values() if t.kind == "write")
    whose = f"records belong to {dom.owner}" if dom.owner else "no owner table (privacy not checked)"
    out.print(
        f"{dom.name}: {len(dom.tools)} tools ({writes} writes), {len(dom.template.tables)} tables, "
        f"{len(loaded)} tasks verified; {whose}"
    )


@app.command("judge")
@_command
def judge_cmd(
    domain: Annotated[Path, typer.Argument(help="Domain folder the dialogues were made in.")],
    dialogues: Annotated[Path, typer.Argument(help="JSONL: one dialogue a line (OpenAI chat format + task_id).")],
    tasks: Annotated[Path | None, typer.Option("--tasks", help="Task file (default DOMAIN/tasks.yaml).")] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Verdicts JSONL (default DIALOGUES.verdicts.jsonl; never overwritten).")
    ] = None,
) -> None:
    """Judge dialogues made anywhere with the run's validator; exit 1 if any is rejected."""
    from convosim.runners.judge_dialogues import judge_file

    target = out_file or dialogues.with_suffix(".verdicts.jsonl")
    verdicts = judge_file(domain, dialogues, tasks, target)
    for v in verdicts:
        codes = ", ".join(sorted({r.code for r in v.reasons}))
        status = "[green]accepted[/green]" if v.accepted else f"[red]rejected[/red] {codes}"
        out.print(f"line {v.line:>5}  {v.task_id or '-':<14} {status}", highlight=False, soft_wrap=True)
    rejected = sum(not v.accepted for v in verdicts)
    out.print(f"{len(verdicts) - rejected} accepted, {rejected} rejected; verdicts with evidence: {target}")
    if rejected:
        raise typer.Exit(1)


@tools_app.command("expand")
@_command
def tools_expand(
    domain: Annotated[Path, typer.Argument(help="Domain folder (schema.sql, seed data, a few seed tools).")],
    model: Annotated[str | None, typer.Option(help="LLM for question-to-spec + complementary expansion.")] = None,
    api_base: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL for --model.")] = None,
) -> None:
    """Complete a domain's toolset; new tools go to DOMAIN/tools/, hand-written ones are never touched."""
    from convosim.runners.pipeline import expand_tools

    _report(expand_tools(domain, _toolsmith(model, api_base)))


@tools_app.command("schemas")
@_command
def tools_schemas(
    domain: Annotated[Path, typer.Argument(help="Domain folder.")],
    model: Annotated[str | None, typer.Option(help="LLM that predicts schemas for tools without SQL.")] = None,
    api_base: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL for --model.")] = None,
) -> None:
    """Write DOMAIN/schemas.yaml: an output JSON schema per tool, checked on real outputs (kept entries stay)."""
    from convosim.runners.pipeline import write_schemas

    _report(write_schemas(domain, _toolsmith(model, api_base)))


@tools_app.command("import")
@_command
def tools_import(
    domain: Annotated[Path, typer.Argument(help="Domain folder to import into (made if missing).")],
    mcp: Annotated[
        str | None, typer.Option("--mcp", help="An MCP server: a command to start (stdio) or an http(s) URL.")
    ] = None,
    openapi: Annotated[Path | None, typer.Option("--openapi", help="An OpenAPI 3 document (YAML or JSON).")] = None,
) -> None:
    """Import an MCP server's tools or an OpenAPI document's operations as simulated domain tools.

    Each becomes DOMAIN/tools/NAME.yaml (never overwriting one there); what could not be imported
    is reported with the reason. Then: `convosim tasks generate DOMAIN` and `convosim run`."""
    from convosim.runners.tool_import import import_tools

    _report(import_tools(domain, mcp=mcp, openapi=openapi))  # loaded and checked before it reports


@tasks_app.command("generate")
@_command
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

    target = out_file or domain / "tasks.generated.yaml"
    _report(write_tasks(domain, target, n, seed, parse_range(subgoals), replace=replace))


@app.command()
@_command
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
    from convosim.presentation import stats_table
    from convosim.runners.pipeline import parse_range, run_pipeline

    reports, result = run_pipeline(
        domain,
        n,
        sessions=sessions,
        subgoals=parse_range(subgoals),
        seed=seed,
        out_dir=out_dir,
        concurrency=concurrency,
        smith=_toolsmith(model, api_base),
        writer=_task_writer(model, api_base),
        console=err,
    )
    for report in reports:
        _report({k: v for k, v in report.items() if k != "rejected_examples"})
    out.print(stats_table(result.stats))
    out.print(f"report: {result.out_dir / 'pipeline.json'}  dataset: {result.out_dir / 'dataset.jsonl'}")


@app.command()
@_command
def replay(
    run_dir: RunDir,
    session: SessionArg,
    plain: Annotated[bool, typer.Option("--plain", help="Print turn by turn instead of the viewer.")] = False,
    agent: Annotated[str | None, typer.Option(help="Only messages sent or received by this agent.")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Only this event type.")] = None,
    check: Annotated[bool, typer.Option("--verify", help="Strict replay: re-execute and compare.")] = False,
    from_turn: Annotated[int | None, typer.Option(help="Same as `convosim fork --from-turn`.")] = None,
    live: Annotated[list[str] | None, typer.Option(help="With --from-turn: role(s) re-driven.")] = None,
    user_model: UserModel = None,
    assistant_model: AssistantModel = None,
    tool_model: ToolModel = None,
    judge_model: JudgeModel = None,
    api_base: ApiBase = None,
) -> None:
    """Step through a recorded session, or verify it by strict replay (`--from-turn` forks it)."""
    from convosim.runners.replay import load_recording, render_plain, replay_steps, verify

    if from_turn is not None:  # kept as an alias of `convosim fork`
        fork(run_dir, session, from_turn, live, user_model, assistant_model, tool_model, judge_model, api_base)
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


@app.command()
@_command
def fork(
    run_dir: RunDir,
    session: SessionArg,
    from_turn: Annotated[int, typer.Option(help="Restore the session at this turn, then go on live.")],
    live: Annotated[
        list[str] | None, typer.Option(help="Role(s) re-driven (repeatable; default: those given a model).")
    ] = None,
    user_model: UserModel = None,
    assistant_model: AssistantModel = None,
    tool_model: ToolModel = None,
    judge_model: JudgeModel = None,
    api_base: ApiBase = None,
) -> None:
    """Fork a recorded session from a turn: the past replays exactly, then the live roles take over."""
    from convosim.runners.fork import fork_session

    models = {"user": user_model, "assistant": assistant_model, "tool": tool_model, "judge": judge_model}
    overrides = role_overrides(models, api_base=api_base)
    result = fork_session(run_dir, session, from_turn, set(live or overrides), overrides)
    out.print(f"fork {result.session_id} of {result.parent_session_id} at turn {result.fork_turn}: {result.status}")


@app.command()
@_command
def export(
    run_dir: RunDir,
    fmt: Annotated[str, typer.Option("--format", help="openai, sharegpt, parquet or hf.")] = "openai",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default RUN/export-FORMAT).")] = None,
    split: Annotated[str | None, typer.Option(help="Held-out splits by task, e.g. eval=0.1.")] = None,
    include_rejected: Annotated[bool, typer.Option("--include-rejected", help="Rejected rows too.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the task-to-split assignment.")] = 0,
    strip_reasoning: Annotated[
        bool, typer.Option("--strip-reasoning", help="Leave models' reasoning out (e.g. for the OpenAI API).")
    ] = False,
    dedup: Annotated[
        bool, typer.Option("--dedup/--no-dedup", help="Leave out near-duplicate dialogues (exact ones always).")
    ] = True,
    dedup_threshold: Annotated[
        float, typer.Option(help="Similarity (Jaccard of word 3-grams) from which two dialogues are near copies.")
    ] = 0.9,
) -> None:
    """Export a run for a trainer: rows with metadata, tool-call ids every template accepts, splits by task."""
    from convosim.runners.exports import export_run

    result = export_run(
        run_dir, fmt, out_dir, split, include_rejected, seed, strip_reasoning, dedup_threshold if dedup else None
    )
    rows = ", ".join(f"{name} {n} rows" for name, n in result.rows.items())
    out.print(f"{fmt}: {rows} in {result.target}", highlight=False)
    if result.left_out:
        left = ", ".join(f"{n} {code}" for code, n in sorted(result.left_out.items()))
        out.print(f"left out: {left}", highlight=False)


@app.command("test")
@_command
def test_command(
    paths: Annotated[list[Path], typer.Argument(help="Scripted scenario files (YAML).")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder for the runs (default runs/test-TIME).")] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Also write JUnit XML here.")] = None,
    user_model: UserModel = None,
    assistant_model: AssistantModel = None,
    api_base: ApiBase = None,
) -> None:
    """Run scripted scenarios and check their expectations; exits 1 if any fails (pytest-like output)."""
    from convosim.runners.scripted_tests import junit_xml, run_test

    root = out_dir or Path("runs") / f"test-{time.strftime('%Y%m%d-%H%M%S')}"
    roles = role_overrides({"user": user_model, "assistant": assistant_model}, api_base=api_base)
    results = [run_test(path, root, roles or None) for path in paths]
    for result in results:
        mark = "PASSED" if result.passed else "FAILED"
        out.print(f"{result.path}::{result.name} {mark} ({result.checked} expectations)", highlight=False, markup=False)
    for result in (r for r in results if not r.passed):
        out.print(f"\n____ {result.name} ____  (run: {result.run_dir})", highlight=False, markup=False)
        for failure in result.failures:
            out.print(
                f"{failure.where}: expected {failure.expectation}\n  {failure.why}", highlight=False, markup=False
            )
            for line in failure.excerpt:
                out.print(f"    | {line}", highlight=False, markup=False)
    failed = sum(not r.passed for r in results)
    out.print(f"\n{len(results) - failed} passed, {failed} failed", highlight=False)
    if junit is not None:
        junit.write_text(junit_xml(results), encoding="utf-8")
    if failed:
        raise typer.Exit(1)


@app.command()
@_command
def serve(
    domain_dir: Annotated[Path, typer.Argument(help="Domain folder.")],
    http: Annotated[int | None, typer.Option("--http", help="Serve streamable HTTP on 127.0.0.1:PORT.")] = None,
) -> None:
    """A domain's tools as an MCP server (stdio, or streamable HTTP): one database clone per client."""
    import asyncio

    from convosim.environments.domain import load_domain
    from convosim.runners.mcp_server import serve_http, serve_stdio

    domain = load_domain(domain_dir)
    if http is None:
        asyncio.run(serve_stdio(domain))
    else:
        serve_http(domain, http)


@app.command("eval")
@_command
def eval_command(
    target: Annotated[str, typer.Argument(help="Scenario YAML, or `compare` followed by two eval folders.")],
    others: Annotated[list[Path] | None, typer.Argument(help="With `compare`: the two folders.")] = None,
    assistant_model: AssistantModel = None,
    k: Annotated[int, typer.Option("-k", help="Trials per task.")] = 4,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default runs/eval-NAME-TIME).")] = None,
    api_base: ApiBase = None,
    resume: Annotated[bool, typer.Option("--resume", help="Finish the interrupted evaluation in --out.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Score an assistant over a scenario's tasks, K trials each: pass^1..pass^K (tau2-bench), DB success, cost."""
    from convosim.config import load_scenario
    from convosim.presentation import compare_table, eval_table
    from convosim.runners.evaluation import write_evaluation
    from convosim.runners.run import load_inputs, run_scenario

    if target == "compare":
        if not others or len(others) != 2:
            raise ConvosimError(None, "compare", "needs two evaluation folders: convosim eval compare A B")
        results = [json.loads((folder / "eval.json").read_text(encoding="utf-8")) for folder in others]
        out.print(compare_table(results[0], results[1]))
        return
    if k < 1:
        raise ConvosimError(None, "-k", f"{k} trials: at least one is needed")
    roles = role_overrides({"assistant": assistant_model}, api_base=api_base)
    sc = load_scenario(Path(target), {"roles": roles or None})
    _, tasks, _ = load_inputs(sc)
    sc = sc.model_copy(update={"sessions": len(tasks) * k})  # session i plays task i mod T: K trials each
    folder = out_dir or Path("runs") / f"eval-{sc.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_scenario(sc, folder, console=err, show_progress=not quiet, resume=resume)
    result = write_evaluation(folder)
    out.print(eval_table(result))
    out.print(f"evaluation: {folder / 'eval.json'}")


@app.command()
@_command
def report(
    run_dir: RunDir,
    out_file: Annotated[Path | None, typer.Option("--out", help="Output file (default RUN/report.html).")] = None,
) -> None:
    """One self-contained HTML file with a run's charts: turns, sub-goals, tools, verdicts, diversity, cost."""
    from convosim.runners.report import write_report

    out.print(f"report: {write_report(run_dir, out_file)}", highlight=False)


@app.command()
@_command
def logs(
    run_dir: RunDir,
    session: Annotated[str | None, typer.Option(help="A session id or prefix (its forks included).")] = None,
    agent: Annotated[str | None, typer.Option(help="Sent or received by this agent.")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Event type, e.g. tool_result.")] = None,
    grep: Annotated[str | None, typer.Option(help="Text anywhere in the event (case-insensitive).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines for scripts.")] = False,
) -> None:
    """Query the message log across a run."""
    from convosim.presentation import events_table
    from convosim.runners.queries import query_events, summary_text

    rows = query_events(run_dir, session, agent, event_type, grep)
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row, sort_keys=True) + "\n")
        return
    out.print(events_table(rows, summary_text))
    out.print(f"{len(rows)} events")


@app.command()
@_command
def stats(
    run_dir: RunDir,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """A run's numbers: acceptance and rejection reasons, turns, sub-goals, tools, tokens/cost/latency."""
    from convosim.presentation import stats_table, tools_table
    from convosim.runners.queries import run_stats

    numbers = run_stats(run_dir)
    if as_json:
        sys.stdout.write(json.dumps(numbers, indent=2) + "\n")
        return
    out.print(stats_table(numbers))
    out.print(tools_table(numbers))


def main() -> None:
    app()
