"""A reasoning model's thinking survives: recorded on the assistant's events, shown in replay,
exported in each format's field, strippable, and never sent back to the model or shown to the user."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convosim.cli import app
from convosim.environments.domain import load_domain
from convosim.environments.tasks import load_tasks
from convosim.llm.transports import split_reasoning
from convosim.messages import AssistantMessage, ToolCallRequest
from convosim.runners.exports import rename_call_ids
from convosim.testing import ScriptedChatServer
from convosim.testing.scripted import OfflineResponders
from convosim.testing.server import ChatReply

from support import run, scenario_for, transcripts


def test_a_leading_think_block_moves_out_of_the_content() -> None:
    assert split_reasoning("<think>\nweigh it\n</think>\n\nYes.", None) == ("Yes.", "weigh it")
    assert split_reasoning("<think>b</think>Yes.", "a") == ("Yes.", "a\n\nb")
    assert split_reasoning("I said <think> mid-text.", None) == ("I said <think> mid-text.", None)
    assert split_reasoning("Yes.", "  ") == ("Yes.", None)


@pytest.fixture(scope="module")
def thinking_run(retail_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two runs of a reasoning assistant over real HTTP: reasoning in its own field before every
    call, a `<think>` block in the text of every answer; one run per transport."""
    domain = load_domain(retail_dir)
    tasks, _ = load_tasks(retail_dir / "tasks.yaml", domain)
    base = scenario_for(retail_dir / "scenario.yaml")
    responders = OfflineResponders(domain.tools, tasks, base.rules, base.persona)
    seen: list[str] = []

    async def thinking(body: dict) -> ChatReply:
        seen.append(json.dumps(body["messages"]))
        reply = await responders.assistant(body)
        step = f"Step {len(body['messages'])}"
        if reply.tool_calls:
            return ChatReply(tool_calls=reply.tool_calls, reasoning=f"{step}: I need {reply.tool_calls[0][0]}.")
        return ChatReply(content=f"<think>\n{step}: answer from the results.\n</think>\n\n{reply.content}")

    out = {}
    with ScriptedChatServer({"assistant": thinking}) as server:
        for transport in ("litellm", "openai-http"):
            role = {"policy": "llm", "model": "openai/assistant", "api_base": server.base_url, "transport": transport}
            scenario = scenario_for(retail_dir / "scenario.yaml", sessions=3, roles={"assistant": role})
            result = run(scenario, tmp := tmp_path_factory.mktemp(transport) / "run")
            assert result.stats["accepted"] == 3
            out[transport] = tmp
    assert len(seen) > 20
    assert not [s for s in seen if "reasoning_content" in s or "<think>" in s or "Step " in s], "never sent back"
    return out


@pytest.mark.parametrize("transport", ["litellm", "openai-http"])
def test_reasoning_is_recorded_on_every_assistant_event(thinking_run: dict[str, Path], transport: str) -> None:
    counted = 0
    for _, events in transcripts(thinking_run[transport]).values():
        for event in events:
            if isinstance(event, ToolCallRequest):
                assert event.reasoning and event.reasoning.endswith(f"I need {event.calls[0].name}.")
                counted += 1
            elif isinstance(event, AssistantMessage) and event.sender == "assistant":
                assert event.reasoning and event.reasoning.endswith("answer from the results.")
                assert "<think>" not in event.content and "Step" not in event.content  # the user never sees it
                counted += 1
    assert counted > 20


def test_replay_shows_the_thinking(thinking_run: dict[str, Path]) -> None:
    run_dir = thinking_run["openai-http"]
    session = next(iter(transcripts(run_dir)))
    result = CliRunner().invoke(app, ["replay", str(run_dir), session, "--plain"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    first = next(i for i, line in enumerate(lines) if "thinking: Step" in line)
    assert "I need" in lines[first] and "call " in lines[first + 1]  # shown before the call it led to
    assert any("thinking:" in line and "answer from the results" in line for line in lines)


def test_every_format_exports_the_reasoning_and_strip_removes_it(thinking_run: dict[str, Path]) -> None:
    import pyarrow.parquet as pq

    run_dir = thinking_run["litellm"]
    runner = CliRunner()
    for fmt in ("openai", "sharegpt", "parquet"):
        for strip in (False, True):
            target = run_dir / f"{fmt}-{strip}"
            args = ["export", str(run_dir), "--format", fmt, "--out", str(target)]
            result = runner.invoke(app, args + (["--strip-reasoning"] if strip else []))
            assert result.exit_code == 0, result.output
    kept = [json.loads(line) for line in (run_dir / "openai-False" / "train.jsonl").read_text().splitlines()]
    stripped = [json.loads(line) for line in (run_dir / "openai-True" / "train.jsonl").read_text().splitlines()]
    assistant = [m for row in kept for m in row["messages"] if m["role"] == "assistant"]
    assert assistant and all(m["reasoning_content"].startswith("Step ") for m in assistant)
    assert "reasoning_content" not in json.dumps(stripped)
    for row, bare in zip(kept, stripped, strict=True):  # stripping removes the reasoning and nothing else
        assert [{k: v for k, v in m.items() if k != "reasoning_content"} for m in row["messages"]] == bare["messages"]
    dataset = [json.loads(line) for line in (run_dir / "dataset.jsonl").read_text().splitlines()]
    assert [r["messages"] for r in dataset] == [_with_store_ids(r, k) for r, k in zip(dataset, kept, strict=True)]

    sharegpt = [json.loads(line) for line in (run_dir / "sharegpt-False" / "train.jsonl").read_text().splitlines()]
    turns = [t for row in sharegpt for t in row["conversations"]]
    assert all(t["value"].startswith("<think>\nStep ") for t in turns if t["from"] == "gpt")
    assert all(t["reasoning"].startswith("Step ") for t in turns if t["from"] == "function_call")
    assert all(isinstance(json.loads(t["value"]), list) for t in turns if t["from"] == "function_call")
    bare_turns = (run_dir / "sharegpt-True" / "train.jsonl").read_text()
    assert "<think>" not in bare_turns and '"reasoning"' not in bare_turns

    table = pq.read_table(run_dir / "parquet-False" / "train.parquet").to_pylist()
    for row, exported in zip(table, kept, strict=True):
        assert json.loads(row["messages_json"]) == exported["messages"]
        native = [m["reasoning_content"] for m in row["messages"] if m["role"] == "assistant"]
        assert native == [m["reasoning_content"] for m in exported["messages"] if m["role"] == "assistant"]
    bare_table = pq.read_table(run_dir / "parquet-True" / "train.parquet").to_pylist()
    assert all(m["reasoning_content"] is None for row in bare_table for m in row["messages"])


def _with_store_ids(stored: dict, exported: dict) -> list[dict]:
    """The exported messages with the run store's call ids back in: dataset.jsonl keeps the raw ids."""
    ids = {}
    for s, e in zip(stored["messages"], exported["messages"], strict=True):
        for a, b in zip(s.get("tool_calls", []), e.get("tool_calls", []), strict=True):
            ids[b["id"]] = a["id"]
    return rename_call_ids(exported["messages"], ids)
