"""`convosim export`: a finished run as files a trainer takes, with metadata and task-level splits.

Formats (one JSON object per line, streamed, written atomically):
- `openai`: OpenAI chat fine-tuning rows (`messages`, `tools`), exactly as `dataset.jsonl`; the
  metadata goes to a sidecar `<split>.metadata.jsonl`, line for line, because the fine-tuning API
  refuses unknown keys.
- `sharegpt`: `conversations` of `{from, value}` turns (`system`, `human`, `gpt`, `function_call`,
  `observation`), `tools` as a JSON string, and a `metadata` object (the LLaMA-Factory convention).

A model's reasoning is `reasoning_content` on the assistant message (openai, parquet, hf: the
field Qwen3, DeepSeek and TRL templates read); in sharegpt a `<think>` block before a `gpt` value
(LLaMA-Factory's reasoning convention) and a `reasoning` key on a `function_call` turn, whose value
must stay JSON. `strip_reasoning` leaves it out everywhere.

Tool-call ids are rewritten to 9 alphanumeric characters (what Mistral's templates require, and
every other template accepts), stable per session; the mapping is kept in the run store. Splits
are by task: a task (and every fork of its sessions) lands in exactly one split, chosen by a seeded
shuffle of the task ids.
"""

from __future__ import annotations

import hashlib
import json
import random
import string
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convosim.config import scenario_from_record
from convosim.environments.domain import load_domain
from convosim.errors import ConvosimError
from convosim.rules.behaviours import recorded_tags
from convosim.runners.export import AtomicJsonl, openai_messages
from convosim.runners.near_duplicates import DEFAULT_THRESHOLD
from convosim.runners.replay import open_store
from convosim.runners.row_checks import RowChecks
from convosim.runners.store import RunStore

FORMATS = ("openai", "sharegpt", "parquet", "hf")
Row = tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]
_ALPHABET = string.ascii_letters + string.digits


def short_call_id(session_id: str, call_id: str) -> str:
    """9 alphanumeric characters, the same for the same call of the same session in every export."""
    number = int.from_bytes(hashlib.sha256(f"{session_id}\x00{call_id}".encode()).digest()[:8], "big")
    out = []
    for _ in range(9):
        number, digit = divmod(number, len(_ALPHABET))
        out.append(_ALPHABET[digit])
    return "".join(out)


def parse_split(text: str | None) -> dict[str, float]:
    """`eval=0.1` or `eval=0.1,test=0.05` -> shares per split; `train` takes the rest."""
    if not text:
        return {}
    shares: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            share = float(value)
        except ValueError:
            share = -1.0
        if not name.strip() or not 0 < share < 1:
            raise ConvosimError(None, "--split", f"{part!r} is not NAME=SHARE with 0 < SHARE < 1")
        shares[name.strip()] = share
    if sum(shares.values()) >= 1 or "train" in shares:
        raise ConvosimError(None, "--split", "the shares must leave something for train (and not name it)")
    return shares


def assign_splits(task_ids: list[str], shares: dict[str, float], seed: int) -> dict[str, str]:
    """task id -> split name, by a seeded shuffle: each split gets round(share x tasks) tasks."""
    tasks = sorted(set(task_ids))
    random.Random(seed).shuffle(tasks)
    out: dict[str, str] = {}
    start = 0
    for name, share in shares.items():
        count = max(1, round(share * len(tasks))) if len(tasks) > len(shares) else 0
        for task in tasks[start : start + count]:
            out[task] = name
        start += count
    for task in tasks[start:]:
        out[task] = "train"
    return out


def rename_call_ids(messages: list[dict[str, Any]], ids: dict[str, str]) -> list[dict[str, Any]]:
    """The messages with every tool-call id (in calls and in results) replaced through `ids`."""
    out = []
    for message in messages:
        message = dict(message)
        if "tool_calls" in message:
            message["tool_calls"] = [{**c, "id": ids[c["id"]]} for c in message["tool_calls"]]
        if "tool_call_id" in message:
            message["tool_call_id"] = ids[message["tool_call_id"]]
        out.append(message)
    return out


