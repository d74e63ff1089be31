"""Is every concrete value the assistant states backed by something it was told?

An assistant may only state a number, id, date, email, amount or name that it has seen before
saying it: in a tool output, in a user message, or in the policy. Anything else is invented, and
an invented value in an accepted dialogue teaches a model to invent. Values match however they
are written (59.9, 59.90, $1,059.90; a date's parts; case), so an LLM's own formatting is not
mistaken for invention. Placeholders left unrendered (`${1.reason}`, `{name}`) are caught in any
message or argument.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from convosim.environments.phrasing import QUOTED, SPOKEN_DATE, render_value, spoken_value, unquote
from convosim.messages import AssistantMessage, BaseEvent, Reason, ToolCallRequest, ToolResult, UserMessage
from convosim.models import PLACEHOLDER

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
# Template slots of the other common forms: <customer_id>, [ORDER_ID], {0} / {}, %s / %(name)s, __id__.
OTHER_PLACEHOLDER = re.compile(
    r"<[a-z][a-z0-9]*(?:_[a-z0-9]+)*>|\[[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\]|\[[A-Z]{2,}\]|\{\d*\}"
    r"|%(?:\([a-z_]+\))?[sd]\b|\b__[a-z][a-z0-9_]*__\b"
)
_EDGE = "\"'“”‘’()[]<>.,;:!?*#"
_CURRENCY = "$€£¥"
_QUOTED = re.compile(QUOTED)
_MONTHS = "january february march april may june july august september october november december"
_DAYS = "monday tuesday wednesday thursday friday saturday sunday"
_UNITS = "and the of at on in per usd eur gbp dollars euros pounds"
FORMAT_WORDS = frozenset((_MONTHS + " " + _DAYS + " " + _UNITS).split()) | {m[:3] for m in _MONTHS.split()}
_HEAD = re.compile(r"[\s.,;:/-]+\S")  # where a longer value goes on past a cut
_MONTH_NUMBER = {m: i for i, m in enumerate(_MONTHS.split(), start=1)} | {
    m[:3]: i for i, m in enumerate(_MONTHS.split(), start=1)
}
# Capitalised, as months are written ("3 may apply" is not a date).
_MONTH = r"(?:" + "|".join(sorted((m.capitalize() for m in _MONTH_NUMBER), key=len, reverse=True)) + r")\.?"
# A date in any of the usual forms: 2026-05-16, May 16, 2026 / May 16th / 16 May 2026 / 16th of May.
DATE = re.compile(
    rf"\b(?P<y1>\d{{4}})-(?P<m1>\d{{1,2}})-(?P<d1>\d{{1,2}})(?!\d)"
    rf"|\b(?P<m2>{_MONTH}) (?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,? (?P<y2>\d{{4}})\b)?"
    rf"|\b(?P<d3>\d{{1,2}})(?:st|nd|rd|th)?(?: of)? (?P<m3>{_MONTH})(?:,? (?P<y3>\d{{4}})\b)?",
)
Day = tuple[int | None, int, int]


def dates_in(text: str) -> list[tuple[tuple[int, int], Day]]:
    """(span, (year or None, month, day)) of every date written in `text`, whatever its form."""
    out = []
    for m in DATE.finditer(text):
        if m.group("y1"):
            day: Day = (int(m.group("y1")), int(m.group("m1")), int(m.group("d1")))
        else:
            k = "2" if m.group("m2") else "3"
            name = m.group("m" + k).lower().rstrip(".")
            month = _MONTH_NUMBER.get(name) or _MONTH_NUMBER[name[:3]]
            year = m.group("y" + k)
            day = (int(year) if year else None, month, int(m.group("d" + k)))
        if 1 <= day[1] <= 12 and 1 <= day[2] <= 31:
            out.append((m.span(), day))
    return out


def without_dates(text: str) -> str:
    return DATE.sub(" ", text)


_WRITTEN_NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?")


def fact_told(value: Any, text: str) -> bool:
    """Was `value` stated in `text`? Numbers match however they are written (59.9, 59.90,
    $1,059.90), text case-insensitively: an LLM assistant need not echo a tool's exact spelling."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return any(abs(float(m.replace(",", "")) - float(value)) < 0.005 for m in _WRITTEN_NUMBER.findall(text))
    if value is None or value == "":  # an empty value is told by saying there is none
        return re.search(r"\b(no|none|not set|empty|n/a)\b", text, re.IGNORECASE) is not None
    return any(form.lower() in text.lower() for form in (render_value(value), spoken_value(value)))


