"""What people say around their requests: the offline user's small talk, from open word lists.

Real customers give reasons, mention their plans and complain about their week; a model trained
only on bare requests learns users who never do. The words are domain-neutral: our own lists
(`lexicon.yaml`) for the everyday things a remark is about, and Faker's data for the open classes
(first names, jobs, countries, real places, languages), read as plain lists and drawn with the
policy's own seeded generator, so a session's remarks are fixed by its seed (Faker is pinned in the
lock). Nothing spoken here holds a number, an email, or a word the assistant reads as a yes, a no
or a goodbye, so the assistant may ignore it, as it should. Several slots in a row are drawn from
long lists, so remarks rarely repeat: that is what keeps a run's user text from collapsing onto a
few word pairs.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from functools import cache
from importlib import resources

import yaml
from faker.providers.address.en_GB import Provider as BritishAddress
from faker.providers.address.en_US import Provider as Address
from faker.providers.geo import Provider as Geo
from faker.providers.job.en_US import Provider as Jobs
from faker.providers.person.en_GB import Provider as BritishPerson
from faker.providers.person.en_IE import Provider as IrishPerson
from faker.providers.person.en_US import Provider as AmericanPerson

from convosim.agents.offline_speech import choose

# Words the other side reads as a move: a remark holding one would be misread.
_MOVE_WORDS = re.compile(
    r"\b(yes|yeah|yep|sure|correct|no|none|not|don't|cancel|stop|goodbye|bye|right|wrong|should|order|account"
    r"|number|status|email)\b",
    re.IGNORECASE,
)
_STATELY = re.compile(r"\(|\bof\b|\band\b|Republic|Federation|Islands?\b|Territor|States|Kingdom|Emirates")
_SPEAKABLE = re.compile(r"[A-Za-z][A-Za-z '\-]*[A-Za-z]")


def _speakable(words: Iterable[str]) -> list[str]:
    """Entries that read as plain words (no digits, brackets or commas) and hold no move word."""
    return sorted({w for w in words if _SPEAKABLE.fullmatch(w) and not _MOVE_WORDS.search(w)})


@cache
def lexicon() -> dict[str, list[str]]:
    data: dict[str, list[str]] = yaml.safe_load(
        resources.files("convosim.agents").joinpath("lexicon.yaml").read_text(encoding="utf-8")
    )
    people = (AmericanPerson, BritishPerson, IrishPerson)
    data["he"] = _speakable(n for p in people for n in p.first_names_male)
    data["she"] = _speakable(n for p in people for n in p.first_names_female)
    data["names"] = sorted({*data["names"], *data["he"], *data["she"]})
    data["surnames"] = _speakable([*AmericanPerson.last_names, *BritishPerson.last_names])
    data["jobs"] = [j.lower() if j.split(" ", 1)[0].istitle() else j for j in _speakable(Jobs.jobs)]
    data["countries"] = _speakable(c for c in Address.countries if not _STATELY.search(c))
    data["towns"] = _speakable(str(row[2]) for row in Geo.land_coords)
    data["counties"] = _speakable(BritishAddress.counties)
    return data


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]  # "my boss Freya" -> "My boss Freya" (str.capitalize lowers the rest)


def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


class _Words:
    """Draws from the lexicon with one seeded generator: the slots remarks are built from."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.w = lexicon()

    def pick(self, kind: str) -> str:
        return self.rng.choice(self.w[kind])

    def expand(self, text: str) -> str:
        return choose(self.rng, text)

    def when(self) -> str:
        return self.expand(
            self.rng.choice(
                [
                    self.pick("when"),
                    f"[on|this|next|this coming] {self.pick('weekdays')}[| morning| afternoon| evening| night]",
                    f"[in|early in|late in|at the start of|by the end of|sometime in] {self.pick('months')}",
                ]
            )
        )

    def person(self) -> str:
        """A relation and a first name that fit it ("my aunt Rosa", "my colleague Sam")."""
        relation = self.pick("relations")
        male, female = self.w["male_relations"], self.w["female_relations"]
        return f"my {relation} {self.pick('he' if relation in male else 'she' if relation in female else 'names')}"

    def place(self) -> str:
        return self.rng.choice([self.pick("cities"), self.pick("towns"), self.pick("countries"), self.pick("counties")])

    def pet(self) -> str:  # pets are often named like people
        return self.pick("pet_names") if self.rng.random() < 0.4 else self.pick("names")

    def thing(self) -> str:
        return _a(f"{self.pick('adjectives')} {self.pick('nouns')}")


def sign_off(rng: random.Random) -> str:
    """What a chatty customer adds when leaving: where they are off to, what comes next."""
    t = _Words(rng)
    who = t.person()
    endings: list[Callable[[], str]] = [
        lambda: t.expand(f"[Now|Right], back to {t.pick('activities')} with {who}."),
        lambda: t.expand(f"I'm off to {t.place()} [now|shortly|in a bit] to see {who}."),
        lambda: t.expand(f"{_first_upper(who)} will be [pleased|relieved|happy to hear it]."),
        lambda: t.expand(f"Time to get ready for {who}'s {t.pick('occasions')} {t.when()}."),
        lambda: t.expand(f"[Now I can|Time to] get back to {t.pick('hobbies')} with {who}."),
        lambda: t.expand(f"I'll tell {who} it's sorted before the trip to {t.place()}."),
    ]
    return rng.choice(endings)()


