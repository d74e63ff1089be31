"""An outside audit of a finished run: what a user fine-tuning on `dataset.jsonl` would trip over.

It reads only the run folder (dataset, run store) and the domain, never the agents, and counts:
free-text values that reached a message cut short, unresolved placeholders, user read-backs that
name the wrong field or value, and dataset rows without their system prompt.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convosim.agents.offline_language import READBACK_RE
from convosim.environments.domain import Domain
from convosim.environments.phrasing import unquote
from convosim.environments.sql_checks import written_parameters
from convosim.messages import AssistantMessage, BaseEvent, ToolCallRequest, ToolResult, UserMessage
from convosim.models import Rubric, ToolSpec
from convosim.runners.store import RunStore

PLACEHOLDER = re.compile(r"\$\{[^}]*\}|\{[A-Za-z_][A-Za-z0-9_]*\}")
CUT_POINTS = re.compile(r"[.,;:]")
QUOTED_SPAN = re.compile(r'"([^"]*)"|“([^”]*)”')


@dataclass
class Audit:
    sessions: int = 0
    accepted: int = 0
    rows: int = 0
    truncated: list[str] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)
    wrong_readbacks: list[str] = field(default_factory=list)
    readbacks: int = 0
    rows_without_system: int = 0

    def summary(self) -> dict[str, int]:
        return {
            "sessions": self.sessions,
            "accepted": self.accepted,
            "dataset_rows": self.rows,
            "truncated_values": len(self.truncated),
            "placeholders": len(self.placeholders),
            "readbacks": self.readbacks,
            "wrong_readbacks": len(self.wrong_readbacks),
            "rows_without_system_prompt": self.rows_without_system,
        }


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _truncations(text: str, values: list[str], known: list[str]) -> list[str]:
    """Places where a value's head up to a punctuation mark stands without the rest of the value
    (and not inside some other known value that shares the head, like "St." in "Rue St.-Denis")."""
    spans = [(m.start(), m.end(), k) for k in known for m in re.finditer(re.escape(k), text)]
    spans += [
        (m.start(), m.end(), m.group(1) or m.group(2)) for m in QUOTED_SPAN.finditer(text)
    ]  # said whole, in quotes
    found = []
    for value in values:
        for cut in CUT_POINTS.finditer(value):
            prefix = value[: cut.start()].rstrip()
            if len(prefix) < 2:
                continue
            for m in re.finditer(r"(?<!\w)" + re.escape(prefix) + r"(?!\w)", text):
                if not any(a <= m.start() and m.end() <= b and inner != prefix for a, b, inner in spans):
                    found.append(f"{value!r} said as {text[m.start() : m.start() + len(value) + 5]!r}")
    return found


def _written_value(
    events: list[BaseEvent], upto: int, field_label: str, tools: dict[str, ToolSpec]
) -> tuple[bool, Any]:
    """The value the latest successful write before `upto` stored in a field with this label
    (a key that only selected the record does not count: it was not changed)."""
    results = {r.call_id: r for e in events[:upto] if isinstance(e, ToolResult) for r in e.results}
    for event in reversed(events[:upto]):
        if isinstance(event, ToolCallRequest):
            for call in event.calls:
                out = results.get(call.id)
                if out is None or out.is_error or not out.rows_changed or not isinstance(call.arguments, dict):
                    continue
                stored = written_parameters(tools[call.name].sql or "")
                for name, value in call.arguments.items():
                    if name in stored and name.replace("_", " ") == field_label.lower():
                        return True, value
                return False, None
    return False, None


def audit_run(out: Path, domain: Domain, rubrics: dict[str, Rubric]) -> Audit:
    audit = Audit()
    template_strings = [s for rows in domain.snapshot.values() for row in rows for s in _strings(row)]
    store = RunStore(out / "run.sqlite")
    try:
        for row in store.sessions():
            audit.sessions += 1
            if row["status"] != "accepted":
                continue
            audit.accepted += 1
            rubric = rubrics[row["task_id"]]
            values = [
                v for _, call in rubric.gold_calls for v in _strings(call.args) if CUT_POINTS.search(v) and " " in v
            ] + [v for f in rubric.facts for v in _strings(f.value) if CUT_POINTS.search(v) and " " in v]
            known = sorted(set(values + template_strings), key=len, reverse=True)
            events = list(store.events(row["session_id"]))
            for i, event in enumerate(events):
                if isinstance(event, UserMessage | AssistantMessage):
                    text = event.content
                elif isinstance(event, ToolCallRequest):
                    text = " ".join(_strings([c.arguments for c in event.calls]))
                else:
                    continue
                where = f"{row['session_id']} turn {event.turn}"
                audit.truncated += [f"{where}: {t}" for t in _truncations(text, values, known)]
                audit.placeholders += [f"{where}: {m}" for m in PLACEHOLDER.findall(text)]
                if isinstance(event, UserMessage):
                    for m in READBACK_RE.finditer(text):
                        audit.readbacks += 1
                        ok, value = _written_value(events, i, m.group("label"), domain.tools)
                        said = unquote(m.group("value"))
                        if not ok or (str(value) != said and not _same_number(value, said)):
                            audit.wrong_readbacks.append(f"{where}: {m.group(0)!r} (written: {value!r})")
    finally:
        store.close()
    policy = domain.policy
    with (out / "dataset.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            audit.rows += 1
            messages = json.loads(line)["messages"]
            if not policy or messages[0]["role"] != "system" or messages[0]["content"] != policy:
                audit.rows_without_system += 1
    return audit


def _same_number(value: Any, said: str) -> bool:
    try:
        return isinstance(value, int | float) and abs(float(said.replace(",", "")) - float(value)) < 0.005
    except ValueError:
        return False
