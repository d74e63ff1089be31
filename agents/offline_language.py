"""The conversational conventions the offline user and offline assistant share.

Beyond the tools' own phrasings, a conversation needs a few more moves: asking for a missing
value, confirming a change, answering, correcting, saying yes. Each move is worded from a seeded
grammar (`offline_speech.py`), so no two sessions sound alike, but it keeps one fixed core the
other side recognises, the way two people share a language; neither reads the other's state:

- an answer states each field as `the {label} is {value}` (`is now` after a change);
- a change is read back as `I'll {action} with the {label} as {value} and ...`, then a question;
- a request for a value contains `the {label}` and ends with a question mark;
- a correction says `the {label} should be {value}.`; a read-back `the {label} is now {value}, right?`.
"""

from __future__ import annotations

import random
import re
from typing import Any

from convosim.agents.offline_speech import expand
from convosim.environments.phrasing import QUOTED, SPOKEN_DATE, label, render_value, spoken_value

# Spoken values may be quoted (see `render_value`): a quoted value ends at its closing quote only.
VALUE = rf"(?P<value>{QUOTED}|.+?)"
# A value stated in an answer ends at a comma, a semicolon, "and the", or a full stop.
STATED = rf"(?:{QUOTED}|{SPOKEN_DATE}|[^,;\n]+?(?=,|;|\n| and the |\.(?:\s|$)|$))"

# --- the assistant's moves, and how the user recognises them ------------------------------------
ASK = (
    "[|Sure. |Okay. |Of course. |Happy to help with that. |I can do that. |Certainly. ]"
    "[Could you tell me|Can you give me|What's|What is|May I have|Could I get|Can I have] the {label}"
    "[|, please| first|, please, first]?"
)
ASK_RE = re.compile(
    r"(?:tell me|give me|What's|What is|have|get) the (?P<label>[a-z0-9 ]+?)(?:, please)?(?:,? first)?\?"
)
INVALID = "[Sorry|Hmm|I'm sorry], that doesn't look like a valid {label}."
CONFIRM_OPEN = (
    "[Just to confirm|To be sure|Let me check I have this right|Before I go ahead|So, to recap|Just so we're clear]"
)
CONFIRM_ASK = (
    "[Shall I go ahead|Is that right|Should I go ahead|Do you want me to proceed|Is that okay"
    "|Can I go ahead with that|Does that sound right|Shall I do that]?"
)
CONFIRM_RE = re.compile(
    r"I'll (?P<action>[a-z0-9 ]+?) with (?P<pairs>.+)\. (?:Shall I go ahead|Is that right|Should I go ahead"
    r"|Do you want me to proceed|Is that okay|Can I go ahead with that|Does that sound right|Shall I do that)\?"
)
NOT_UNDERSTOOD = (
    "[Sorry|I'm sorry|Apologies], I [didn't quite catch that|didn't understand that|'m not sure what you mean]."
    " Could you [rephrase that|say that another way|put it differently][, please|]?"
)
NOT_UNDERSTOOD_RE = re.compile(r"didn't quite catch that|didn't understand that|'m not sure what you mean")
FAREWELL = (
    "[You're welcome|My pleasure|Glad I could help|Happy to help|Anytime][!|.] "
    "[Have a great day|Take care|Have a nice day|Goodbye|All the best|Have a good one][!|.]"
)
CANCELLED = "[Okay|Alright|Understood|Sure], I [won't make that change|'ll leave it as it is|haven't changed anything]."
CANCELLED_RE = re.compile(r"won't make that change|'ll leave it as it is|haven't changed anything")
ERROR_RE = re.compile(r"I couldn't do that")
REFUSED_RE = re.compile(r"I can't do that")  # a change the policy forbids, declined before any attempt
NOT_DONE_RE = re.compile(r"wasn't able to complete that")  # the assistant ran out of tool calls this turn
FOLLOW_UPS = [
    "Is there anything else I can help you with?",
    "Anything else I can do for you?",
    "Can I help with anything else?",
    "What else can I do for you?",
    "Is there something else you need?",
    "Anything else today?",
    "Do you need anything else?",
    "Is that everything for now?",
    "Let me know if there's anything else.",
    "What else would you like to check?",
    "Is there more I can help with?",
    "Anything further I can help with?",
    "Would you like help with anything else?",
    "Just let me know what's next.",
    "Happy to help with anything else.",
    "What would you like to do next?",
    "Is there anything more you'd like to know?",
    "Anything else on your mind?",
]
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"]