def leaves(value: Any) -> Iterable[Any]:
    """Every scalar inside a tool output or argument mapping."""
    if isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from leaves(v)
    elif value is not None:
        yield value


def numbers_in(text: str) -> set[float]:
    """Every number written in `text`, thousands separators removed, and each run of digits on its
    own (so a date 2026-05-16 grounds 2026, 5 and 16 for a model that says 'May 16, 2026')."""
    plain = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    return {round(float(m), 2) for m in _NUMBER.findall(plain)}


def _as_number(token: str) -> float | None:
    plain = token.lstrip(_CURRENCY).replace(",", "")
    if re.fullmatch(r"-?\d+(?:\.\d+)?", plain):
        return round(abs(float(plain)), 2)
    return None


@dataclass
class Grounds:
    """What the assistant has been told so far: what people said (user messages, the policy) and
    what tools returned, each value whole."""

    texts: list[str] = field(default_factory=list)  # everything, for values written inside other text
    said: list[str] = field(default_factory=list)  # user messages and the policy
    values: set[str] = field(default_factory=set)  # whole values, casefolded
    numbers: set[float] = field(default_factory=set)
    dates: set[Day] = field(default_factory=set)

    def date_grounded(self, day: Day) -> bool:
        """A date is grounded by one told with the same month and day, and the same year when both
        name one: "May 14" is not grounded by a 14 seen anywhere, only by a date of May 14."""
        return any((m, d) == day[1:] and (y is None or day[0] is None or y == day[0]) for y, m, d in self.dates)

    def add_said(self, text: str) -> None:
        self.dates |= {d for _, d in dates_in(text)}
        self.said.append(text.casefold())
        self.texts.append(text.casefold())
        self.numbers |= numbers_in(text)
        self.values |= {unquote(q).casefold() for q in _QUOTED.findall(text)}

    def add_value(self, value: Any) -> None:
        if isinstance(value, bool):
            return
        text = str(value)
        self.dates |= {d for _, d in dates_in(text)}
        self.values.add(text.casefold())
        self.texts.append(text.casefold())
        if isinstance(value, int | float):
            self.numbers.add(round(abs(float(value)), 2))
        self.numbers |= numbers_in(text)

    def add_output(self, output: Any) -> None:
        for value in leaves(output):
            self.add_value(value)
        if isinstance(output, list):  # "I found 3 results: (1) ..., (2) ..., (3) ..."
            self.numbers |= {float(n) for n in range(len(output) + 1)}

    @staticmethod
    def _within(token: str, texts: list[str]) -> bool:
        pattern = re.compile(rf"(?<![\w@.-]){re.escape(token.casefold())}(?![\w@-]|\.\w)")
        return any(pattern.search(t) for t in texts)

    def token_grounded(self, token: str) -> bool:
        number = _as_number(token)
        if number is not None:
            return number in self.numbers
        return self._within(token, self.texts)

    def value_grounded(self, value: str) -> bool:
        """A whole value (quoted, or after `field:`): one a tool returned or a person said, never
        the head of a longer value a tool returned ("Dr" of "Dr. Ines", "555" of "555-0103")."""
        folded = unquote(value).casefold().strip()
        if not folded or folded in self.values:
            return True
        if any(v.startswith(folded) and _HEAD.match(v, len(folded)) for v in self.values):
            return False
        if self._within(folded, self.said):
            return True
        # A value in the model's own format ("May 16" of 2026-05-16, "$1,059.90"): its dates are
        # dates told, its numbers are grounded, and its words are told too or are words of a format.
        days = dates_in(unquote(value).strip())  # months are matched as written, capitalised
        if not all(self.date_grounded(day) for _, day in days):
            return False
        folded = without_dates(unquote(value).strip()).casefold()
        tokens = stated_tokens(folded)
        words = [w for w in re.findall(r"[^\W\d_]{3,}", folded) if w not in FORMAT_WORDS]
        return (
            bool(tokens or days)
            and all(self.token_grounded(t) for t in tokens)
            and all(self._within(w, self.texts) for w in words)
        )

    def goes_on(self, text: str, value: str, at: int) -> bool:
        """Does the text at `at` hold a whole known value of which `value` is only the head?"""
        head, folded = value.casefold(), text.casefold()
        return any(len(w) > len(head) and w.startswith(head) and folded.startswith(w, at) for w in self.values)


