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