def sharegpt_row(messages: list[dict[str, Any]], tools: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    turns = []
    for m in messages:
        if m["role"] == "system":
            turns.append({"from": "system", "value": m["content"]})
        elif m["role"] == "user":
            turns.append({"from": "human", "value": m["content"]})
        elif m["role"] == "assistant" and "tool_calls" in m:
            calls = [_call(c) for c in m["tool_calls"]]
            turn = {"from": "function_call", "value": json.dumps(calls, ensure_ascii=False)}
            turns.append({**turn, "reasoning": m["reasoning_content"]} if "reasoning_content" in m else turn)
        elif m["role"] == "assistant":
            thought = f"<think>\n{m['reasoning_content']}\n</think>\n\n" if "reasoning_content" in m else ""
            turns.append({"from": "gpt", "value": thought + m["content"]})
        elif m["role"] == "tool":
            turns.append({"from": "observation", "value": m["content"], "tool_call_id": m["tool_call_id"]})
    return {"conversations": turns, "tools": json.dumps(tools, ensure_ascii=False), "metadata": meta}


def _call(call: dict[str, Any]) -> dict[str, Any]:
    """A tool call as ShareGPT's function_call turn lists it: arguments as an object when they parse."""
    raw = call["function"]["arguments"]
    try:
        arguments: Any = json.loads(raw or "{}")
    except ValueError:
        arguments = raw
    return {"id": call["id"], "name": call["function"]["name"], "arguments": arguments}


def _models(scenario: dict[str, Any]) -> dict[str, str]:
    roles = scenario.get("roles") or {}
    return {
        role: (cfg.get("model") or "offline") if cfg.get("policy") == "llm" else "offline"
        for role, cfg in sorted(roles.items())
    }


@dataclass(frozen=True)
class ExportOptions:
    """What goes into an export and how; the same for every format."""

    shares: dict[str, float] = field(default_factory=dict)  # held-out splits by task; train takes the rest
    include_rejected: bool = False
    seed: int = 0  # of the task-to-split shuffle
    reasoning: bool = True  # keep models' reasoning (`reasoning_content`)
    dedup: float | None = DEFAULT_THRESHOLD  # near-duplicate threshold (Jaccard of word 3-grams); None: exact only


@dataclass
class ExportResult:
    rows: dict[str, int]  # rows written per split
    left_out: Counter[str] = field(default_factory=Counter)  # rows not written, by reason code
    target: Path | None = None


def _rows(store: RunStore, options: ExportOptions, left_out: Counter[str]) -> Iterator[Row]:
    run = store.runs()[0]
    scenario = run["scenario"]
    domain = load_domain(scenario_from_record(scenario).domain)
    tools = domain.openai_tools()
    checks = RowChecks(domain.policy, options.dedup)
    models = _models(scenario)
    for row in store.sessions(run["run_id"]):
        events = list(store.events(row["session_id"]))
        messages = openai_messages(domain.policy, events, options.reasoning)
        problems = checks.check(row["session_id"], {"messages": messages, "tools": tools})
        accepted = row["status"] == "accepted" and not problems
        codes = sorted({r["code"] for r in row["reasons"]} | {p.code for p in problems})
        if not accepted and not options.include_rejected:
            left_out[problems[0].code if problems else "rejected"] += 1
            continue
        meta = {
            "session_id": row["session_id"],
            "task_id": row["task_id"],
            "domain": domain.name,
            "trial": row["trial"],
            "parent_session_id": row["parent_session_id"],
            # a session the validator accepted but a row check refused is rejected here, with its reason
            "verdict": "accepted" if accepted else "rejected" if row["status"] == "accepted" else row["status"],
            "reasons": codes,
            "tags": list(recorded_tags(events)),
            "models": models,
            "scenario": scenario.get("name"),
            "seed": run["seed"],
        }
        yield meta, messages, tools


def export_rows(store: RunStore, options: ExportOptions, left_out: Counter[str] | None = None) -> Iterator[Row]:
    """(metadata with its split, messages with exported call ids, tools) for every exported row,
    in run order; rows not exported are counted by reason in `left_out`. Once all are read, the
    call-id mapping is saved in the store. Every format uses it."""
    splits = assign_splits([r["task_id"] for r in store.sessions()], options.shares, options.seed)
    mapping: list[tuple[str, str, str]] = []
    for meta, messages, tools in _rows(store, options, left_out if left_out is not None else Counter()):
        sid = meta["session_id"]
        ids = {c["id"]: short_call_id(sid, c["id"]) for m in messages for c in m.get("tool_calls", [])}
        mapping += [(sid, old, new) for old, new in ids.items()]
        yield {**meta, "split": splits[meta["task_id"]]}, rename_call_ids(messages, ids), tools
    store.save_call_ids(mapping)


def export_run(
    run_dir: str | Path,
    fmt: str = "openai",
    out: str | Path | None = None,
    split: str | None = None,
    include_rejected: bool = False,
    seed: int = 0,
    strip_reasoning: bool = False,
    dedup: float | None = DEFAULT_THRESHOLD,
) -> ExportResult:
    """Write the run in `fmt` to `out` (default RUN/export-FMT). The Python entry point of
    `convosim export`: `export_run("runs/retail", "hf", split="eval=0.1", dedup=0.9)`.

    A model's reasoning is kept unless `strip_reasoning` (for targets that refuse it, such as the
    OpenAI fine-tuning API); near-duplicate dialogues at the `dedup` similarity are left out
    (None: only exact duplicates)."""
    if fmt not in FORMATS:
        raise ConvosimError(None, "--format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    if dedup is not None and not 0 < dedup <= 1:
        raise ConvosimError(None, "--dedup-threshold", f"{dedup} is not a similarity in (0, 1]")
    options = ExportOptions(parse_split(split), include_rejected, seed, not strip_reasoning, dedup)
    target = Path(out) if out is not None else Path(run_dir) / f"export-{fmt}"
    result = ExportResult(rows={}, target=target)
    if fmt in ("parquet", "hf"):
        from convosim.runners.exports_arrow import export_arrow

        result.rows = export_arrow(run_dir, fmt, target, options, result.left_out)
        return result
    store = open_store(run_dir)
    try:
        target.mkdir(parents=True, exist_ok=True)
        names = ["train", *options.shares]
        with ExitStack() as stack:  # every file renamed into place only if the whole export succeeds
            files = {n: stack.enter_context(AtomicJsonl(target / f"{n}.jsonl")) for n in names}
            sidecars = (
                {n: stack.enter_context(AtomicJsonl(target / f"{n}.metadata.jsonl")) for n in names}
                if fmt == "openai"
                else {}
            )
            for meta, messages, tools in export_rows(store, options, result.left_out):
                if fmt == "openai":
                    files[meta["split"]].write({"messages": messages, "tools": tools})
                    sidecars[meta["split"]].write(meta)
                else:
                    files[meta["split"]].write(sharegpt_row(messages, tools, meta))
        result.rows = {name: handle.count for name, handle in files.items()}
        return result
    finally:
        store.close()
