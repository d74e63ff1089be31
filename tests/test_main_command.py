"""The README's main command, run as a real subprocess: numbers, determinism, dataset format."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from convosim.environments.domain import load_domain
from convosim.environments.phrasing import PhraseBook
from convosim.environments.tasks import load_tasks
from convosim.rules.checks import subgoals_in_message

from conftest import ROOT
from support import transcripts

CLI = shutil.which("convosim", path=str(Path(sys.executable).parent))


def convosim(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    assert CLI, "the convosim console script is not installed"
    return subprocess.run([CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def main_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("main") / "run"
    result = convosim("run", "examples/retail/scenario.yaml", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "accepted_pct" in result.stdout  # the end-of-run table
    return out


def test_main_command_meets_the_seed_numbers(main_run: Path) -> None:
    stats = json.loads((main_run / "stats.json").read_text())
    assert stats["sessions"] >= 50
    assert stats["accepted_pct"] >= 90
    assert stats["mean_subgoals"] >= 2.5
    assert stats["mean_turns"] >= 20
    assert stats["mean_user_turns"] >= 6
    assert stats["wall_time_s"] > 0


def test_no_user_message_exceeds_the_subgoal_maximum(main_run: Path, retail_dir: Path) -> None:
    domain = load_domain(retail_dir)
    _, rubrics = load_tasks(retail_dir / "tasks.yaml", domain)
    book = PhraseBook(domain.tools)
    for row, events in transcripts(main_run).values():
        for event in events:
            if event.type == "user_message":
                assert len(subgoals_in_message(event.content, book, rubrics[row["task_id"]].gold_calls)) <= 2


def test_same_seed_gives_byte_identical_dataset(main_run: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    result = convosim("run", "examples/retail/scenario.yaml", "--out", str(again), "--concurrency", "3", "-q")
    assert result.returncode == 0, result.stderr
    first = (main_run / "dataset.jsonl").read_bytes()
    assert first and first == (again / "dataset.jsonl").read_bytes()
    assert (main_run / "rejected.jsonl").read_bytes() == (again / "rejected.jsonl").read_bytes()


def test_another_seed_gives_other_dialogues(main_run: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    result = convosim("run", "examples/retail/scenario.yaml", "--out", str(other), "--seed", "99", "-n", "10", "-q")
    assert result.returncode == 0, result.stderr
    first = (main_run / "dataset.jsonl").read_text().splitlines()[:10]
    assert (other / "dataset.jsonl").read_text().splitlines() != first


def _check_openai_line(line: str) -> None:
    row = json.loads(line)
    assert set(row) == {"messages", "tools"}
    names = set()
    for tool in row["tools"]:
        assert tool["type"] == "function"
        fn = tool["function"]
        assert set(fn) == {"name", "description", "parameters"} and fn["parameters"]["type"] == "object"
        names.add(fn["name"])
    messages = row["messages"]
    assert messages[0]["role"] == "system" and messages[1]["role"] == "user"
    assert messages[-1]["role"] == "assistant" and messages[-1]["content"]
    calls: dict[str, int] = {}
    open_calls: set[str] = set()
    for m in messages:
        assert m["role"] in {"system", "user", "assistant", "tool"}
        if m["role"] == "assistant" and "tool_calls" in m:
            assert "content" not in m or m["content"] is None
            for call in m["tool_calls"]:
                assert call["type"] == "function" and call["function"]["name"] in names
                assert isinstance(json.loads(call["function"]["arguments"]), dict)
                calls[call["id"]] = 0
                open_calls.add(call["id"])
        elif m["role"] == "tool":
            assert m["tool_call_id"] in open_calls, "a tool result must follow its call"
            assert isinstance(m["content"], str)
            calls[m["tool_call_id"]] += 1
        else:
            assert isinstance(m["content"], str) and m["content"]
            assert not open_calls, "every call is answered before the conversation moves on"
        if m["role"] == "tool":
            open_calls.discard(m["tool_call_id"])
    assert calls and all(n == 1 for n in calls.values()), "every tool call id has exactly one result"


def test_dataset_is_valid_openai_fine_tuning_chat_format(main_run: Path) -> None:
    lines = (main_run / "dataset.jsonl").read_text().splitlines()
    assert len(lines) >= 45
    for line in lines:
        _check_openai_line(line)


def test_telecom_example_runs_clean(tmp_path: Path) -> None:
    out = tmp_path / "telecom"
    result = convosim("run", "examples/telecom/scenario.yaml", "--out", str(out), "-q")
    assert result.returncode == 0, result.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["accepted_pct"] >= 90 and stats["mean_subgoals"] >= 2.5 and stats["mean_turns"] >= 20
    for line in (out / "dataset.jsonl").read_text().splitlines():
        _check_openai_line(line)


@pytest.mark.parametrize("name", ["retail", "telecom"])
def test_example_domains_are_complete(name: str) -> None:
    folder = ROOT / "examples" / name
    domain = load_domain(folder)
    tasks, _ = load_tasks(folder / "tasks.yaml", domain)
    kinds = {t.kind for t in domain.tools.values()}
    assert len(domain.tools) >= 12 and kinds == {"read", "write"}
    assert len(tasks) >= 30
    assert all(2 <= len(t.subgoals) <= 4 for t in tasks)
    assert (folder / "scenario.yaml").is_file()


def test_check_command_reports_the_domain() -> None:
    result = convosim("check", "examples/telecom")
    assert result.returncode == 0
    assert "telecom: 15 tools" in result.stdout and "44 tasks verified" in result.stdout
