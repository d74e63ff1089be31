"""`convosim judge`: the validator on dialogues from outside a run, through the command line.

A run's export is judged clean; the same rows corrupted (consent removed, an output tampered, a
forbidden change attempted) are rejected with their codes and evidence; bad input exits 2 naming
the file, the line and the field, and writes nothing; verdicts are never written over.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convosim.cli import app

from conftest import EXAMPLES
from support import run, scenario_for


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("judge")
    run(scenario_for(EXAMPLES / "retail" / "scenario.yaml", sessions=24, seed=3), folder / "run")
    result = CliRunner().invoke(app, ["export", str(folder / "run"), "--out", str(folder / "export")])
    assert result.exit_code == 0, result.output
    return folder / "export" / "train.jsonl"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_runs_export_is_judged_accepted_line_by_line(exported: Path, tmp_path: Path) -> None:
    out = tmp_path / "verdicts.jsonl"
    result = CliRunner().invoke(app, ["judge", str(EXAMPLES / "retail"), str(exported), "--out", str(out)])
    assert result.exit_code == 0, result.output
    verdicts = _rows(out)
    assert len(verdicts) == 24 and all(v["accepted"] for v in verdicts)
    assert {v["task_id"] for v in verdicts} >= {"retail-001", "retail-024"}  # task ids from the metadata file
    assert "24 accepted, 0 rejected" in result.output


WRITES = {
    "cancel_order", "update_customer_phone", "update_shipping_address", "create_return", "update_item_quantity",
    "add_order_item",
}  # fmt: skip


def _drop_consent(row: dict) -> dict | None:
    """The read-back and the yes before the first write are removed."""
    messages = row["messages"]
    for i, m in enumerate(messages):
        names = {c["function"]["name"] for c in m.get("tool_calls", [])}
        after_yes = i >= 2 and messages[i - 1]["role"] == "user" and messages[i - 2]["role"] == "assistant"
        if names & WRITES and after_yes:
            return {**row, "messages": messages[: i - 2] + messages[i:]}
    return None


def _tamper(row: dict) -> dict | None:
    messages = [dict(m) for m in row["messages"]]
    for m in messages:
        if m["role"] == "tool" and '"total"' in m["content"]:
            m["content"] = m["content"].replace('"total": ', '"total": 1', 1)
            return {**row, "messages": messages}
    return None


def test_corrupted_rows_are_rejected_with_codes_and_evidence(exported: Path, tmp_path: Path) -> None:
    meta = _rows(exported.with_name("train.metadata.jsonl"))
    rows, wanted = [], []
    for row, info in zip(_rows(exported), meta, strict=True):
        for corrupt, code in ((_drop_consent, "write_without_confirmation"), (_tamper, "tool_output_mismatch")):
            bad = corrupt(row)
            if bad is not None:
                rows.append({**bad, "task_id": info["task_id"]})
                wanted.append(code)
    assert len(rows) >= 10
    out = tmp_path / "bad.verdicts.jsonl"
    result = CliRunner().invoke(app, ["judge", str(EXAMPLES / "retail"), str(_write(tmp_path / "bad.jsonl", rows))])
    assert result.exit_code == 1, result.output
    verdicts = _rows(out)
    caught = [code in {r["code"] for r in v["reasons"]} for v, code in zip(verdicts, wanted, strict=True)]
    print(f"judge: {sum(caught)}/{len(caught)} corrupted rows rejected with the right code")
    assert all(caught)
    evidence = [r["detail"] for v in verdicts for r in v["reasons"] if r["code"] == "write_without_confirmation"]
    assert evidence and all("event" in d and "problem" in d for d in evidence)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("not json", "line 2"),
        ('{"messages": "hi"}', "line 2.messages"),
        ('{"messages": [{"role": "robot", "content": "x"}]}', "line 2.messages[0].role"),
        ('{"messages": [{"role": "user", "content": "x"}], "task_id": "retail-999"}', "line 2.task_id"),
        (
            '{"messages": [{"role": "assistant", "tool_calls": [{"type": "function"}]}]}',
            "line 2.messages[0].tool_calls[0]",
        ),
        (
            '{"messages": [{"role": "tool", "tool_call_id": "nope", "content": "{}"}]}',
            "line 2.messages[0].tool_call_id",
        ),
    ],
)
def test_bad_input_exits_2_naming_file_line_and_field_and_writes_nothing(
    exported: Path, tmp_path: Path, line: str, field: str
) -> None:
    first = exported.read_text().splitlines()[0]
    path = tmp_path / "in.jsonl"
    path.write_text(first + "\n" + line + "\n")
    result = CliRunner().invoke(app, ["judge", str(EXAMPLES / "retail"), str(path)])
    assert result.exit_code == 2, result.output
    assert "in.jsonl" in result.output and field in result.output
    assert not (tmp_path / "in.verdicts.jsonl").exists()


def test_existing_verdicts_are_never_written_over(exported: Path, tmp_path: Path) -> None:
    out = tmp_path / "v.jsonl"
    out.write_text("keep\n")
    result = CliRunner().invoke(app, ["judge", str(EXAMPLES / "retail"), str(exported), "--out", str(out)])
    assert result.exit_code == 2 and "already exists" in result.output
    assert out.read_text() == "keep\n"
