"""The `convosim` command line."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

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
    }
    try:
        sc = load_scenario(scenario, overrides)
        target = out_dir or Path("runs") / f"{sc.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        result = run_scenario(sc, target, console=err, show_progress=not quiet)
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


def main() -> None:
    try:
        app()
    except ConvosimError as exc:  # pragma: no cover - commands catch their own
        err.print(f"error: {exc}")
        sys.exit(2)
