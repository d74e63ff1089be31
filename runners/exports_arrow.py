"""Parquet and Hugging Face `datasets` exports (`convosim export --format parquet|hf`).

`messages` keep the chat shape trainers read (a list of structs: role, content, tool_calls,
tool_call_id; absent fields are null), and `messages_json` / `tools_json` hold the exact rows as
JSON strings: Arrow unifies struct fields across rows, so a tool schema stored as a struct would
come back carrying every other tool's properties as None. Metadata are sidecar columns. Parquet is
written in batches (constant memory); `hf` is a `DatasetDict` folder for `load_from_disk`, with a
dataset card (README.md with YAML front matter).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from convosim.runners.exports import ExportOptions, export_rows
from convosim.runners.replay import open_store

CALL = pa.struct(
    [
        ("id", pa.string()),
        ("type", pa.string()),
        ("function", pa.struct([("name", pa.string()), ("arguments", pa.string())])),
    ]
)
MESSAGE = pa.struct(
    [
        ("role", pa.string()),
        ("content", pa.string()),
        ("tool_calls", pa.list_(CALL)),
        ("tool_call_id", pa.string()),
        ("reasoning_content", pa.string()),
    ]
)
SCHEMA = pa.schema(
    [
        ("messages", pa.list_(MESSAGE)),
        ("messages_json", pa.string()),
        ("tools_json", pa.string()),
        ("session_id", pa.string()),
        ("task_id", pa.string()),
        ("domain", pa.string()),
        ("trial", pa.int64()),
        ("parent_session_id", pa.string()),
        ("verdict", pa.string()),
        ("reasons", pa.list_(pa.string())),
        ("tags", pa.list_(pa.string())),
        ("models_json", pa.string()),
        ("scenario", pa.string()),
        ("seed", pa.int64()),
        ("split", pa.string()),
    ]
)
BATCH = 256


def _record(meta: dict[str, Any], messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "messages": [
            {
                "role": m["role"],
                "content": m.get("content"),
                "tool_calls": m.get("tool_calls"),
                "tool_call_id": m.get("tool_call_id"),
                "reasoning_content": m.get("reasoning_content"),
            }
            for m in messages
        ],
        "messages_json": json.dumps(messages, ensure_ascii=False),
        "tools_json": json.dumps(tools, ensure_ascii=False),
        "session_id": meta["session_id"],
        "task_id": meta["task_id"],
        "domain": meta["domain"],
        "trial": meta["trial"],
        "parent_session_id": meta["parent_session_id"],
        "verdict": meta["verdict"],
        "reasons": meta["reasons"],
        "tags": meta["tags"],
        "models_json": json.dumps(meta["models"], sort_keys=True),
        "scenario": meta["scenario"],
        "seed": meta["seed"],
        "split": meta["split"],
    }


def _records(run_dir: str | Path, options: ExportOptions, left_out: Counter[str]) -> Iterator[dict[str, Any]]:
    store = open_store(run_dir)
    try:
        for meta, messages, tools in export_rows(store, options, left_out):
            yield _record(meta, messages, tools)
    finally:
        store.close()


def export_arrow(
    run_dir: str | Path, fmt: str, target: Path, options: ExportOptions, left_out: Counter[str]
) -> dict[str, int]:
    names = ["train", *options.shares]
    data = target / "data" if fmt == "hf" else target
    data.mkdir(parents=True, exist_ok=True)
    tmp = {n: data / f".{n}.parquet.tmp" for n in names}
    writers = {n: pq.ParquetWriter(tmp[n], SCHEMA) for n in names}
    counts = dict.fromkeys(names, 0)
    pending: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    about: dict[str, Any] = {}
    try:
        for record in _records(run_dir, options, left_out):
            about = about or {k: record[k] for k in ("domain", "scenario", "seed", "models_json")}
            pending[record["split"]].append(record)
            counts[record["split"]] += 1
            if len(pending[record["split"]]) >= BATCH:
                writers[record["split"]].write_table(pa.Table.from_pylist(pending[record["split"]], SCHEMA))
                pending[record["split"]] = []
        for name, rows in pending.items():
            if rows:
                writers[name].write_table(pa.Table.from_pylist(rows, SCHEMA))
    finally:
        for writer in writers.values():
            writer.close()
    for name in names:
        tmp[name].replace(data / f"{name}.parquet")
    if fmt == "hf":
        _save_hf(target, data, names, counts, about)
    return counts


def portable_features(features: Any) -> Any:
    """A `datasets` features description in the form every release reads: `List` (datasets >= 4)
    becomes the list shorthand `[feature]`, which 3.x reads as a list too and 4.x and later read
    back as `List`. Without it, a folder saved by a current release fails in 3.x with "Feature type
    'List' not found"."""
    if isinstance(features, dict):
        if features.get("_type") == "List" and features.get("length", -1) == -1:
            return [portable_features(features["feature"])]
        return {key: portable_features(value) for key, value in features.items()}
    if isinstance(features, list):
        return [portable_features(value) for value in features]
    return features


