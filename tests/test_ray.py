"""`--runner ray` on a local Ray cluster (127.0.0.1): the same sessions as the local runner."""

from __future__ import annotations

import os

import pytest

from support import run, scenario_for, transcripts

pytest.importorskip("ray")


@pytest.mark.timeout(300)
def test_ray_local_cluster_matches_the_local_runner(tmp_path, retail_dir) -> None:
    local = run(scenario_for(retail_dir / "scenario.yaml", sessions=40, concurrency=8), tmp_path / "local")
    on_ray = run(
        scenario_for(retail_dir / "scenario.yaml", sessions=40, concurrency=8, runner="ray", ray_workers=2),
        tmp_path / "ray",
    )
    assert on_ray.stats["ray"]["workers"] == 2
    pids = on_ray.stats["ray"]["worker_pids"]
    assert len(set(pids)) == 2 and os.getpid() not in pids, "sessions ran in two Ray worker processes"
    accepted = {sid for sid, (row, _) in transcripts(tmp_path / "local").items() if row["status"] == "accepted"}
    assert accepted == {sid for sid, (row, _) in transcripts(tmp_path / "ray").items() if row["status"] == "accepted"}
    assert (tmp_path / "ray" / "dataset.jsonl").read_bytes() == (tmp_path / "local" / "dataset.jsonl").read_bytes()
    assert on_ray.stats["sessions"] == local.stats["sessions"] == 40
