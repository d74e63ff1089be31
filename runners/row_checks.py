"""Checks of dataset rows as exported: the last gate between the run store and a trainer.

A row must open with the domain's system prompt (a model fine-tuned without it learns a different
assistant), and no dialogue may be exported twice: not as an identical row, not as the same
dialogue under another session's tool-call ids (an offline fork replays its parent exactly), and,
unless the threshold is None, not as a near copy of an earlier row (`near_duplicates.py`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from convosim.messages import Reason
from convosim.runners.near_duplicates import NearDuplicates


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def dialogue_fingerprint(messages: list[dict[str, Any]]) -> str:
    """The dialogue with tool-call ids replaced by their order of appearance."""
    ids: dict[str, str] = {}

    def canonical(call_id: str) -> str:
        return ids.setdefault(call_id, f"call-{len(ids)}")

    normal = []
    for message in messages:
        message = dict(message)
        if "tool_calls" in message:
            message["tool_calls"] = [{**c, "id": canonical(c["id"])} for c in message["tool_calls"]]
        if "tool_call_id" in message:
            message["tool_call_id"] = canonical(message["tool_call_id"])
        normal.append(message)
    return _digest(normal)


class RowChecks:
    """Judges rows in export order; remembers what it has let through (two hashes per row)."""

    def __init__(self, policy: str, near_threshold: float | None = None) -> None:
        self.policy = policy
        self.exact: dict[str, str] = {}
        self.dialogues: dict[str, str] = {}
        self.near = NearDuplicates(near_threshold) if near_threshold is not None else None

    def check(self, session_id: str, row: dict[str, Any]) -> list[Reason]:
        reasons = []
        messages = row.get("messages") or []
        first = messages[0] if messages else {}
        if first.get("role") != "system" or first.get("content") != self.policy:
            reasons.append(Reason(code="missing_system_prompt", detail={"first_message": first.get("role")}))
        exact, dialogue = _digest(row), dialogue_fingerprint(messages)
        if exact in self.exact:
            reasons.append(Reason(code="duplicate", detail={"kind": "exact", "of": self.exact[exact]}))
        elif dialogue in self.dialogues:
            reasons.append(Reason(code="duplicate", detail={"kind": "same_dialogue", "of": self.dialogues[dialogue]}))
        if not reasons and self.near is not None:
            near = self.near.check(session_id, messages)  # remembers the row when it is not a near copy
            reasons += [near] if near is not None else []
        if not reasons:
            self.exact[exact] = session_id
            self.dialogues[dialogue] = session_id
        return reasons
