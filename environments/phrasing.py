"""The domain's natural-language phrasings: rendering requests, and parsing them back.

A tool's phrasings ("What's the status of order {order_id}?") are public documentation, like the
language a real user and assistant share. The offline user renders them with its arguments; the
offline assistant and the validator parse text back into (tool, arguments) with slots typed by
the parameter schema. Nothing here knows about tasks or agents.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass
from datetime import date
from typing import Any

import rstr

from convosim.models import ToolSpec

EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
# A value that reads as one token needs no quotes ("a.b@c.com", "07738-306067", "2026-03-14"); any
# other text holding sentence punctuation is quoted when spoken, because the punctuation of the
# sentence around it would otherwise cut it short ("Dr. Ines Tanaka" is not "Dr").
_TOKEN = re.compile(r"[^\s.,;:!?\"“”]+(?:[.,:][^\s.,;:!?\"“”]+)*")
_PUNCTUATION = re.compile(r"[.,;:!?\"“”()]")
QUOTED = r'"[^"]*"|“[^”]*”'


def label(name: str) -> str:
    """How a parameter or output field is named in dialogue (`shipping_address` -> "shipping address")."""
    return name.replace("_", " ")


def render_value(value: Any) -> str:
    """How a value is written in dialogue text (both sides use the same spelling)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    text = str(value)
    if isinstance(value, str) and _PUNCTUATION.search(text) and not _TOKEN.fullmatch(text):
        return f"“{text}”" if '"' in text else f'"{text}"'
    return text


_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
SPOKEN_DATE = r"(?:" + "|".join(_MONTHS) + r") \d{1,2}, \d{4}"


def spoken_date(text: str) -> str | None:
    """`2026-05-16` as people say it (`May 16, 2026`); None for anything that is not an ISO date."""
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text)
    if m is None:
        return None
    try:
        day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None
    return f"{_MONTHS[day.month - 1]} {day.day}, {day.year}"


def iso_date(text: str) -> str | None:
    """`May 16, 2026` back to `2026-05-16`; None if it is not a spoken date."""
    m = re.fullmatch(r"([A-Za-z]+) (\d{1,2}), (\d{4})", text.strip())
    if m is None or m.group(1).capitalize() not in _MONTHS:
        return None
    return f"{m.group(3)}-{_MONTHS.index(m.group(1).capitalize()) + 1:02d}-{int(m.group(2)):02d}"


def spoken_value(value: Any) -> str:
    """A value as an answer says it: dates in words, anything else as `render_value` writes it."""
    text = render_value(value)
    return (spoken_date(text) or text) if isinstance(value, str) else text


def same_value(value: Any, said: str) -> bool:
    """Is `said` (as heard in dialogue, maybe quoted, maybe a spoken date) this value?"""
    said = unquote(said)
    return said.casefold() in (unquote(render_value(value)).casefold(), spoken_value(value).casefold()) or (
        isinstance(value, str) and iso_date(said) == value
    )


def unquote(raw: str) -> str:
    """A spoken value without the quotes `render_value` may have put around it."""
    raw = raw.strip()
    if len(raw) >= 2 and (raw[0], raw[-1]) in (('"', '"'), ("“", "”")):
        return raw[1:-1]
    return raw


def slot_pattern(schema: dict[str, Any]) -> str:
    """The regex a value of this parameter matches in dialogue, spoken quoted or bare."""
    if "enum" in schema:
        options = sorted((render_value(v) for v in schema["enum"]), key=len, reverse=True)
        return "|".join(re.escape(o) for o in options)
    kind = schema.get("type")
    if kind == "integer":
        return r"-?\d+"
    if kind == "number":
        return r"-?\d+(?:\.\d+)?"
    if kind == "boolean":
        return r"yes|no|true|false"
    fmt = schema.get("format")
    if fmt == "email":
        inner = EMAIL
    elif fmt == "date":
        inner = r"\d{4}-\d{2}-\d{2}"
    elif "pattern" in schema:
        inner = schema["pattern"].removeprefix("^").removesuffix("$")
    else:
        return f"{QUOTED}|.+?"  # free text: quoted when it holds punctuation, else up to the next literal
    return f'"(?:{inner})"|“(?:{inner})”|(?:{inner})'


def convert(raw: str, schema: dict[str, Any]) -> Any:
    """Turn matched text back into a value of the parameter's type."""
    raw = unquote(raw)
    if "enum" in schema:
        for option in schema["enum"]:
            if str(option).lower() == raw.lower() or render_value(option).lower() == raw.lower():
                return option
    kind = schema.get("type")
    if kind == "integer":
        return int(raw)
    if kind == "number":
        return float(raw)
    if kind == "boolean":
        return raw.lower() in ("yes", "true")
    if schema.get("format") == "date":
        return iso_date(raw) or raw.strip()  # heard as "May 16, 2026", passed on as 2026-05-16
    return raw.strip()


