"""What people say around their requests: the offline user's small talk, from open word lists.

Real customers give reasons, mention their plans and complain about their week; a model trained
only on bare requests learns users who never do. The words (`lexicon.yaml`) are domain-neutral:
no numbers, no emails, none of the words the assistant reads as a yes, a no or a goodbye, so the
assistant may ignore them, as it should. Several slots in a row are drawn from long lists, so
remarks rarely repeat: that is what keeps a run's user text from collapsing onto a few word pairs.
"""

from __future__ import annotations

import random
from functools import cache
from importlib import resources

import yaml


@cache
def lexicon() -> dict[str, list[str]]:
    data: dict[str, list[str]] = yaml.safe_load(
        resources.files("convosim.agents").joinpath("lexicon.yaml").read_text(encoding="utf-8")
    )
    return data


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]  # "my boss Freya" -> "My boss Freya" (str.capitalize lowers the rest)


def remark(rng: random.Random) -> str:
    """One remark: a reason, a plan, or how the week is going."""
    w = lexicon()

    def pick(kind: str) -> str:
        return rng.choice(w[kind])

    who = f"my {pick('relations')} {pick('names')}"
    when, city = pick("when"), pick("cities")
    templates = [
        f"It's for {who}'s {pick('occasions')} {when}.",
        f"I'm {pick('travel')} to {city} {when} to see {who}.",
        f"{_first_upper(who)} is coming over {when} for the {pick('occasions')}.",
        f"I've been {pick('feelings')} with {pick('activities')} {when}.",
        f"{pick('openers')} I hoped this would be {pick('hopes')} than when {who} tried.",
        f"{_first_upper(who)} recommended you, by the way.",
        f"We're off to {pick('places')} near {city} {when}.",
        f"I'm sorting out {pick('things')} {when} as well.",
        f"{_first_upper(who)} and I are planning {pick('things')} {when}.",
        f"I only just got back from {city} after {pick('activities')}.",
        f"Sorry if I'm slow, I'm juggling {pick('activities')} and {pick('things')}.",
        f"{_first_upper(who)} will be {pick('feelings')} if this isn't sorted {when}.",
        f"I'm also fixing the {pick('adjectives')} {pick('nouns')} {when}.",
        f"Our {pick('pets')} {pick('pet_names')} knocked over the {pick('adjectives')} {pick('nouns')} {when}.",
        f"I have {pick('hobbies')} with {who} {when}, so I'm in a bit of a rush.",
        f"{_first_upper(who)} lent me a {pick('adjectives')} {pick('nouns')} for {city}.",
        f"After {pick('hobbies')} {when} I'm driving {who} to {city}.",
        f"My {pick('pets')} {pick('pet_names')} has been {pick('feelings')} since the {pick('occasions')}.",
        f"We're swapping the {pick('adjectives')} {pick('nouns')} for a {pick('adjectives')} one {when}.",
        f"{_first_upper(who)} took up {pick('hobbies')} in {city} {when}.",
    ]
    return rng.choice(templates)
