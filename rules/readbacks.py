"""A user who reads a change back must read back what the database now holds.

"Just to be sure, the phone number is now 07738-306067, right?" after a plan change confirms a
value the user never asked to change; a read-back of a value the write did not store teaches the
assistant to agree with a wrong claim. The database's value is the one the last successful write
stored (its returned row, else the argument it bound to a changed column).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from convosim.agents.offline_language import READBACK_RE
from convosim.environments.phrasing import QUOTED, label, same_value, unquote
from convosim.environments.sql_checks import written_parameters
from convosim.messages import BaseEvent, Reason, ToolCallRequest, ToolResult, UserMessage
from convosim.models import ToolSpec
from convosim.rules.grounding import numbers_in


def _same(value: Any, said: str) -> bool:
    if str(value).casefold() == said.casefold() or same_value(value, said):
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        return numbers_in(said) == {round(abs(float(value)), 2)}
    return False


def _last_write(events: list[BaseEvent], upto: int, tools: dict[str, ToolSpec]) -> dict[str, Any] | None:
    """label -> value for the fields the latest successful write before `upto` changed."""
    outputs = {r.call_id: r for e in events[:upto] if isinstance(e, ToolResult) for r in e.results}
    for event in reversed(events[:upto]):
        if not isinstance(event, ToolCallRequest):
            continue
        for call in reversed(event.calls):
            result = outputs.get(call.id)
            tool = tools.get(call.name)
            if result is None or result.is_error or tool is None or tool.kind != "write":
                continue
            if not isinstance(call.arguments, dict):
                continue
            stored = written_parameters(tool.sql) if tool.sql else frozenset(call.arguments)
            changed = {label(k): v for k, v in call.arguments.items() if k in stored}
            if isinstance(result.output, dict):  # the row as stored wins over the argument given
                changed |= {label(k): v for k, v in result.output.items() if label(k) in changed}
            return changed
    return None


# A read-back in any wording: a question that says a field now holds a value. `changed` marks a
# claim that something changed ("is now", "was updated to"), which no write may leave unbacked.
_CUE = re.compile(r"\b(?:right|correct|confirm|just to|double-check|so|is that|am i right|yes)\b", re.IGNORECASE)
_LINK = (
    r"(?P<changed>is now|was changed to|has been changed to|was updated to|has been updated to|was set to"
    r"|has been set to|should now be|now reads|changed to|updated to)|(?P<plain>is|reads)"
)


def _claims(text: str, labels: list[str]) -> list[tuple[str, str, bool, tuple[int, int]]]:
    """(label, value, claims a change, span) for each `the LABEL is now VALUE` a question states."""
    if "?" not in text or not _CUE.search(text):
        return []
    out = []
    for name in labels:
        pattern = (
            rf"\b(?:the|my|your) {re.escape(name)} (?:{_LINK}) (?P<value>{QUOTED}|[^,;?\n]+?)"
            r"(?=\s*(?:[,;?\n]|$|\.\s| right\b| correct\b| now\b| yes\b))"
        )
        for m in re.finditer(pattern, text, re.IGNORECASE):
            out.append((name, m.group("value").strip(), m.group("changed") is not None, m.span()))
    return out


def check_readbacks(events: list[BaseEvent], tools: dict[str, ToolSpec], labels: Iterable[str] = ()) -> list[Reason]:
    """`readback_mismatch`: a user's read-back of a change, in the offline phrasing or any other
    ("So my phone is now 555-0199, correct?", "Just to confirm, the address was changed to X?"),
    says a value the last write did not store, or says a field changed that no write changed."""
    reasons = []
    ordered = sorted(set(labels), key=len, reverse=True)
    for i, event in enumerate(events):
        if not isinstance(event, UserMessage):
            continue
        changed = _last_write(events, i, tools)
        found = [
            (m.group("label").lower(), unquote(m.group("value")), True, m.span())
            for m in READBACK_RE.finditer(event.content)
        ]
        taken = [span for *_, span in found]
        if changed is not None:  # another wording counts only once something was written
            found += [c for c in _claims(event.content, ordered) if not any(a <= c[3][0] < b for a, b in taken)]
        for field, said, claims_change, _ in found:
            said = unquote(said)
            known = changed or {}
            if field not in known:
                if not claims_change:
                    continue  # "the status is shipped?": a question about a record, not a read-back
                problem = "confirms a field no write changed"
            elif not _same(known[field], said):
                problem = f"contradicts the stored value {known[field]!r}"
            else:
                continue
            reasons.append(
                Reason(
                    code="readback_mismatch",
                    detail={"turn": event.turn, "event": i, "field": field, "said": said, "problem": problem},
                )
            )
    return reasons