def slots(phrasing: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(phrasing) if name]


@dataclass(frozen=True)
class Phrasing:
    tool: ToolSpec
    template: str
    regex: re.Pattern[str]
    head: str = ""  # a polite opening ("Can you ") the parser does not need: any opening may replace it
    verbs: tuple[str, ...] = ()  # the request's first verb and the others it may be said with ("list", "show me")

    @property
    def slots(self) -> list[str]:
        return slots(self.template)

    @property
    def core(self) -> str:
        """The request without its polite opening, and without its closing punctuation."""
        return self.template[len(self.head) :].rstrip(".?!")

    def render(self, args: dict[str, Any]) -> str:
        return self.template.format(**{k: render_value(v) for k, v in args.items()})

    @property
    def opens(self) -> str:
        """What follows the head: "verb" ("list the items ..."), "thing" ("the status of ..."), or ""."""
        return "thing" if self.head in QUESTION_HEADS else "verb" if self.head else ""

    def render_core(self, args: dict[str, Any], verb: str | None = None) -> str:
        """The core, with another verb of the same meaning in place of its own when given."""
        core = self.core if verb is None or not self.verbs else verb + self.core[len(self.verbs[0]) :]
        return core.format(**{k: render_value(v) for k, v in args.items()})


@dataclass(frozen=True)
class ParsedRequest:
    tool: str
    args: dict[str, Any]
    start: int
    end: int
    template: str


def compile_phrasing(tool: ToolSpec, template: str) -> Phrasing:
    """The regex the assistant reads a request with. A polite opening (`POLITE_HEADS`) is left out
    of it, and the closing punctuation may be any, so a request is understood however it opens."""
    head = next((h for h in (*POLITE_HEADS, *QUESTION_HEADS) if template.startswith(h)), "")
    body = template[len(head) :]
    if head in QUESTION_HEADS and not body.startswith(("the ", "my ")):
        head, body = "", template  # "What's in order 5?" has no thing to ask about after its head
    verbs = _verbs(body) if head in POLITE_HEADS else ()
    parts: list[str] = ["(?:" + "|".join(template_literal(v) for v in verbs) + ")"] if verbs else []
    if verbs:
        body = body[len(verbs[0]) :]
    for literal, name, _, _ in string.Formatter().parse(body):
        named = id_noun(literal, name)
        if named is not None:  # "order 5", "order number 5" and "order ID 5" are the same request
            literal = literal[: named.start()]
        parts.append(template_literal(literal))
        if named is not None:
            parts.append(rf"{re.escape(named.group('noun'))}(?:\s+{ID_WORDS})?\s+")
        if name:
            parts.append(f"(?P<{name}>{slot_pattern(tool.properties[name])})")
    pattern = "".join(parts)
    if head and body.rstrip()[-1:] in ".?!":
        pattern = pattern[: -len(re.escape(body.rstrip()[-1]))] + "[.?!]"
    # A phrasing ends at its own punctuation followed by a space or the end of the text.
    pattern += r"(?=\s|$)" if template.rstrip()[-1:] in ".?!" else r"(?=[\s.,;!?]|$)"
    return Phrasing(tool, template, re.compile(pattern, re.IGNORECASE), head, verbs)


# How a record's id is introduced after its noun: "order 5", "order number 5", "order ID 5".
ID_WORDINGS = ("", " number", " ID")
ID_WORDS = "(?:number|ID)"


def record_noun(slot: str | None) -> str | None:
    """The noun a record's id is said after (`order` for `order_id`), or None for other slots."""
    return slot.removesuffix("_id").rsplit("_", 1)[-1] if slot and slot.endswith("_id") else None


def id_noun(literal: str, slot: str | None) -> re.Match[str] | None:
    """The record's noun right before its id slot (`order ` or `order number ` before `{order_id}`)."""
    noun = record_noun(slot)
    if noun is None:
        return None
    return re.search(rf"\b(?P<noun>{re.escape(noun)})(?: {ID_WORDS})? $", literal, re.IGNORECASE)


def id_worded(text: str, slot: str, value: Any, wording: str) -> str:
    """`text` with the record `slot` names introduced the given way (one of `ID_WORDINGS`)."""
    noun = record_noun(slot)
    if noun is None:
        return text
    said = re.escape(render_value(value))
    return re.sub(rf"\b({noun})(?: number| ID)? ({said})\b", rf"\g<1>{wording} \g<2>", text, count=1)


