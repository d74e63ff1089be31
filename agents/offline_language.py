"""The conversational conventions the offline user and offline assistant share.

Beyond the tools' own phrasings, a conversation needs a few more moves: asking for a missing
value, confirming a change, correcting, saying yes. Both offline policies speak and understand
these fixed forms, the way two people share a language; neither reads the other's state.
"""

from __future__ import annotations

import re
from typing import Any

from convosim.environments.phrasing import QUOTED, label, render_value

ASK = "Could you tell me the {label}?"
ASK_RE = re.compile(r"Could you tell me the (?P<label>[a-z0-9 ]+)\?")
CONFIRM_END = "Shall I go ahead?"
CONFIRM_RE = re.compile(r"Just to confirm, I'll (?P<action>.+?) with (?P<pairs>.+)\. Shall I go ahead\?")
NOT_UNDERSTOOD = "Sorry, I didn't quite catch that. Could you rephrase your request?"
FAREWELL = "You're welcome! Have a great day."
CANCELLED = "Okay, I won't make that change."
ERROR_PREFIX = "I'm sorry, I couldn't do that"
CORRECTION = "Sorry, the {label} should be {value}."
# Spoken values may be quoted (see `render_value`): a quoted value ends at its closing quote only.
VALUE = rf"(?P<value>{QUOTED}|.+?)"
CORRECTION_RE = re.compile(rf"the (?P<label>[a-z0-9 ]+) should be {VALUE}\.(?:\s|$)", re.IGNORECASE)
SUPPLY_RE = re.compile(rf"(?:it's|it is|the [a-z0-9 ]+ is)\s+{VALUE}\.?\s*$", re.IGNORECASE)
AFFIRM_RE = re.compile(r"\b(yes|yeah|go ahead|please do|that's right|correct)\b", re.IGNORECASE)
DENY_RE = re.compile(r"\b(no|don't|cancel|stop)\b", re.IGNORECASE)
READBACK = "Just to be sure, the {label} is now {value}, right?"
READBACK_RE = re.compile(rf"Just to be sure, the (?P<label>[a-z0-9 ]+) is now {VALUE}, right\?")
CLOSING_RE = re.compile(r"\b(that's all|that is all|nothing else|goodbye|try again later)\b", re.IGNORECASE)
FOUND = "Here is what I found"
DONE = "Done, the change is saved"
ANSWER_RE = re.compile(
    r"Here is what I found|I found \d+ results?|I found nothing|Done, the change is saved|" + re.escape(ERROR_PREFIX)
)


def pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{label(k)}: {render_value(v)}" for k, v in values.items())


def describe_row(row: dict[str, Any]) -> str:
    return pairs(row)


def answer_text(kind: str, output: Any) -> str:
    """The assistant's spoken summary of a successful tool output (one answer sentence)."""
    if isinstance(output, list):
        if not output:
            return "I found nothing matching that."
        items = "; ".join(f"({i}) {describe_row(r)}" for i, r in enumerate(output, start=1))
        noun = "result" if len(output) == 1 else "results"
        return f"I found {len(output)} {noun}: {items}."
    body = describe_row(output) if isinstance(output, dict) else render_value(output)
    return f"{DONE}: {body}." if kind == "write" else f"{FOUND}: {body}."


def error_text(message: str) -> str:
    return f"{ERROR_PREFIX}: {message.rstrip('.')}."


def heard_values(text: str, names: list[str]) -> dict[str, str]:
    """Values the assistant stated for the given field names (`field name: value`)."""
    found: dict[str, str] = {}
    for name in names:
        m = re.search(rf"\b{re.escape(label(name))}: (?P<v>{QUOTED}|[^,;]+?(?=[,;]|\.(?:\s|$)|$))", text)
        if m:
            found[name] = m.group("v").strip()
    return found
