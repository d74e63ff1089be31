"""Simulated tool execution: a model invents a tool's output, held to the tool's output schema.

Used for tools with no SQL, or for a whole run with `tool_mode: simulated`. The model sees the
tool spec, the call, the output JSON schema and this session's recent outputs (for consistency);
an output that does not validate is sent back once with the error, then becomes a tool error.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from convosim.agents.prompts import render
from convosim.llm.client import LLMClient, LLMError
from convosim.models import ToolSpec


def output_schema(tool: ToolSpec) -> dict[str, Any]:
    if tool.output_schema:
        return tool.output_schema
    return {"type": "array", "items": {"type": "object"}} if tool.returns == "many" else {"type": "object"}


class ToolSimulator:
    def __init__(self, client: LLMClient, session_id: str, keep_recent: int = 6) -> None:
        self.client = client
        self.session_id = session_id
        self.recent: list[dict[str, Any]] = []
        self.keep_recent = keep_recent

    async def run(self, tool: ToolSpec, arguments: dict[str, Any]) -> tuple[Any, bool]:
        """(output, is_error)."""
        schema = output_schema(tool)
        prompt = render(
            "tool_simulator",
            tool=json.dumps(tool.openai()["function"]),
            arguments=json.dumps(arguments, sort_keys=True),
            schema=json.dumps(schema),
            recent="\n".join(json.dumps(r, sort_keys=True) for r in self.recent[-self.keep_recent :]) or "(none)",
        )
        messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
        error = ""
        for _ in range(2):
            try:
                completion = await self.client.complete(messages, session_id=self.session_id, role="tool_executor")
            except LLMError as exc:
                return {"error": f"simulated tool failed: {exc}"}, True
            text = (completion.content or "").strip()
            try:
                output = json.loads(text.removeprefix("```json").removesuffix("```"))
                jsonschema.validate(output, schema)
            except (ValueError, jsonschema.ValidationError) as exc:
                error = str(exc).splitlines()[0][:300]
                messages += [
                    {"role": "assistant", "content": text},
                    {"role": "user", "content": f"That output is invalid: {error}. Reply with valid JSON only."},
                ]
                continue
            self.recent.append({"tool": tool.name, "arguments": arguments, "output": output})
            return output, False
        return {"error": f"simulated output did not match the tool's schema: {error}"}, True