def _verbs(core: str) -> tuple[str, ...]:
    """The core's own first verb, then the others that mean the same (`VERBS`), or () if none."""
    for group in VERBS:
        for verb in sorted(group, key=len, reverse=True):
            if core.lower().startswith(verb + " "):
                return (core[: len(verb)], *(v for v in group if v != verb))
    return ()


def template_literal(literal: str) -> str:
    words = re.split(r"\s+", literal)
    return r"\s+".join(re.escape(w) for w in words)


# Openings of a request the domain's phrasings commonly start with: a polite head before a verb
# ("Can you list ..."), or a question about a thing ("What's the status of ..."). Only what follows
# is parsed, so the user opens a request any way it likes (`REQUEST_OPENINGS`), and an LLM user may too.
POLITE_HEADS = (
    "Could you please ",
    "Can you please ",
    "Would you please ",
    "Could you ",
    "Can you ",
    "Would you ",
    "Please ",
)
QUESTION_HEADS = ("What's ", "What is ")
# Ways to open a request after such a head, by what follows it (a verb, or a thing asked about),
# each with the punctuation that closes it: a question, or a statement.
REQUEST_OPENINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "verb": (
        (
            "[[Could|Can|Would] you [please|possibly|kindly|]|[Is there any chance|Do you think] you could"
            "|[Would|Might] you be able to|Are you able to|Any chance you could|Could I ask you to"
            "|Would it be possible to|Would you be so kind as to|Is it possible to|Could you quickly]",
            "?",
        ),
        (
            "[Please|I'd like you to|I need you to|I'd appreciate it if you could|It would be great if you could"
            "|When you have a moment, please|Kindly|I'd be grateful if you could|I'm hoping you can"
            "|I was wondering if you could|If possible, please|If it's no trouble, please|Help me out and]",
            ".",
        ),
    ),
    "thing": (
        (
            "[What's|What is|Can you tell me|Could you tell me|Do you know|Could you check|Can you look up"
            "|Would you check|Could you find out|Can I ask]",
            "?",
        ),
        (
            "[I'd like to know|Please tell me|Please check|I need to know|I'm asking about|Let me know"
            "|I'm trying to find out|I want to check|I'm curious about]",
            ".",
        ),
    ),
}
# Verbs a request may start with after its polite opening, each with others of the same meaning
# for the same request: "Could you list the items of order 5?" is also "...show me the items...".
VERBS: tuple[tuple[str, ...], ...] = (
    ("list", "show me", "go through", "give me"),
    ("show me", "list", "let me see", "give me"),
    ("check", "look at", "take a look at", "look into", "have a look at"),
    ("pull up", "bring up", "look up", "find", "open up"),
    ("look up", "find", "pull up", "search for", "track down"),
    ("find", "look up", "locate", "track down"),
    ("change", "update", "amend", "modify"),
    ("update", "change", "amend", "correct"),
    ("start", "open", "begin", "set up"),
    ("open", "start", "set up"),
    ("switch", "move"),
    ("pay", "settle", "clear"),
    ("settle", "pay", "clear"),
    ("turn", "switch"),
)
# How people open other requests in other words. A phrasing that starts with the left side is also
# understood (and said) with each right side, so a domain's two or three phrasings per tool become
# a dozen without any text written for the domain.
OPENINGS: dict[str, tuple[str, ...]] = {
    "I'd like to ": ("I want to ", "I would like to ", "I need to ", "I'd love to "),
    "I want to ": ("I'd like to ", "I need to ", "I would like to "),
    "Tell me ": ("Can you tell me ", "I'd like to know ", "Could you tell me ", "I'd love to hear "),
    "How much ": ("Can you tell me how much ", "Do you know how much "),
}  # no "What ..." / "Is ..." heads: an indirect question would need its verb moved


def paraphrases(template: str) -> list[str]:
    """The template and its other openings (`OPENINGS`)."""
    for head, others in OPENINGS.items():
        if template.startswith(head):
            return [template] + [other + template[len(head) :] for other in others]
    return [template]


def vague_template(template: str, tool: ToolSpec) -> str | None:
    """The phrasing with its first required record id left unsaid: "order {order_id}" becomes "my
    order" (the slot's name must contain the noun before it). None when no slot reads that way."""
    for name in tool.required:
        if not name.endswith(("_id", "number", "_code")):
            continue  # only a record's identifier is left for the assistant to ask, never a choice
        m = re.search(rf"\b(?:(?:the|my|a|your) )?(?P<noun>[A-Za-z]+)(?P<sep>,? )\{{{name}\}}", template)
        if m and m.group("noun").lower() in name.split("_") and m.group("noun").lower() != "id":
            said = f"my {m.group('noun').lower()}"
            return template[: m.start()] + said + template[m.end() :]
    return None


