"""How varied a run's dialogue is: the numbers `stats` prints and `benchmarks/dialogue_quality.py` checks.

Counted over accepted sessions' text: distinct assistant (and user) messages over all of them;
distinct word 2-grams of user text over all of them; and the most repeated assistant sentence, as
the share of assistant messages it appears in. A templated policy scores low on all four: that is
what a model fine-tuned on the data would learn to repeat.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from convosim.messages import AssistantMessage, BaseEvent, UserMessage

_WORD = re.compile(r"[\w'’@.-]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


@dataclass
class Diversity:
    """Running counts; constant memory but for the sets of distinct texts and 2-grams."""

    assistant: Counter[str] = field(default_factory=Counter)
    user: Counter[str] = field(default_factory=Counter)
    user_bigrams: set[tuple[str, str]] = field(default_factory=set)
    user_bigram_total: int = 0
    sentence_messages: Counter[str] = field(default_factory=Counter)  # messages each sentence appears in

    def add(self, events: Iterable[BaseEvent]) -> None:
        for event in events:
            if isinstance(event, UserMessage):
                self.user[event.content] += 1
                words = [w.lower().strip(".,") for w in _WORD.findall(event.content)]
                pairs = list(itertools.pairwise(words))
                self.user_bigrams.update(pairs)
                self.user_bigram_total += len(pairs)
            elif isinstance(event, AssistantMessage) and event.sender == "assistant":
                self.assistant[event.content] += 1
                self.sentence_messages.update(set(sentences(event.content)))

    def summary(self) -> dict[str, Any]:
        n_assistant, n_user = sum(self.assistant.values()), sum(self.user.values())
        top, top_count = self.sentence_messages.most_common(1)[0] if self.sentence_messages else ("", 0)
        return {
            "distinct_assistant_messages": round(len(self.assistant) / n_assistant, 3) if n_assistant else 0.0,
            "distinct_user_messages": round(len(self.user) / n_user, 3) if n_user else 0.0,
            "distinct_user_bigrams": round(len(self.user_bigrams) / self.user_bigram_total, 3)
            if self.user_bigram_total
            else 0.0,
            "top_assistant_sentence_share": round(top_count / n_assistant, 3) if n_assistant else 0.0,
            "top_assistant_sentence": top,
        }


def diversity(sessions: Sequence[Sequence[BaseEvent]]) -> dict[str, Any]:
    tally = Diversity()
    for events in sessions:
        tally.add(events)
    return tally.summary()
