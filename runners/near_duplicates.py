"""Near-duplicate dialogues (`convosim export --dedup`): MinHash LSH over word 3-grams.

Exact copies are already refused by the row checks; this finds dialogues that differ only in a few
words (a reworded greeting, another order number in an otherwise identical exchange), which teach
a model nothing new and overweight one path. Each dialogue is shingled as the text a trainer sees:
user and assistant words, tool calls (name and arguments) and tool results. A dialogue is a near
duplicate of the first earlier one whose estimated Jaccard similarity reaches the threshold; LSH
keeps the search sublinear, and only the signatures (num_perm x 8 bytes per row) stay in memory.
"""

from __future__ import annotations

import re
from typing import Any

from datasketch import MinHash, MinHashLSH

from convosim.messages import Reason

DEFAULT_THRESHOLD = 0.9
NUM_PERM = 128
_WORD = re.compile(r"\w+")


def dialogue_words(messages: list[dict[str, Any]]) -> list[str]:
    """The words of a dialogue as a trainer sees them; the system prompt (the same in every row) is left out."""
    parts = []
    for m in messages:
        if m["role"] in ("user", "assistant") and m.get("content"):
            parts.append(f"{m['role']} {m['content']}")
        parts += [f"call {c['function']['name']} {c['function']['arguments']}" for c in m.get("tool_calls", [])]
        if m["role"] == "tool":
            parts.append(f"tool {m['content']}")
    return _WORD.findall(" ".join(parts).lower())


def shingles(words: list[str], size: int = 3) -> set[str]:
    return {" ".join(words[i : i + size]) for i in range(max(1, len(words) - size + 1))}


def signature(messages: list[dict[str, Any]]) -> MinHash:
    minhash = MinHash(num_perm=NUM_PERM, seed=1)
    minhash.update_batch([s.encode() for s in sorted(shingles(dialogue_words(messages)))])
    return minhash


class NearDuplicates:
    """Judges dialogues in export order, remembering the signature of each one it let through."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not 0 < threshold <= 1:
            raise ValueError("the near-duplicate threshold must be in (0, 1]")
        self.threshold = threshold
        # The index is tuned looser than the threshold, weighted against misses: it only proposes
        # candidates, and the signature estimate then decides (a pair at 0.95 is not lost to banding).
        self.index = MinHashLSH(threshold=max(0.3, threshold - 0.2), num_perm=NUM_PERM, weights=(0.2, 0.8))
        self.kept: dict[str, MinHash] = {}
        self.order: dict[str, int] = {}

    def check(self, session_id: str, messages: list[dict[str, Any]]) -> Reason | None:
        minhash = signature(messages)
        candidates = sorted(self.index.query(minhash), key=self.order.__getitem__)
        for other in candidates:  # LSH proposes; the estimate decides, the earliest match is named
            similarity = minhash.jaccard(self.kept[other])
            if similarity >= self.threshold:
                return Reason(code="near_duplicate", detail={"of": other, "similarity": round(similarity, 3)})
        self.index.insert(session_id, minhash)
        self.kept[session_id] = minhash
        self.order[session_id] = len(self.order)
        return None