def stated_tokens(text: str) -> list[str]:
    """Tokens of a message that state a concrete value: anything with a digit, or an email."""
    out = []
    for raw in text.split():
        token = raw.strip(_EDGE)
        token = (token[:-2] if token.endswith(("'s", "’s")) else token).strip(_EDGE).lstrip(_CURRENCY)
        if token and (any(c.isdigit() for c in token) or "@" in token):
            out.append(token)
    return out


def field_values(text: str, labels: Iterable[str]) -> list[tuple[str, str, int]]:
    """(label, value, where the value starts) for every `label: value` or `the label is value` a
    message states about a known field. A bare value ends at a comma, semicolon or full stop, so it may come out cut
    ("Dr" of "Dr. Ines Tanaka"): the caller looks at what follows before calling it cut."""
    out = []
    for label in labels:
        for form in (rf"\b{re.escape(label)}: ", rf"\bthe {re.escape(label)} (?:is now|is|as|should be) "):
            pattern = form + rf"(?P<v>{QUOTED}|{SPOKEN_DATE}|[^,;\n]+?(?=[,;\n]| and the |\.(?:\s|$)|$))"
            out += [(label, m.group("v"), m.start("v")) for m in re.finditer(pattern, text, re.IGNORECASE)]
    return out


def check_grounding(events: list[BaseEvent], policy: str, labels: Iterable[str]) -> list[Reason]:
    """One `ungrounded_value` reason per assistant message that states something it was never told."""
    grounds = Grounds()
    grounds.add_said(policy)
    labels = sorted(set(labels), key=len, reverse=True)
    reasons = []
    for event in events:
        if isinstance(event, UserMessage):
            grounds.add_said(event.content)
        elif isinstance(event, ToolResult):
            for result in event.results:
                grounds.add_output(result.output)
        elif isinstance(event, AssistantMessage):
            text = event.content
            bad = [text[a:b] for (a, b), day in dates_in(text) if not grounds.date_grounded(day)]
            bad += [t for t in stated_tokens(without_dates(text)) if not grounds.token_grounded(t)]
            bad += [unquote(q) for q in _QUOTED.findall(text) if not grounds.value_grounded(q)]
            bad += [
                f"{k}: {v}"
                for k, v, at in field_values(text, labels)
                if not grounds.value_grounded(v) and not grounds.goes_on(text, v, at)
            ]
            if bad:
                reasons.append(Reason(code="ungrounded_value", detail={"turn": event.turn, "values": bad}))
    return reasons


def check_placeholders(events: list[BaseEvent]) -> list[Reason]:
    """`unresolved_placeholder` for template syntax left in any message or tool argument."""
    reasons = []
    for event in events:
        if isinstance(event, UserMessage | AssistantMessage):
            texts = [event.content]
        elif isinstance(event, ToolCallRequest):
            texts = [v for c in event.calls for v in leaves(c.arguments) if isinstance(v, str)]
        else:
            continue
        found = [m for t in texts for pattern in (PLACEHOLDER, OTHER_PLACEHOLDER) for m in pattern.findall(t)]
        if found:
            reasons.append(
                Reason(code="unresolved_placeholder", detail={"turn": event.turn, "by": event.sender, "found": found})
            )
    return reasons