def confirm_pairs(args: dict[str, Any]) -> str:
    return joined([f"the {label(k)} as {render_value(v)}" for k, v in args.items()])


def confirmed_values(pairs: str, labels: list[str]) -> dict[str, str]:
    """label -> value as read back in a confirmation's `the {label} as {value}` list."""
    found = {}
    for name in sorted(labels, key=len, reverse=True):
        m = re.search(rf"\bthe {re.escape(name)} as (?P<v>{QUOTED}|[^,]+?(?=, the | and the |$))", pairs)
        if m:
            found[name] = m.group("v").strip()
    return found


def joined(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _stated(row: dict[str, Any], skip: dict[str, Any], now: bool = False) -> str:
    verb = "is now" if now else "is"
    parts = []
    for name, value in row.items():
        if name in skip and skip[name] == value:
            continue  # the user just told us this: saying it back adds nothing
        if value is None or value == "":
            parts.append(f"there is no {label(name)} on file")
        else:
            parts.append(f"the {label(name)} {verb} {spoken_value(value)}")
    return joined(parts) if parts else "that's all I have on it"


def _record(name: str) -> str | None:
    """How a record's key is said before its value (`order` for order_id), None for other fields."""
    return name.removesuffix("_id").replace("_", " ") if name.endswith("_id") or name == "phone_number" else None


def _ordinal(i: int) -> str:
    return ORDINALS[i] if i < len(ORDINALS) else f"number {i + 1}"


def _noun(tool_name: str, n: int) -> str:
    last = tool_name.rsplit("_", 1)[-1]
    if last.endswith("s") and not last.endswith("ss"):
        return last if n != 1 else last[:-1]
    return "results" if n != 1 else "result"


class AssistantVoice:
    """How the offline assistant words its moves, drawn from its own seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def ask(self, name: str) -> str:
        return expand(self.rng, ASK, label=label(name))

    def invalid(self, name: str) -> str:
        return expand(self.rng, INVALID, label=label(name)) + " " + self.ask(name)

    def confirm(self, action: str, args: dict[str, Any]) -> str:
        opening = expand(self.rng, CONFIRM_OPEN)
        return f"{opening}, I'll {label(action)} with {confirm_pairs(args)}. {expand(self.rng, CONFIRM_ASK)}"

    def answer(self, tool_name: str, kind: str, output: Any, args: dict[str, Any]) -> str:
        """A successful tool output in sentences: only what the user did not just say (for a write,
        `args` are the record's keys: whatever else it returns is what changed), dates in words."""
        if isinstance(output, list):
            noun = _noun(tool_name, len(output))
            if not output:
                return expand(self.rng, "[I didn't find any|There are no|I found no] matching {noun}.", noun=noun)
            rows = [
                f"{_ordinal(i)}, {_stated(r, args) if isinstance(r, dict) else render_value(r)}"
                for i, r in enumerate(output)
            ]
            are = "There is" if len(output) == 1 else "There are"
            head = expand(self.rng, "[I found|{are}|I can see|You have] {n} {noun}", n=len(output), noun=noun, are=are)
            return f"{head}: " + "; ".join(rows) + "."
        if kind == "write":  # "is now" for what changed; the record's own key, which the user gave, goes unsaid
            body = _stated(output, args, now=True) if isinstance(output, dict) else render_value(output)
            opening = expand(self.rng, "[Done|All set|That's done|Okay, that's done|The change is saved|Updated]")
            return f"{opening}: {body}."
        body = _stated(output, args) if isinstance(output, dict) else render_value(output)
        opening = expand(
            self.rng,
            "[Here's what I found:|I've found it:|I found it, and|Okay,|Sure,|Let me see...|According to our records,"
            "|I've looked that up:|I checked, and|Right,|Thanks for waiting:|Got it:]",
        )
        return f"{opening} {body}."

    def error(self, message: str, args: dict[str, Any]) -> str:
        """A tool error in plain words: what it means for the user, never the database's message."""
        opening = expand(self.rng, "[I'm sorry|Unfortunately|I'm afraid|Sorry]")
        plain = self._plain_error(message, args)
        plain = plain if plain.startswith(("I ", "I'")) else plain[:1].lower() + plain[1:]
        return f"{opening}, I couldn't do that: {plain}"

    def _plain_error(self, message: str, args: dict[str, Any]) -> str:
        named = joined([f"{_record(k)} {render_value(v)}" for k, v in args.items() if _record(k)]) if args else ""
        if "no matching record found" in message or message.startswith("unknown"):
            return expand(
                self.rng,
                "[I can't find|there's no|I have no record of] {what} [in our system|on file|here].",
                what=named or "a matching record",
            )
        if "nothing was changed" in message:
            return expand(
                self.rng,
                "{what} [isn't in a state that allows this change|can't be changed that way right now].",
                what=(f"{named[0].upper()}{named[1:]}" if named else "That record"),
            )
        return expand(self.rng, "the system [didn't accept|turned down] [those details|that request].")

    def refuse(self, args: dict[str, Any], field: str, value: Any, reason: str) -> str:
        """A change the policy forbids, declined with the policy's reason and what the record shows."""
        named = joined([f"{_record(k)} {render_value(v)}" for k, v in args.items() if _record(k)])
        return expand(
            self.rng,
            "[I'm sorry|I'm afraid|Unfortunately|Sorry], I can't do that[ for {what}|]: "
            "[its {field} is {value}|it's {value}|the {field} shows {value}][,|;] and {reason}.",
            what=named or "that record",
            field=label(field),
            value=spoken_value(value),
            reason=reason.rstrip("."),
        )

    def follow_up(self) -> str | None:
        return None if self.rng.random() < 0.3 else self.rng.choice(FOLLOW_UPS)

    def not_understood(self) -> str:
        return expand(self.rng, NOT_UNDERSTOOD)

    def farewell(self) -> str:
        return expand(self.rng, FAREWELL)

    def cancelled(self) -> str:
        return expand(self.rng, CANCELLED)

    def readback_ok(self, field_label: str, value: str) -> str:
        confirmed = "[Yes|That's right|Correct|Yes, that's correct|Exactly][,|:] the {label} is {value}."
        return expand(self.rng, confirmed, label=field_label, value=value)

    def readback_wrong(self, field_label: str, actual: Any) -> str:
        return (
            expand(self.rng, "[Actually|Not quite|Hmm, no], ")
            + f"my records show the {field_label} is {spoken_value(actual)}."
        )

    def readback_unknown(self, field_label: str) -> str:
        return expand(
            self.rng,
            "[I'm sorry|Sorry|Hmm], I don't have a {label} on record from this conversation.",
            label=field_label,
        )


# --- the user's moves, and how the assistant recognises them -------------------------------------
CORRECTION = (
    "[Sorry|Oops|Wait|Hmm, no|Actually|Whoops|Ah, my mistake|Hold on|Oh dear|Sorry, I misspoke|Let me correct that"
    "|Oh, I mixed that up|My apologies][,|:] the {label} should be {value}."
)
CORRECTION_RE = re.compile(rf"the (?P<label>[a-z0-9 ]+) should be {VALUE}\.(?:\s|$)", re.IGNORECASE)
SUPPLY_RE = re.compile(rf"(?:it's|it is|the [a-z0-9 ]+ is)\s+{VALUE}\.?\s*$", re.IGNORECASE)
AFFIRM_RE = re.compile(r"\b(yes|yeah|yep|go ahead|please do|that's right|correct|sure)\b", re.IGNORECASE)
DENY_RE = re.compile(r"\b(no|don't|cancel|stop)\b", re.IGNORECASE)
READBACK = (
    "[Just to be sure|Just to double-check|Sorry, just checking|One more check|Quick check|Before we move on"
    "|For my records|So|Hang on|Just so I'm clear|Let me get this straight|To be on the safe side"
    "|Sorry to ask again], the {label} is now {value}, right?"
)
READBACK_RE = re.compile(rf"\bthe (?P<label>[a-z0-9 ]+?) is now {VALUE}, right\?", re.IGNORECASE)
CLOSING_RE = re.compile(
    r"\b(that's all|that is all|nothing else|goodbye|try again later|that's everything|that covers it|i'm all set"
    r"|that's it for (?:now|today))\b",
    re.IGNORECASE,
)


def heard_values(text: str, names: list[str]) -> dict[str, str]:
    """Values the assistant stated for the given field names (`the field is value`, or `field: value`)."""
    found: dict[str, str] = {}
    for name in names:
        lab = re.escape(label(name))
        m = re.search(rf"\bthe {lab} is (?:now )?(?P<v>{STATED})", text) or re.search(
            rf"\b{lab}: (?P<v>{STATED})", text
        )
        if m:
            found[name] = m.group("v").strip()
    return found
