"""The grounding check accepts a value however an LLM writes it, and nothing it was never told."""

from __future__ import annotations

import pytest

from convosim.messages import AssistantMessage, BaseEvent, ToolOutput, ToolResult, UserMessage
from convosim.rules.grounding import check_grounding, check_placeholders

OUTPUT = {"order_id": 1001, "total": 1059.9, "created_at": "2026-05-16", "status": "shipped", "name": "Dr. Ines Tanaka"}
LABELS = ["order id", "total", "created at", "status", "name"]


def _session(reply: str) -> list[BaseEvent]:
    common = {"session_id": "s", "turn": 1}
    return [
        UserMessage(id="u", sender="user", recipient="assistant", content="Where is order 1001?", **common),
        ToolResult(
            id="t",
            sender="tool_executor",
            recipient="assistant",
            results=(ToolOutput(call_id="c", name="get_order", output=OUTPUT),),
            **common,
        ),
        AssistantMessage(id="a", sender="assistant", recipient="user", content=reply, **common),
    ]


@pytest.mark.parametrize(
    "reply",
    [
        "Order 1001's total is $1,059.90 and it was placed on May 16, 2026.",
        "Your order (#1001) is SHIPPED; total: 1059.9, created at: 2026-05-16.",
        'It is under the name "Dr. Ines Tanaka", placed 16 May 2026, total 1,059.90 USD.',
        "Here is what I found: name: Dr. Ines Tanaka, status: shipped.",
        "The order was placed on 2026-05-16.",
    ],
)
def test_values_written_in_other_formats_are_grounded(reply: str) -> None:
    assert check_grounding(_session(reply), "Be kind.", LABELS) == []


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        ("Your total is $99.00.", "99.00"),
        ("Order 1002 is shipped.", "1002"),
        ("Here is what I found: name: Dr, status: shipped.", "name: Dr"),
        ("Here is what I found: name: Ines, status: shipped.", "name: Ines"),
        ("Here is what I found: status: delivered.", "status: delivered"),
        ("We will email you at ines@example.com.", "ines@example.com"),
        ("It was placed on 2026-05-17.", "2026-05-17"),
    ],
)
def test_invented_or_cut_values_are_not(reply: str, value: str) -> None:
    reasons = check_grounding(_session(reply), "Be kind.", LABELS)
    assert [r.code for r in reasons] == ["ungrounded_value"]
    assert value in reasons[0].detail["values"]


def test_a_value_stated_before_it_was_looked_up_is_ungrounded() -> None:
    events = _session("Thanks.")
    early = AssistantMessage(
        id="e", sender="assistant", recipient="user", content="Total 1059.90.", session_id="s", turn=1
    )
    assert [r.code for r in check_grounding([events[0], early, *events[1:]], "", LABELS)] == ["ungrounded_value"]


def test_policy_values_are_grounded() -> None:
    assert check_grounding(_session("Returns are accepted within 30 days."), "Returns: 30 days.", LABELS) == []


def test_placeholders_are_caught_and_json_is_not_a_placeholder() -> None:
    assert check_placeholders(_session('Arguments were {"order_id": 1001}.')) == []
    for text in ("Sure, the reason is ${three.reason}.", "Hello {name}!", "Hi {{ user }}"):
        assert [r.code for r in check_placeholders(_session(text))] == ["unresolved_placeholder"]
