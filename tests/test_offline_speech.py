"""The offline policies' varied wording: every wording of a move is still understood by the other
side, small talk never reads as a yes, a no, a goodbye or a value, and wording is fixed per seed."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from convosim.agents import offline_language as lang
from convosim.agents import offline_user as user
from convosim.agents.offline_lexicon import remark
from convosim.agents.offline_speech import expand, variants
from convosim.environments.domain import load_domain
from convosim.environments.phrasing import REQUEST_OPENINGS, PhraseBook, iso_date, paraphrases, spoken_date
from convosim.messages import UserMessage
from convosim.rules.behaviours import session_tags

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_every_wording_of_the_assistants_moves_is_recognised() -> None:
    asks = variants(lang.ASK.replace("{label}", "order id"))
    assert len(asks) > 50
    assert all((m := lang.ASK_RE.search(a)) and m.group("label") == "order id" for a in asks)
    frames = variants(lang.CONFIRM_OPEN + ", I'll update shipping address with PAIRS. " + lang.CONFIRM_ASK)
    pairs = lang.confirm_pairs({"order_id": 1001, "shipping_address": "25 Chestnut Avenue, Lakeside"})
    for frame in frames:
        m = lang.CONFIRM_RE.search(frame.replace("PAIRS", pairs))
        assert m and m.group("action") == "update shipping address", frame
        said = lang.confirmed_values(m.group("pairs"), ["order id", "shipping address"])
        assert said == {"order id": "1001", "shipping address": '"25 Chestnut Avenue, Lakeside"'}
    assert all(lang.NOT_UNDERSTOOD_RE.search(t) for t in variants(lang.NOT_UNDERSTOOD))
    assert all(lang.CANCELLED_RE.search(t) for t in variants(lang.CANCELLED))
    assert not [t for t in variants(lang.FAREWELL) if lang.ASK_RE.search(t) or lang.CONFIRM_RE.search(t)]
    assert not [f for f in lang.FOLLOW_UPS if lang.ASK_RE.search(f)], "a follow-up must not read as asking a value"


def _said(text: str) -> UserMessage:
    return UserMessage(id="m", session_id="s", turn=1, sender="user", recipient="assistant", content=text)


def wordings(pattern: str, n: int = 3000) -> set[str]:
    """Wordings of a pattern: all of them when few, else a seeded sample large enough to draw every
    alternative of every slot (the user's moves are built from several long slots in a row)."""
    few = variants(pattern, limit=n)
    return few if len(few) <= n else {expand(random.Random(i), pattern) for i in range(n)}


def test_every_wording_of_the_users_moves_is_recognised() -> None:
    for pattern in user.AFFIRM.values():
        for text in wordings(pattern):
            assert lang.AFFIRM_RE.search(text) and not lang.DENY_RE.search(text), text
    for pattern in user.CLOSINGS.values():
        assert all(lang.CLOSING_RE.search(t) for t in wordings(pattern))
    for pattern in (lang.CORRECTION, user.CHANGE_OF_MIND):
        for text in wordings(pattern.replace("{label}", "quantity").replace("{value}", "3")):
            m = lang.CORRECTION_RE.search(text)
            assert m and m.group("label") == "quantity" and m.group("value") == "3", text
    minded = wordings(user.CHANGE_OF_MIND.replace("{label}", "quantity").replace("{value}", "3"))
    assert all(session_tags([_said(t)]) == ("change_of_mind",) for t in minded)
    for text in wordings(lang.READBACK.replace("{label}", "plan id").replace("{value}", "MAX50")):
        m = lang.READBACK_RE.search(text)
        assert m and m.group("label") == "plan id" and m.group("value") == "MAX50"
    for pattern in user.SUPPLY.values():
        for text in wordings(pattern.replace("{label}", "email").replace("{value}", "a@b.org")):
            assert (m := lang.SUPPLY_RE.search(text)) and m.group("value") == "a@b.org", text
    moods = {t for p in [*user.REACTIONS.values(), *user.GREETINGS.values(), user.ACCEPT_REFUSAL] for t in wordings(p)}
    assert len(moods) > 5000
    assert not [t for t in moods if lang.CLOSING_RE.search(t) or lang.DENY_RE.search(t) or lang.AFFIRM_RE.search(t)]


def test_small_talk_never_reads_as_a_move_or_a_value() -> None:
    rng = random.Random(5)
    said = {remark(rng) for _ in range(5000)}
    assert len(said) > 4000  # rarely repeats
    for text in said:
        assert not re.search(r"\d|@", text), text
        assert not (lang.AFFIRM_RE.search(text) or lang.DENY_RE.search(text) or lang.CLOSING_RE.search(text)), text
        assert not lang.ASK_RE.search(text) and not lang.READBACK_RE.search(text)


def test_answers_are_sentences_with_dates_in_words_and_empty_values_said() -> None:
    voice = lang.AssistantVoice(random.Random(1))
    text = voice.answer(
        "get_order",
        "read",
        {"order_id": 1001, "status": "pending", "placed_on": "2026-05-16", "note": None},
        {"order_id": 1001},
    )
    assert "order id" not in text  # the user just gave it
    assert "the status is pending" in text and "May 16, 2026" in text and "no note on file" in text
    heard = lang.heard_values(text, ["status", "placed_on"])
    assert heard == {"status": "pending", "placed_on": "May 16, 2026"}
    assert iso_date(heard["placed_on"]) == "2026-05-16" and spoken_date("2026-05-16") == "May 16, 2026"
    listed = voice.answer(
        "list_customer_orders", "read", [{"order_id": 1, "status": "shipped"}, {"order_id": 2, "status": "pending"}], {}
    )
    assert listed.count("the order id is") == 2 and "2 orders" in listed and "second," in listed


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wording_is_fixed_by_the_seed_and_varies_across_seeds(seed: int) -> None:
    pattern = lang.ASK + " " + lang.CONFIRM_ASK + " " + lang.NOT_UNDERSTOOD
    once = [expand(random.Random(seed), pattern, label="order id") for _ in range(3)]
    assert len(set(once)) == 1
    others = {expand(random.Random(s), pattern, label="order id") for s in range(50)}
    assert len(others) > 30


def test_other_openings_of_a_phrasing_keep_its_slots() -> None:
    assert paraphrases("I'd like to return order {order_id}.")[1:] == [
        "I want to return order {order_id}.",
        "I would like to return order {order_id}.",
        "I need to return order {order_id}.",
        "I'd love to return order {order_id}.",
    ]
    assert paraphrases("Order {order_id} status?") == ["Order {order_id} status?"]


def test_a_request_is_understood_however_it_opens() -> None:
    """A polite head or a question word is not part of what the parser needs: every opening the user
    may say (and others an LLM might) reads as the same call, closed as a question or a statement."""
    book = PhraseBook(load_domain(EXAMPLES / "retail").tools)
    cases = {"verb": ("list_order_items", "items"), "thing": ("get_order", "status")}
    for opens, (tool, word) in cases.items():
        phrasing = next(p for p in book.by_tool[tool] if p.opens == opens and word in p.template)
        said = [(o, end) for pattern, end in REQUEST_OPENINGS[opens] for o in variants(pattern)]
        assert len(said) > 15
        for verb in phrasing.verbs or (None,):
            for opening, end in said:
                text = f"{opening} {phrasing.render_core({'order_id': 1001}, verb)}{end}"
                assert [(p.tool, p.args) for p in book.parse(text)] == [(tool, {"order_id": 1001})], text
