"""`--isolate user`: the User agents run in another OS process and the dataset is unchanged."""

from __future__ import annotations

import os
from pathlib import Path

from support import run, scenario_for, transcripts


def test_isolated_user_runs_in_another_process_with_identical_results(tmp_path, retail_dir) -> None:
    isolated = run(scenario_for(retail_dir / "scenario.yaml", sessions=20, isolate=["user"]), tmp_path / "iso")
    inproc = run(scenario_for(retail_dir / "scenario.yaml", sessions=20), tmp_path / "in")
    host = isolated.stats["user_host"]
    assert host["pid"] != os.getpid()
    to_user = sum(1 for _, events in transcripts(tmp_path / "iso").values() for e in events if e.recipient == "user")
    assert host["events_handled"] == to_user > 0, "every event for a user was handled in the other process"
    assert not Path(f"/proc/{host['pid']}").exists(), "the host process is stopped with the run"
    assert (tmp_path / "iso" / "dataset.jsonl").read_bytes() == (tmp_path / "in" / "dataset.jsonl").read_bytes()
    assert isolated.stats["accepted"] == inproc.stats["accepted"] == 20
    assert "user_host" not in inproc.stats


def test_a_dead_user_host_stops_the_run_loudly_and_resume_finishes_it(tmp_path, retail_dir) -> None:
    """Kill the user host mid-run (at observed progress): the run exits 2 at once with a clear
    error instead of waiting out every session; `--resume` then finishes every session."""
    import signal
    import subprocess
    import sys
    import time

    from convosim.runners.store import count_sessions

    from conftest import ROOT

    cli = str(Path(sys.executable).parent / "convosim")
    out = tmp_path / "run"
    args = [cli, "run", str(retail_dir / "scenario.yaml"), "--out", str(out), "-n", "300", "-q", "--isolate", "user"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while count_sessions(out / "run.sqlite") < 20:
        assert proc.poll() is None and time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.01)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert children, "the user host is a child process"
    os.kill(int(children[0]), signal.SIGKILL)
    _, stderr = proc.communicate(timeout=60)  # bounded: a hang fails here
    assert proc.returncode == 2, stderr
    assert "user host process" in stderr and "--resume" in stderr
    done = count_sessions(out / "run.sqlite")
    assert 20 <= done < 300
    resumed = subprocess.run([*args, "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    rows = transcripts(out)
    assert len(rows) == 300 and all(row["status"] == "accepted" for row, _ in rows.values())
