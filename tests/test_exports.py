"""`convosim export`: every row read back with the consumer's own parser equals the run store,
tool-call ids are ones every template accepts, and no task crosses splits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convosim.cli import app
from convosim.runners.export import openai_messages
from convosim.runners.store import RunStore

from conftest import EXAMPLES
from support import run, scenario_for

ID = re.compile(r"^[A-Za-z0-9]{9}$")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    run(scenario_for(EXAMPLES / "retail" / "scenario.yaml", sessions=60), out)
    return out


def _stored(run_dir: Path) -> dict[str, tuple[dict, list[dict]]]:
    store = RunStore(run_dir / "run.sqlite")
    try:
        policy = (EXAMPLES / "retail" / "policy.md").read_text().strip()
        return {r["session_id"]: (r, openai_messages(policy, store.events(r["session_id"]))) for r in store.sessions()}
    finally:
        store.close()


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _same_but_ids(exported: list[dict], stored: list[dict]) -> None:
    """Every message and tool call as stored; only the call ids renamed, consistently."""
    assert len(exported) == len(stored)
    ids: dict[str, str] = {}
    for a, b in zip(exported, stored, strict=True):
        assert a["role"] == b["role"] and a.get("content") == b.get("content")
        for ca, cb in zip(a.get("tool_calls", []), b.get("tool_calls", []), strict=True):
            assert ca["function"] == cb["function"] and ID.match(ca["id"])
            ids[cb["id"]] = ca["id"]
        if "tool_call_id" in b:
            assert a["tool_call_id"] == ids[b["tool_call_id"]]


def test_openai_export_with_metadata_sidecar_and_task_splits(run_dir: Path) -> None:
    result = CliRunner().invoke(app, ["export", str(run_dir), "--format", "openai", "--split", "eval=0.2"])
    assert result.exit_code == 0, result.output
    stored = _stored(run_dir)
    folder = run_dir / "export-openai"
    split_of_task: dict[str, str] = {}
    total = 0
    for name in ("train", "eval"):
        rows, metas = _lines(folder / f"{name}.jsonl"), _lines(folder / f"{name}.metadata.jsonl")
        assert rows and len(rows) == len(metas)
        for row, meta in zip(rows, metas, strict=True):
            total += 1
            assert set(row) == {"messages", "tools"}  # what the fine-tuning API takes, nothing else
            session, messages = stored[meta["session_id"]]
            _same_but_ids(row["messages"], messages)
            assert meta["task_id"] == session["task_id"] and meta["verdict"] == "accepted" and meta["split"] == name
            assert meta["domain"] == "retail" and meta["models"]["assistant"] == "offline"
            assert split_of_task.setdefault(meta["task_id"], name) == name, "a task crosses splits"
    assert total == sum(1 for s, _ in stored.values() if s["status"] == "accepted")
    store = RunStore(run_dir / "run.sqlite")
    try:
        sid = next(iter(stored))
        assert all(ID.match(v) for v in store.call_ids(sid).values())  # the mapping is kept
    finally:
        store.close()


def test_sharegpt_export_round_trips(run_dir: Path) -> None:
    result = CliRunner().invoke(app, ["export", str(run_dir), "--format", "sharegpt", "--out", str(run_dir / "sg")])
    assert result.exit_code == 0, result.output
    stored = _stored(run_dir)
    rows = _lines(run_dir / "sg" / "train.jsonl")
    assert rows
    for row in rows:
        _, messages = stored[row["metadata"]["session_id"]]
        assert json.loads(row["tools"])[0]["type"] == "function"
        froms = [t["from"] for t in row["conversations"]]
        expected = [
            {"system": "system", "user": "human", "tool": "observation"}.get(m["role"])
            or ("function_call" if "tool_calls" in m else "gpt")
            for m in messages
        ]
        assert froms == expected
        said = [t["value"] for t in row["conversations"] if t["from"] in ("human", "gpt", "system")]
        assert said == [m["content"] for m in messages if m["role"] != "tool" and "tool_calls" not in m]
        for turn in row["conversations"]:
            if turn["from"] == "function_call":
                assert all(ID.match(c["id"]) and isinstance(c["arguments"], dict) for c in json.loads(turn["value"]))


def test_export_ids_are_stable_and_bad_options_are_refused(run_dir: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["export", str(run_dir), "--out", str(run_dir / "a")])
    runner.invoke(app, ["export", str(run_dir), "--out", str(run_dir / "b")])
    assert (run_dir / "a" / "train.jsonl").read_bytes() == (run_dir / "b" / "train.jsonl").read_bytes()
    bad = runner.invoke(app, ["export", str(run_dir), "--format", "csv"])
    assert bad.exit_code == 2 and "--format" in bad.output
    bad = runner.invoke(app, ["export", str(run_dir), "--split", "eval=1.5"])
    assert bad.exit_code == 2 and "--split" in bad.output


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def test_parquet_and_hf_exports_load_back_with_pyarrow_and_datasets(run_dir: Path, tmp_path: Path) -> None:
    import datasets
    import pyarrow.parquet as pq

    runner = CliRunner()
    for fmt in ("parquet", "hf", "hf"):  # hf twice: a second export replaces the first whole
        result = runner.invoke(app, ["export", str(run_dir), "--format", fmt, "--split", "eval=0.2"])
        assert result.exit_code == 0, result.output
    stored = _stored(run_dir)
    tools = json.loads((run_dir / "dataset.jsonl").read_text().splitlines()[0])["tools"]
    table = pq.read_table(run_dir / "export-parquet" / "train.parquet")
    from_pyarrow = table.to_pylist()
    hf = run_dir / "export-hf"
    files = {s: str(hf / "data" / f"{s}.parquet") for s in ("train", "eval")}
    loaded = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "hf-cache"))
    on_disk = datasets.load_from_disk(str(hf / "dataset"))
    assert loaded["train"].num_rows == on_disk["train"].num_rows == len(from_pyarrow) > 0
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(str(hf / "README.md")).data.to_dict()  # the Hub's own card parser
    assert [f["name"] for f in card["dataset_info"]["features"]] == list(on_disk["train"].features)
    assert {s["name"]: s["num_examples"] for s in card["dataset_info"]["splits"]} == {
        n: on_disk[n].num_rows for n in ("train", "eval")
    }
    text = (hf / "README.md").read_text()
    assert "scenario: `retail` (seed 7)" in text and "assistant `offline`" in text
    split_of_task: dict[str, str] = {}
    for split in ("train", "eval"):
        for row in on_disk[split]:
            _, messages = stored[row["session_id"]]
            exact = json.loads(row["messages_json"])
            _same_but_ids(exact, messages)
            assert json.loads(row["tools_json"]) == tools  # every tool schema exactly as exported
            assert _without_nulls(row["messages"]) == exact  # the native column: the same chat
            assert split_of_task.setdefault(row["task_id"], split) == split
    assert [r["session_id"] for r in from_pyarrow] == list(loaded["train"]["session_id"])


@pytest.mark.parametrize(
    "tokenizer",
    ["mistral_instruct_tokenizer_240323.model.v3", "tekken_240911.json", "mistral_instruct_tokenizer_241114.model.v7"],
)
def test_exported_rows_render_through_mistral_chat_templates(run_dir: Path, tokenizer: str) -> None:
    """The rows go through mistral_common's own request validation and tokenizers, as shipped in
    its wheel (sentencepiece v3, v7 and tekken): tool-call ids of 9 alphanumerics are what they demand.
    The raw run-store ids are refused, which is why the export rewrites them."""
    import mistral_common
    from mistral_common.exceptions import InvalidFunctionCallException
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.protocol.instruct.validator import ValidationMode
    from mistral_common.tokens.tokenizers.base import SpecialTokenPolicy
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    path = Path(mistral_common.__file__).parent / "data" / tokenizer
    mistral = MistralTokenizer.from_file(str(path), mode=ValidationMode.finetuning)
    CliRunner().invoke(app, ["export", str(run_dir), "--out", str(run_dir / "for-mistral")])
    rows = _lines(run_dir / "for-mistral" / "train.jsonl")
    rendered = 0
    for row in rows[:40]:
        request = ChatCompletionRequest.from_openai(messages=row["messages"], tools=row["tools"])
        tokens = mistral.encode_chat_completion(request).tokens
        text = mistral.decode(tokens, special_token_policy=SpecialTokenPolicy.KEEP)
        assert "[TOOL_CALLS]" in text and "[AVAILABLE_TOOLS]" in text and "[TOOL_RESULTS]" in text
        first_call = next(m for m in row["messages"] if "tool_calls" in m)["tool_calls"][0]
        assert first_call["function"]["name"] in text and first_call["id"] in text
        rendered += 1
    assert rendered == min(40, len(rows)) > 0
    raw = json.loads((run_dir / "dataset.jsonl").read_text().splitlines()[0])
    with pytest.raises(InvalidFunctionCallException, match="length of 9"):  # the recorded ids are not accepted
        mistral.encode_chat_completion(ChatCompletionRequest.from_openai(messages=raw["messages"], tools=raw["tools"]))


def _qwen_messages(row: dict) -> list:
    """An exported OpenAI row as Qwen-Agent's own messages: one `function_call` per assistant call,
    one `function` message per result (Qwen-Agent's schema has no parallel-call list)."""
    from qwen_agent.llm.schema import ContentItem, FunctionCall, Message

    out = []
    for m in row["messages"]:
        if m["role"] == "assistant" and "tool_calls" in m:
            for call in m["tool_calls"]:
                fn = call["function"]
                out.append(Message("assistant", [], function_call=FunctionCall(fn["name"], fn["arguments"])))
        elif m["role"] == "tool":
            name = next(
                c["function"]["name"]
                for x in row["messages"]
                for c in x.get("tool_calls", [])
                if c["id"] == m["tool_call_id"]
            )
            out.append(Message("function", [ContentItem(text=m["content"])], name=name))
        else:
            out.append(
                Message(m["role"], [ContentItem(text=m["content"])], reasoning_content=m.get("reasoning_content"))
            )
    return out


def test_exported_rows_render_through_qwen_function_calling_template(run_dir: Path) -> None:
    """A second family: Qwen's Nous/Hermes function-calling prompt as Qwen-Agent ships it turns every
    call into `<tool_call>` text and every result into `<tool_response>`; its ChatML builder and the
    Qwen tokenizer shipped in its wheel encode the prompt, and its own parser reads back exactly the
    calls that were exported."""
    from qwen_agent.llm.fncall_prompts.nous_fncall_prompt import NousFnCallPrompt
    from qwen_agent.llm.schema import Message
    from qwen_agent.utils.tokenization_qwen import tokenizer as qwen_tokenizer
    from qwen_agent.utils.utils import build_text_completion_prompt

    CliRunner().invoke(app, ["export", str(run_dir), "--out", str(run_dir / "for-qwen")])
    rows = _lines(run_dir / "for-qwen" / "train.jsonl")
    template = NousFnCallPrompt()
    rendered = 0
    for row in rows[:40]:
        functions = [t["function"] for t in row["tools"]]
        plain = template.preprocess_fncall_messages(_qwen_messages(row), functions, lang="en")
        as_text = [Message(m.role, "".join(i.text for i in m.content)) for m in plain]
        prompt = build_text_completion_prompt(as_text, allow_special=True)
        calls = [c for m in row["messages"] for c in m.get("tool_calls", [])]
        system, _, dialogue = prompt.partition("<|im_end|>")  # the system turn explains <tool_call> itself
        assert dialogue.count("<tool_call>") == len(calls) > 0
        assert dialogue.count("<tool_response>") == sum(m["role"] == "tool" for m in row["messages"])
        assert all(t["function"]["name"] in system for t in row["tools"])
        assert len(qwen_tokenizer.tokenize(prompt, allowed_special="all")) > 0
        parsed = template.postprocess_fncall_messages([m for m in plain if m.role == "assistant"])
        back = [(m.function_call.name, json.loads(m.function_call.arguments)) for m in parsed if m.function_call]
        assert back == [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls]
        rendered += 1
    assert rendered == min(40, len(rows)) > 0


def test_hf_export_loads_the_same_in_datasets_3(run_dir: Path, tmp_path: Path) -> None:
    """datasets 3.x (its own environment, made by scripts/setup) reads the hf folder both ways,
    `load_dataset("parquet")` and `load_from_disk`, row for row as the current release does, and
    every message and tool schema equals the run store."""
    import subprocess
    import sys

    import datasets

    python = Path(__file__).resolve().parents[1] / ".venv-datasets3" / "bin" / "python"
    assert python.exists(), "run scripts/setup: it makes .venv-datasets3"
    target = tmp_path / "hf"
    result = CliRunner().invoke(
        app, ["export", str(run_dir), "--format", "hf", "--split", "eval=0.2", "--out", str(target)]
    )
    assert result.exit_code == 0, result.output
    script = Path(__file__).parent / "load_with_datasets.py"

    def load(interpreter: str, cache: str) -> list[dict]:
        out = subprocess.run(
            [interpreter, str(script), str(target), str(tmp_path / cache)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return [json.loads(line) for line in out.stdout.splitlines()]

    old, new = load(str(python), "cache3"), load(sys.executable, "cache-now")
    assert old[0]["version"].startswith("3.") and new[0]["version"] == datasets.__version__
    assert not [r for r in old if "load_from_disk_error" in r]
    assert old[1:] == new[1:]
    stored = _stored(run_dir)
    tools = json.loads((run_dir / "dataset.jsonl").read_text().splitlines()[0])["tools"]
    rows = old[1:]
    assert {r["how"] for r in rows} == {"load_dataset", "load_from_disk"}
    assert len(rows) == 2 * sum(1 for r, _ in stored.values() if r["status"] == "accepted")
    for row in rows:
        exact = json.loads(row["messages_json"])
        _same_but_ids(exact, stored[row["session_id"]][1])
        assert json.loads(row["tools_json"]) == tools
        assert _without_nulls(row["messages"]) == exact  # no struct unified across rows
