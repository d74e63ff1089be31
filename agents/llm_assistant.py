"""An assistant played by any litellm model, with native tool calling.

It sends exactly the observation (domain policy as the system prompt, the tools' specs, the chat so
far) and turns the model's tool calls into planned calls. Arguments that are not valid JSON are
kept as raw text so the executor returns a tool error the model can recover from, and counted.
"""

from __future__ import annotations

import json
from typing import Any

from convosim.agents.policies import AssistantAction, AssistantObservation, PlannedCall
from convosim.llm.client import LLMClient
from convosim.llm.transports import storable


class LLMAssistantPolicy:
    def __init__(self, client: LLMClient, session_id: str) -> None:
        self.client = client
        self.session_id = session_id

    async def act(self, observation: AssistantObservation) -> AssistantAction:
        messages: list[dict[str, Any]] = (
            [{"role": "system", "content": observation.system}] if observation.system else []
        )
        messages += list(observation.messages)
        completion = await self.client.complete(
            messages, session_id=self.session_id, role="assistant", tools=list(observation.tools) or None
        )
        calls = []
        for call in completion.tool_calls:
            try:
                parsed: Any = json.loads(call.arguments or "{}")
            except (json.JSONDecodeError, RecursionError):
                parsed = None
            # Arguments that are not a storable object stay the model's raw text: the tool executor
            # then answers "invalid arguments" to this session, and nothing unstorable is recorded.
            usable = isinstance(parsed, dict) and storable(parsed)
            arguments: dict[str, Any] | str = parsed if usable else call.arguments
            calls.append(PlannedCall(name=call.name, arguments=arguments))
        return AssistantAction(content=completion.content, tool_calls=tuple(calls), reasoning=completion.reasoning)
