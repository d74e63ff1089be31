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


def openai_messages(system: str, events: Iterable[BaseEvent]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for event in events:
        messages.extend(chat_messages(event))
    return messages


def write_jsonl_atomic(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    tmp = path.with_suffix(path.suffix + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n")
            count += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return count
