import pytest
from pydantic import ValidationError

from convosim.messages import (
    EVENT_ADAPTER,
    AssistantMessage,
    Reason,
    SessionEnded,
    SessionStarted,
    ToolCall,
    ToolCallRequest,
    ToolOutput,
    ToolResult,
    UserMessage,
    Verdict,
    event_from_json,
)
from convosim.models import UserSubGoal, UserTask


def _events() -> list:
    common = {"session_id": "s1", "turn": 1}
    task = UserTask(id="t", context="c", goal="g", subgoals=(UserSubGoal(description="d", requests=()),))
    user = UserMessage(id="u1", sender="user", recipient="assistant", content="hi", **common)
    return [
        SessionStarted(id="e0", sender="runner", recipient="user", task=task, **common),
        user,
        ToolCallRequest(
            id="e2",
            sender="assistant",
            recipient="tool_executor",
            calls=(ToolCall(id="call_1", name="get_order", arguments={"order_id": 1}),),
            **common,
        ),
        ToolResult(
            id="e3",
            sender="tool_executor",
            recipient="assistant",
            results=(ToolOutput(call_id="call_1", name="get_order", output={"status": "pending"}),),
            **common,
        ),
        AssistantMessage(id="e4", sender="assistant", recipient="user", content="It is pending.", **common),
        SessionEnded(
            id="e5",
            sender="supervisor",
            recipient="validator",
            task_id="t",
            reason="completed",
            state_hash="abc",
            state_diff={},
            transcript=(user,),
            **common,
        ),
        Verdict(
            id="e6",
            sender="validator",
            recipient="supervisor",
            accepted=False,
            reasons=(Reason(code="fact_missing", detail={"field": "total"}),),
            **common,
        ),
    ]


@pytest.mark.parametrize("event", _events(), ids=lambda e: e.type)
def test_every_event_round_trips_through_json(event) -> None:
    restored = event_from_json(event.model_dump_json())
    assert type(restored) is type(event)
    assert restored == event


def test_union_discriminates_on_type() -> None:
    data = {
        "type": "user_message",
        "id": "x",
        "session_id": "s",
        "turn": 2,
        "sender": "user",
        "recipient": "assistant",
        "ts": 1.0,
        "content": "hello",
    }
    assert isinstance(EVENT_ADAPTER.validate_python(data), UserMessage)


def test_events_are_immutable() -> None:
    message = _events()[1]
    with pytest.raises(ValidationError):
        message.content = "changed"


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError):
        UserMessage(id="x", session_id="s", turn=1, sender="user", recipient="assistant", content="a", extra=1)
