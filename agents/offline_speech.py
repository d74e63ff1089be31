"""Varied wording for the offline policies: a small seeded grammar, no text per domain.

A pattern is text with alternatives in brackets, `[Sure|Okay|Alright], [here you go|...]`,
nested freely, and `{slots}` filled after expansion. Every choice is drawn from the policy's
own seeded `random.Random`, so a session's wording is fixed by its seed and varies across
sessions. Patterns only frame what is said; the values and the structures the other side parses
(`the {label} is {value}`, a change read back with `the {label} as {value}`) stay fixed, which is
why both policies still understand each other (`offline_language.py`).
"""

from __future__ import annotations

import random
import re
from typing import Any

_ALTERNATIVES = re.compile(r"\[([^\[\]]*)\]")


def expand(rng: random.Random, pattern: str, **slots: Any) -> str:
    """One wording of `pattern`: innermost brackets first, then slots, then tidy spaces."""
    text = _tidy(choose(rng, pattern))
    return text.format(**slots) if slots else text


def choose(rng: random.Random, pattern: str) -> str:
    """The alternatives of a fragment chosen, nothing else touched (no capitals, no tidying)."""
    while (match := _ALTERNATIVES.search(pattern)) is not None:
        pattern = pattern[: match.start()] + rng.choice(match.group(1).split("|")) + pattern[match.end() :]
    return pattern


def _tidy(text: str) -> str:
    """Single spaces, none before punctuation, and a capital at the start of every sentence (done
    before the slots are filled, so a value keeps its own case)."""
    text = re.sub(r"\s+([,.?!])", r"\1", re.sub(r"\s{2,}", " ", text)).strip()
    return re.sub(r"(^|[.!?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


def as_regex(pattern: str) -> re.Pattern[str]:
    """A regex matching every wording of a pattern without slots, as `expand` tidies it (spaces
    folded, capitals free): recognises a move without enumerating its variants, which multiply."""
    out, depth = [], 0
    for part in re.split(r"(\[|\]|\|)", pattern):
        if part == "[":
            out.append("(?:")
            depth += 1
        elif part == "]":
            out.append(")")
            depth -= 1
        elif part == "|" and depth:
            out.append("|")
        else:
            out.append(r"\s*".join(re.escape(word) for word in part.split(" ")))
    return re.compile("".join(out), re.IGNORECASE)


def variants(pattern: str, limit: int = 100_000) -> set[str]:
    """Every wording of a pattern without slots (for tests that check each one is understood)."""
    match = _ALTERNATIVES.search(pattern)
    if match is None:
        return {_tidy(pattern)}
    out: set[str] = set()
    for option in match.group(1).split("|"):
        out |= variants(pattern[: match.start()] + option + pattern[match.end() :], limit)
        if len(out) > limit:
            break
    return out
