"""Near-duplicate dialogues: near copies of real accepted dialogues are caught, dialogues that are
not similar are never flagged, and `export --dedup` leaves the duplicates out and says how many."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convosim.cli import app
from convosim.runners.near_duplicates import DEFAULT_THRESHOLD, NearDuplicates, dialogue_words, shingles

from conftest import EXAMPLES
from support import run, scenario_for


@pytest.fixture(scope="module")
def dialogues(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """Accepted dialogues of both examples, by session id (with their task id for the checks)."""
    out: dict[str, list[dict]] = {}
    for example in ("retail", "telecom"):
        run_dir = tmp_path_factory.mktemp(example)
        run(scenario_for(EXAMPLES / example / "scenario.yaml", sessions=60), run_dir)
        rows = [json.loads(line) for line in (run_dir / "dataset.jsonl").read_text().splitlines()]
        out.update({f"{example}-{i}": row["messages"] for i, row in enumerate(rows)})
    return out


def _jaccard(a: list[dict], b: list[dict]) -> float:
    x, y = shingles(dialogue_words(a)), shingles(dialogue_words(b))
    return len(x & y) / len(x | y)


def _reworded(messages: list[dict]) -> list[dict]:
    out = copy.deepcopy(messages)
    user = [m for m in out if m["role"] == "user"]
    user[len(user) // 2]["content"] += " Thanks a lot."
    return out


def _renumbered(messages: list[dict]) -> list[dict]:
    out = copy.deepcopy(messages)
    tool = next(m for m in out if m["role"] == "tool" and re.search(r"\d", m["content"]))
    tool["content"] = re.sub(r"\d", lambda d: str((int(d.group()) + 1) % 10), tool["content"], count=1)
    return out


def _other_goodbye(messages: list[dict]) -> list[dict]:
    out = copy.deepcopy(messages)
    out[-1]["content"] += " Goodbye for now."
    return out


def _one_more_exchange(messages: list[dict]) -> list[dict]:
    out = copy.deepcopy(messages)
    wait = [{"role": "user", "content": "Hold on a second."}, {"role": "assistant", "content": "Sure, take your time."}]
    out[-2:-2] = wait
    return out


CORRUPTIONS = {
    "reworded": _reworded,
    "renumbered": _renumbered,
    "other_goodbye": _other_goodbye,
    "one_more_exchange": _one_more_exchange,
}


def test_near_copies_of_real_dialogues_are_caught(dialogues: dict[str, list[dict]]) -> None:
    caught = {kind: 0 for kind in CORRUPTIONS}
    for kind, corrupt in CORRUPTIONS.items():
        for sid, messages in dialogues.items():
            near = NearDuplicates()
            near.check(sid, messages)
            reason = near.check(f"{sid}-copy", corrupt(messages))
            if reason is not None and reason.detail["of"] == sid:
                caught[kind] += 1
    assert caught == {kind: len(dialogues) for kind in CORRUPTIONS}, caught
    assert len(dialogues) >= 100


def test_clean_dialogues_are_flagged_only_when_really_similar(dialogues: dict[str, list[dict]]) -> None:
    """Every dialogue is checked against all earlier ones: what is flagged must really be that similar
    (exact Jaccard), and a pair clearly above the threshold must not be missed."""
    near = NearDuplicates()
    ids = list(dialogues)
    flagged = {}
    for sid in ids:
        reason = near.check(sid, dialogues[sid])
        if reason is not None:
            flagged[sid] = reason.detail["of"]
    false = [s for s, of in flagged.items() if _jaccard(dialogues[s], dialogues[of]) < DEFAULT_THRESHOLD - 0.05]
    assert false == [], "flagged although not similar"
    missed = [
        b
        for i, b in enumerate(ids)
        if b not in flagged
        and any(_jaccard(dialogues[a], dialogues[b]) >= DEFAULT_THRESHOLD + 0.05 for a in ids[:i] if a not in flagged)
    ]
    assert missed == [], "similar but not flagged"
    assert len(flagged) < len(ids) / 10  # clean data is mostly kept


def test_export_dedup_leaves_near_duplicates_out_and_counts_them(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run(scenario_for(EXAMPLES / "retail" / "scenario.yaml", sessions=60), run_dir)
    rows = [json.loads(line)["messages"] for line in (run_dir / "dataset.jsonl").read_text().splitlines()]
    near = NearDuplicates(0.5)  # a low threshold, so that this offline run surely has some
    expected = sum(near.check(str(i), m) is not None for i, m in enumerate(rows))
    assert 0 < expected < len(rows)
    runner = CliRunner()
    args = ["export", str(run_dir), "--dedup", "--dedup-threshold", "0.5"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "deduped")])
    assert result.exit_code == 0, result.output
    assert f"left out: {expected} near_duplicate" in result.output
    kept = (tmp_path / "deduped" / "train.jsonl").read_text().splitlines()
    assert len(kept) == len(rows) - expected
    result = runner.invoke(app, [*args, "--include-rejected", "--out", str(tmp_path / "marked")])
    meta = [json.loads(line) for line in (tmp_path / "marked" / "train.metadata.jsonl").read_text().splitlines()]
    marked = [m for m in meta if "near_duplicate" in m["reasons"]]
    assert len(marked) == expected and all(m["verdict"] == "rejected" for m in marked)
    plain = runner.invoke(app, ["export", str(run_dir), "--no-dedup", "--out", str(tmp_path / "all")])
    assert "left out" not in plain.output
    assert len((tmp_path / "all" / "train.jsonl").read_text().splitlines()) == len(rows)
    default = runner.invoke(app, ["export", str(run_dir), "--out", str(tmp_path / "default")])
    assert "left out" not in default.output  # at 0.9 (the default) this run has no near copies
    bad = runner.invoke(app, [*args[:3], "--dedup-threshold", "1.5"])
    assert bad.exit_code == 2 and "--dedup-threshold" in bad.output


def test_a_run_leaves_near_duplicates_out_of_its_dataset_and_says_why(tmp_path: Path) -> None:
    """The dataset a run writes is deduplicated by default: near copies go to rejected.jsonl with
    reason `near_duplicate` and are counted, never silently dropped."""
    loose = run(
        scenario_for(EXAMPLES / "retail" / "scenario.yaml", sessions=60, near_duplicate_threshold=0.5), tmp_path / "a"
    )
    strict = run(
        scenario_for(EXAMPLES / "retail" / "scenario.yaml", sessions=60, near_duplicate_threshold=None), tmp_path / "b"
    )
    kept = (tmp_path / "a" / "dataset.jsonl").read_text().splitlines()
    everything = (tmp_path / "b" / "dataset.jsonl").read_text().splitlines()
    rejected = [json.loads(line) for line in (tmp_path / "a" / "rejected.jsonl").read_text().splitlines()]
    near = [r for r in rejected if [x["code"] for x in r["reasons"]] == ["near_duplicate"]]
    assert len(kept) + len(near) == len(everything) == 60 and near
    assert all(r["status"] == "rejected_at_export" for r in near)
    assert loose.stats["rejected_at_export"] == len(near) and strict.stats["rejected_at_export"] == 0