class PhraseBook:
    """All phrasings of a domain (and their other openings); parses free text into its requests."""

    def __init__(self, tools: dict[str, ToolSpec]) -> None:
        self.tools = tools
        self.phrasings = [compile_phrasing(t, v) for t in tools.values() for p in t.phrasings for v in paraphrases(p)]
        self.phrasings += self._vague_phrasings()
        self.by_tool: dict[str, list[Phrasing]] = {}
        for ph in self.phrasings:
            self.by_tool.setdefault(ph.tool.name, []).append(ph)

    def _vague_phrasings(self) -> list[Phrasing]:
        """Each request also said without the record's id ("the status of my order"), which makes
        the assistant ask for it. Kept only when the text still names one tool unambiguously."""
        out: list[Phrasing] = []
        for tool in self.tools.values():
            for template in tool.phrasings:
                vague = vague_template(template, tool)
                if vague is None:
                    continue
                text = vague.format(**{n: render_value(sample_value(tool.properties[n])) for n in slots(vague)})
                if self.parse(text) or any(o.template == vague for o in out):
                    continue  # another phrasing already reads this text: it would be ambiguous
                out.append(compile_phrasing(tool, vague))
        return out

    def parse(self, text: str) -> list[ParsedRequest]:
        """Non-overlapping requests in `text`, longest match first, in text order."""
        candidates: list[ParsedRequest] = []
        for ph in self.phrasings:
            for m in ph.regex.finditer(text):
                args = {k: convert(v, ph.tool.properties[k]) for k, v in m.groupdict().items() if v is not None}
                candidates.append(ParsedRequest(ph.tool.name, args, m.start(), m.end(), ph.template))
        # the longest reading first; of two over the same words, the one whose slots explain more of them
        candidates.sort(key=lambda c: (-(c.end - c.start), -len(c.args), c.start))
        chosen: list[ParsedRequest] = []
        for c in candidates:
            if all(c.end <= o.start or c.start >= o.end for o in chosen):
                chosen.append(c)
        return sorted(chosen, key=lambda c: c.start)

    def ambiguities(self) -> list[str]:
        """Phrasings whose rendering with sample values does not parse back to the same call."""
        problems = []
        for ph in self.phrasings:
            args = {name: sample_value(ph.tool.properties[name]) for name in ph.slots}
            for text in [ph.render(args), *(f"{ph.head}{ph.render_core(args, v)}." for v in ph.verbs[1:])]:
                parsed = self.parse(text)
                if len(parsed) != 1 or parsed[0].tool != ph.tool.name or parsed[0].args != args:
                    got = ", ".join(f"{p.tool}{p.args}" for p in parsed) or "nothing"
                    problems.append(f"{ph.tool.name}: {ph.template!r} renders as {text!r}, which parses as {got}")
        return problems


def _bounded(pattern: str, most: int = 8) -> str:
    """The pattern with `+` and `*` (outside character classes) capped at `most` repeats, so a
    generated value reads like one ("ABC12", not a hundred letters)."""
    out, in_class, escaped = [], False, False
    for char in pattern:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            out.append(char)
            escaped = True
        elif char == "[":
            in_class = True
            out.append(char)
        elif char == "]":
            in_class = False
            out.append(char)
        elif char in "+*" and not in_class and out and out[-1] not in "{(|":
            out.append(f"{{{1 if char == '+' else 0},{most}}}")
        else:
            out.append(char)
    return "".join(out)


def matching(pattern: str, rng: random.Random) -> str | None:
    """A string the pattern matches, drawn with `rng` (rstr), or None if it cannot make one."""
    try:
        text = rstr.Rstr(rng).xeger(_bounded(pattern))
    except (re.error, ValueError, IndexError, TypeError):
        return None
    return text if re.search(pattern, text) else None


def sample_value(schema: dict[str, Any]) -> Any:
    if schema.get("examples"):
        return schema["examples"][0]
    if "pattern" in schema:  # a value the pattern matches, the same every time
        made = matching(schema["pattern"], random.Random(0))
        if made is not None:
            return made
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind in ("integer", "number"):  # within the schema's bounds
        low, high = schema.get("minimum", -(10**9)), schema.get("maximum", 10**9)
        sample = min(max(4217 if kind == "integer" else 42.5, low), high)
        return int(sample) if kind == "integer" else float(sample)
    if kind == "boolean":
        return True
    if schema.get("format") == "email":
        return "sam.sample@example.com"
    if schema.get("format") == "date":
        return "2026-03-14"
    return "Sample Value 9"