def _write_portable_features(split_dir: Path) -> None:
    """Rewrite a saved split's features (its dataset_info.json and its Arrow files' schema metadata)."""
    info_path = split_dir / "dataset_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info["features"] = portable_features(info["features"])
    info_path.write_text(json.dumps(info, indent=2, sort_keys=True), encoding="utf-8")
    for arrow in sorted(split_dir.glob("*.arrow")):
        with pa.memory_map(str(arrow)) as source:
            table = pa.ipc.open_stream(source).read_all()
        meta = dict(table.schema.metadata or {})
        if b"huggingface" in meta:
            hf = json.loads(meta[b"huggingface"])
            if "features" in hf.get("info", {}):
                hf["info"]["features"] = portable_features(hf["info"]["features"])
            meta[b"huggingface"] = json.dumps(hf).encode()
        table = table.replace_schema_metadata(meta)
        tmp = arrow.with_suffix(".arrow.tmp")
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        tmp.replace(arrow)


def _save_hf(target: Path, data: Path, names: list[str], counts: dict[str, int], about: dict[str, Any]) -> None:
    """A `DatasetDict` on disk (for `load_from_disk`) beside the parquet files, and a dataset card."""
    import datasets
    import yaml

    files = {n: str(data / f"{n}.parquet") for n in names}
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # its bars would interleave with ours; restored below
    try:
        with tempfile.TemporaryDirectory() as cache:  # nothing left in the user's datasets cache
            loaded = datasets.load_dataset("parquet", data_files=files, cache_dir=cache)
            staging = target / ".dataset.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            loaded.save_to_disk(str(staging))
    finally:
        if bars:
            datasets.enable_progress_bars()
    for split in names:
        _write_portable_features(staging / split)
    final = target / "dataset"
    if final.exists():  # replaced only once the new one is complete
        shutil.rmtree(final)
    staging.rename(final)
    features = loaded[names[0]].features._to_yaml_list()
    front = {
        "configs": [
            {"config_name": "default", "data_files": [{"split": n, "path": f"data/{n}.parquet"} for n in names]}
        ],
        "dataset_info": {
            "features": features,
            "splits": [{"name": n, "num_examples": counts[n]} for n in names],
        },
        "tags": ["tool-use", "multi-turn", "synthetic", "convosim"],
    }
    models = json.loads(about.get("models_json") or "{}")
    card = [
        "---",
        yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(),
        "---",
        "",
        "# convosim dialogues",
        "",
        "Multi-turn tool-use dialogues generated by convosim: a simulated user with a private task and",
        "behavioural rules, an assistant with the domain's tools, tools run against a per-session SQL",
        "database, and a validator that checks every dialogue against the task's rubric and the final",
        "database state. Every row passed the validator unless its `verdict` says otherwise.",
        "",
        f"- scenario: `{about.get('scenario')}` (seed {about.get('seed')}), domain `{about.get('domain')}`",
        "- models: " + (", ".join(f"{role} `{model}`" for role, model in models.items()) or "none"),
        "- `messages`: the chat in OpenAI form (a model's reasoning in `reasoning_content`);",
        "  `messages_json` and `tools_json`: the exact rows as JSON; one column per metadata field.",
        "- splits are by task: no task, and no fork of a session, is in two splits.",
        "",
        "Load with `datasets.load_dataset('parquet', data_files=...)` or",
        "`datasets.load_from_disk('dataset')` (datasets 3.x and later).",
        "",
        "| split | rows |",
        "| --- | --- |",
        *[f"| {n} | {counts[n]} |" for n in names],
        "",
    ]
    staged_card = target / ".README.md.tmp"
    staged_card.write_text("\n".join(card), encoding="utf-8")
    staged_card.replace(target / "README.md")
