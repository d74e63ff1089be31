"""An LLM judge that complements (never replaces) the deterministic checks.

The rubric is turned into classed items: critical (facts the user must be told), structural (the
expected tool-use pattern: equivalent orders are fine) and non-critical (confirming before changes).
Only a failed critical item rejects a session; the others become notes. Items the judge calls
invalid, or leaves out, are ignored and noted.
"""

from __future__ import annotations

import json
from typing import Any

from convosim.agents.prompts import render
from convosim.chat_format import chat_messages
from convosim.environments.phrasing import label, render_value
from convosim.llm.client import LLMClient, LLMError
from convosim.llm.transports import json_object_in
from convosim.messages import Reason, SessionEnded
from convosim.models import Rubric


def rubric_items(rubric: Rubric) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for fact in rubric.facts:
        items.append(
            {
                "id": f"fact-{fact.subgoal}-{fact.field}",
                "class": "critical",
                "text": f"The user is told the {label(fact.field)} ({render_value(fact.value)}) "
                f"for sub-goal {fact.subgoal}.",
            }
        )
    for i, (k, call) in enumerate(rubric.gold_calls):
        items.append(
            {
                "id": f"call-{i + 1}",
                "class": "structural",
                "text": f"For sub-goal {k}, the assistant calls {call.tool} with {json.dumps(call.args)}.",
            }
        )
    items.append(
        {
            "id": "confirm-changes",
            "class": "non_critical",
            "text": "The assistant reads back each change and gets confirmation before making it.",
        }
    )
    return items


class LLMJudge:
    def __init__(self, client: LLMClient) -> None:
        self.client = client

    async def judge(self, ended: SessionEnded, rubric: Rubric) -> tuple[list[Reason], list[Reason]]:
        """(reasons to reject, notes) from the model's verdict on the rubric items."""
        items = rubric_items(rubric)
        transcript = [m for event in ended.transcript for m in chat_messages(event)]
        prompt = render(
            "judge",
            rubric=json.dumps(items, indent=1),
            transcript=json.dumps(transcript, indent=1, ensure_ascii=False),
        )
        messages = [{"role": "user", "content": prompt}]
        try:
            completion = await self.client.complete(
                messages, session_id=ended.session_id, role="judge", response_format={"type": "json_object"}
            )
            verdict = json_object_in(completion.content)
            results = {str(r["id"]): r for r in verdict.get("items", []) if isinstance(r, dict) and "id" in r}
        except (LLMError, ValueError, KeyError, TypeError) as exc:
            return [Reason(code="judge_unavailable", detail=str(exc)[:300])], []
        reasons: list[Reason] = []
        notes: list[Reason] = []
        for item in items:
            result = results.get(item["id"])
            if result is None:
                notes.append(Reason(code="judge_item_missing", detail=item["id"]))
            elif not result.get("passed", False):
                detail = {"item": item["id"], "text": item["text"], "evidence": result.get("evidence")}
                (reasons if item["class"] == "critical" else notes).append(
                    Reason(code=f"judge_{item['class']}_failed", detail=detail)
                )
        return reasons, notes
