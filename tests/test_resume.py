"""Crash and resume with real processes: SIGKILL a running `convosim run`, resume, compare."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from convosim.environments.domain import load_domain
from convosim.environments.tasks import load_tasks
from convosim.runners.store import STORE_NAME, count_sessions
from convosim.testing import FaultPlan, ScriptedChatServer
from convosim.testing.scripted import OfflineResponders

from conftest import ROOT
from support import run, scenario_for, transcripts

CLI = str(Path(sys.executable).parent / "convosim")
N = 160  # three kills at seeded points, then a resume: enough sessions for each kill to land mid-run


def convosim_run(out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CLI, "run", "examples/retail/scenario.yaml", "--out", str(out), "-n", str(N), "-q", *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished_sessions(out: Path) -> int:
    return count_sessions(out / STORE_NAME)


def wait_for_progress(proc: subprocess.Popen[str], out: Path, target: int, bound_s: float = 120.0) -> None:
    """Wait until `target` sessions are committed (observed in the store, never a fixed sleep);
    bounded, and failing with the run's stderr if it ends or stalls first."""
    deadline = time.monotonic() + bound_s
    while finished_sessions(out) < target:
        if proc.poll() is not None:
            raise AssertionError(f"run ended before {target} sessions: {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"fewer than {target} sessions after {bound_s}s")
        time.sleep(0.01)


def test_sigkill_at_random_points_then_resume_gives_the_uninterrupted_dataset(tmp_path) -> None:
    reference = tmp_path / "reference"
    proc = convosim_run(reference)
    assert proc.wait(timeout=180) == 0, proc.stderr.read() if proc.stderr else ""

    out = tmp_path / "crashy"
    rng = random.Random(7)
    progress = []
    targets = sorted(rng.sample(range(10, N - 60), 3))  # kill once this many sessions are committed
    for attempt, target in enumerate(targets):
        proc = convosim_run(out, *(["--resume"] if attempt else []))
        wait_for_progress(proc, out, target)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        progress.append(finished_sessions(out))
    assert all(t <= n < N for t, n in zip(targets, progress, strict=True)), f"kills at {progress}, targets {targets}"
    proc = convosim_run(out, "--resume")
    assert proc.wait(timeout=180) == 0, proc.stderr.read() if proc.stderr else ""

    with sqlite3.connect(out / "run.sqlite") as db:
        ids = [r[0] for r in db.execute("SELECT session_id FROM sessions")]
        assert len(ids) == len(set(ids)) == N, "every expected session exactly once"
        orphans = db.execute("SELECT count(*) FROM events WHERE session_id NOT IN (SELECT session_id FROM sessions)")
        assert orphans.fetchone()[0] == 0, "no events of half-written sessions"
    for name in ("dataset.jsonl", "rejected.jsonl"):
        lines = (out / name).read_text().splitlines()
        assert all(json.loads(line) for line in lines), "no torn line"
        assert (out / name).read_bytes() == (reference / name).read_bytes()
    assert (
        len((out / "dataset.jsonl").read_text().splitlines()) + len((out / "rejected.jsonl").read_text().splitlines())
        == N
    )


def run_to_end(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "run", "examples/retail/scenario.yaml", "--out", str(out), "-q", *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_resume_refuses_a_changed_configuration(tmp_path) -> None:
    out = tmp_path / "run"
    assert run_to_end(out, "-n", "3").returncode == 0
    again = run_to_end(out, "-n", "3")
    assert again.returncode == 2 and "add --resume" in again.stderr
    changed = run_to_end(out, "-n", "3", "--resume", "--seed", "5")
    assert changed.returncode == 2 and "seed: differs from the run being resumed" in changed.stderr
    forced = run_to_end(out, "-n", "5", "--resume", "--force", "--seed", "5")
    assert forced.returncode == 0, forced.stderr
    assert run_to_end(out, "-n", "6", "--resume", "--force", "--seed", "5").returncode == 0
    with sqlite3.connect(out / "run.sqlite") as db:
        assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] >= 6


def test_resume_refuses_changed_domain_content_unless_forced(tmp_path) -> None:
    """Settings are not all a run depends on: an edited policy (the system prompt of every row)
    would mix two assistants in one dataset."""
    import shutil

    domain = tmp_path / "shop"
    shutil.copytree(ROOT / "examples" / "retail", domain)
    out = tmp_path / "run"

    def go(*extra: str) -> subprocess.CompletedProcess[str]:
        cmd = [CLI, "run", str(domain / "scenario.yaml"), "--out", str(out), "-q", "-n", "4", *extra]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    assert go().returncode == 0
    assert go("--resume").returncode == 0  # nothing changed: nothing to refuse
    (domain / "policy.md").write_text((domain / "policy.md").read_text() + "\nBe brief.\n")
    refused = go("--resume")
    assert refused.returncode == 2 and "domain or task content" in refused.stderr
    assert go("--resume", "--force").returncode == 0


class DownAfterPreflight(FaultPlan):
    """A model server that answers the pre-flight call, then fails every request with a 500."""

    def draw(self) -> str | None:
        self.drawn = getattr(self, "drawn", 0) + 1
        return None if self.drawn == 1 else "server_error"


def retail_responders(retail_dir: Path) -> dict:
    domain = load_domain(retail_dir)
    tasks, _ = load_tasks(retail_dir / "tasks.yaml", domain)
    base = scenario_for(retail_dir / "scenario.yaml")
    return OfflineResponders(domain.tools, tasks, base.rules, base.persona).responders()


def test_resume_reruns_failed_sessions_against_a_healed_server(tmp_path, retail_dir) -> None:
    """Sessions that failed (the model server was down) are run again by --resume; judged ones stay."""
    with ScriptedChatServer(retail_responders(retail_dir), faults=DownAfterPreflight()) as server:
        role = {"policy": "llm", "model": "openai/assistant", "api_base": server.base_url, "max_retries": 0}
        scenario = scenario_for(retail_dir / "scenario.yaml", sessions=6, concurrency=3, roles={"assistant": role})
        first = run(scenario, tmp_path / "run")
        assert first.stats["failed"] == 6
        rows = transcripts(tmp_path / "run")
        assert all(r["reasons"][0]["code"] == "session_failed" for r, _ in rows.values())
        server.faults = FaultPlan()  # healed
        from convosim.runners.run import run_scenario

        healed = run_scenario(scenario, tmp_path / "run", show_progress=False, resume=True)
    assert healed.stats["sessions"] == 6 and healed.stats["accepted"] == 6
    assert {r["status"] for r, _ in transcripts(tmp_path / "run").values()} == {"accepted"}


def test_a_run_whose_sessions_all_failed_exits_non_zero(tmp_path, retail_dir) -> None:
    from typer.testing import CliRunner

    from convosim.cli import app

    with ScriptedChatServer(retail_responders(retail_dir), faults=DownAfterPreflight()) as server:
        args = ["run", str(retail_dir / "scenario.yaml"), "-n", "3", "-q", "--out", str(tmp_path / "run")]
        args += ["--assistant-model", "openai/assistant", "--api-base", server.base_url]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "every session failed" in result.output
    rejected = (tmp_path / "run" / "rejected.jsonl").read_text().splitlines()
    assert len(rejected) == 3 and all('"session_failed"' in line for line in rejected)
