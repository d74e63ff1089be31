"""Strict replay: the recorded tool outputs must be what the tools return on the session's state.

Every call of a finished session is run again, in order, on a fresh clone of the template; an
output that differs from the recorded one (edited after the fact, produced by a simulator, or by a
tool that is not deterministic) and a final state other than the recorded one are reasons to reject.
This is what lets a dataset row be trusted without trusting the process that wrote it.
"""

from __future__ import annotations

from collections.abc import Callable

from convosim.environments.domain import SessionEnvironment
from convosim.messages import BaseEvent, Reason, SessionEnded, ToolCallRequest, ToolResult


def check_replay(ended: SessionEnded, new_environment: Callable[[], SessionEnvironment]) -> list[Reason]:
    events: list[BaseEvent] = list(ended.transcript)
    recorded = {r.call_id: r for e in events if isinstance(e, ToolResult) for r in e.results}
    reasons = []
    env = new_environment()
    try:
        for event in events:
            if not isinstance(event, ToolCallRequest):
                continue
            for call in event.calls:
                was = recorded.get(call.id)
                tool = env.domain.tools.get(call.name)
                if was is None or tool is None:
                    continue  # never answered (a limit hit)
                now = env.call(call.id, call.name, call.arguments)
                if (now.output, now.is_error) != (was.output, was.is_error):
                    reasons.append(
                        Reason(
                            code="tool_output_mismatch",
                            detail={
                                "turn": event.turn,
                                "call_id": call.id,
                                "recorded": was.output,
                                "replayed": now.output,
                            },
                        )
                    )
        if not reasons and env.state_hash() != ended.state_hash:
            reasons.append(Reason(code="tool_output_mismatch", detail={"final_state": "differs from the recorded one"}))
    finally:
        env.close()
    return reasons
