"""Helpers shared by tests: build scenarios in temp folders and run them in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convosim.bus import RoleFactory
from convosim.config import Scenario, load_scenario
from convosim.messages import BaseEvent
from convosim.models import Role
from convosim.runners.run import RunResult, run_scenario
from convosim.runners.store import RunStore


def scenario_for(path: Path, **overrides: Any) -> Scenario:
    return load_scenario(path, overrides)


def run(scenario: Scenario, out: Path, overrides: dict[Role, RoleFactory] | None = None) -> RunResult:
    return run_scenario(scenario, out, show_progress=False, overrides=overrides)


def transcripts(out: Path) -> dict[str, tuple[dict[str, Any], list[BaseEvent]]]:
    """session id -> (session row, recorded events), read back from the run store."""
    store = RunStore(out / "run.sqlite")
    try:
        return {row["session_id"]: (row, list(store.events(row["session_id"]))) for row in store.sessions()}
    finally:
        store.close()