def remark(rng: random.Random) -> str:
    """One remark: a reason, a plan, or how the week is going."""
    t = _Words(rng)
    pick, when, expand, person, pet, thing = t.pick, t.when, t.expand, t.person, t.pet, t.thing
    who, other = person(), person()
    where, there = t.place(), t.place()
    templates: list[Callable[[], str]] = [
        lambda: f"It's for {who}'s {pick('occasions')} {when()}.",
        lambda: f"I'm {pick('travel')} to {where} {when()} to see {who}.",
        lambda: f"{_first_upper(who)} is coming over {when()} for the {pick('occasions')}.",
        lambda: f"I've been {pick('feelings')} with {pick('activities')} since {who} went to {where}.",
        lambda: f"{pick('openers')} I hoped this would be {pick('hopes')} than when {who} tried.",
        lambda: f"{_first_upper(who)} recommended you, by the way.",
        lambda: f"We're off to {pick('places')} near {where} with {who} {when()}.",
        lambda: f"I'm sorting out {pick('things')} with {who} {when()} as well.",
        lambda: f"{_first_upper(who)} and I are planning {pick('things')} {when()}.",
        lambda: f"I only just got back from {where} with {who}, and now it's {pick('activities')}.",
        lambda: f"Sorry if I'm slow, I'm juggling {pick('activities')} and {who}'s {pick('occasions')}.",
        lambda: f"{_first_upper(who)} will be {pick('feelings')} if this isn't sorted {when()}.",
        lambda: f"I'm also fixing the {pick('adjectives')} {pick('nouns')} {when()}.",
        lambda: f"Our {pick('pets')} {pet()} knocked over {who}'s {pick('adjectives')} {pick('nouns')}.",
        lambda: expand(f"I have {pick('hobbies')} with {who} {when()}, so I'm [rushing|in a hurry|a bit pressed]."),
        lambda: f"{_first_upper(who)} lent me {_a(pick('adjectives'))} {pick('nouns')} for the trip to {where}.",
        lambda: f"After {pick('hobbies')} {when()} I'm driving {who} to {where}.",
        lambda: f"My {pick('pets')} {pet()} has been {pick('feelings')} since {who}'s {pick('occasions')}.",
        lambda: (
            f"We're swapping {who}'s {pick('adjectives')} {pick('nouns')} for {_a(pick('adjectives'))} one {when()}."
        ),
        lambda: f"{_first_upper(who)} took up {pick('hobbies')} after moving to {where}.",
        lambda: expand(f"{_first_upper(who)} [is starting|starts|begins] as {_a(pick('jobs'))} {when()}."),
        lambda: expand(f"{_first_upper(who)} [just started|has just started|is new] as {_a(pick('jobs'))} in {where}."),
        lambda: expand(
            f"I work as {_a(pick('jobs'))} in {where}, so [my days are long|I'm short on time|evenings suit me best]."
        ),
        lambda: expand(f"{_first_upper(who)} is [learning|brushing up on|teaching me] {pick('languages')} {when()}."),
        lambda: expand(f"[We're moving|I'm moving|My family is moving] to {where} {when()}."),
        lambda: expand(f"I'm [writing this|typing this|on my phone] from {where}, [so bear with me|sorry for typos]."),
        lambda: f"{_first_upper(who)}, who works as {_a(pick('jobs'))}, asked me to sort this out.",
        lambda: expand(f"[Greetings|Hello again] from {where}, where it's [raining|sunny|freezing|windy|lovely]."),
        lambda: expand(f"I'm [hosting|visiting|meeting] {who} and {person()} {when()}."),
        lambda: f"My {pick('relations')} is flying in from {pick('countries')} {when()}.",
        lambda: expand(
            f"We [spent|had] [a week|a weekend|a few days] in {where} with {who} "
            "and it was [lovely|wonderful|exhausting|great fun|far too short]."
        ),
        lambda: f"{_first_upper(who)} says hello from {where}.",
        lambda: f"{_first_upper(who)} and {other} are visiting from {where} {when()}.",
        lambda: f"I'm squeezing this in between {pick('hobbies')} with {who} and {pick('activities')}.",
        lambda: f"{_first_upper(who)} just got back from {where} and {other} is off to {there} {when()}.",
        lambda: expand(f"[Our|My] {pick('pets')} {pet()} is staying with {who} in {where} {when()}."),
        lambda: f"{_first_upper(who)}, {other} and I are doing {pick('hobbies')} in {where} {when()}.",
        lambda: f"I'm learning {pick('languages')} for a trip to {pick('countries')} {when()}.",
        lambda: f"{_first_upper(who)}, {_a(pick('jobs'))} in {where}, swears by you.",
        lambda: expand(f"Since {who} moved to {where}, I've been [rather|a bit|quite] {pick('feelings')}."),
        lambda: expand(f"I'm [picking up|collecting|dropping off] {thing()} for {who} in {where} {when()}."),
        lambda: expand(
            f"The {pick('surnames')} family from [next door|down the road|across the street|upstairs]"
            " told me about you."
        ),
        lambda: f"{_first_upper(who)} is {pick('travel')} to {where} for {other}'s {pick('occasions')} {when()}.",
        lambda: expand(
            f"[It's been a long week|What a week|It's been hectic]: {pick('activities')}, {pick('hobbies')}"
            f" and {who}'s {pick('occasions')}."
        ),
        lambda: f"{_first_upper(who)} wants {thing()} for the {pick('occasions')} {when()}.",
    ]
    return rng.choice(templates)()
