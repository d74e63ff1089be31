"""Dataset export: recorded sessions -> OpenAI fine-tuning chat format.

Each line of `dataset.jsonl` is `{"messages": [...], "tools": [...]}` with a system message
(the domain policy), user and assistant turns, assistant `tool_calls`, and one `tool` message per
call id. Files are rebuilt from the run store in session order, written to a temporary file and
renamed, so they are deterministic for a seed and never hold a torn line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from convosim.chat_format import chat_messages
from convosim.messages import BaseEvent


def openai_messages(system: str, events: Iterable[BaseEvent], reasoning: bool = True) -> list[dict[str, Any]]:
    """The session as a chat; assistant turns keep the model's reasoning (`reasoning_content`)
    unless `reasoning` is False: silently dropping it is a known trap for reasoning-trace datasets."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for event in events:
        messages.extend(chat_messages(event, reasoning))
    return messages


class AtomicJsonl:
    """A JSONL file written beside its final name and renamed into place only when the block
    ends without an error: a reader never sees a torn or half-rebuilt file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_suffix(path.suffix + ".tmp")
        self.count = 0

    def __enter__(self) -> AtomicJsonl:
        self.fh = self.tmp.open("w", encoding="utf-8")
        return self

    def write(self, row: dict[str, Any]) -> None:
        self.fh.write(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n")
        self.count += 1

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        if kind is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
