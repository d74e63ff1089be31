"""LLM tool preparation: question-to-spec generation, complementary expansion, schema prediction.

Question-to-spec: the model writes the questions real users of the domain would ask, then turns
them into tool specs with SQL. Complementary expansion: it proposes the reads and writes the set
is missing (at most 10, no trivial helpers). Every proposal is parsed here and then vetted by the
same checks as hand-written tools (environments.toolgen.vet); nothing unchecked is ever written.
Schema prediction sees every tool lacking a schema in one conversation so types stay consistent.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from convosim.agents.prompts import render
from convosim.environments.domain import Domain
from convosim.environments.toolgen import Rejected
from convosim.llm.client import LLMClient, LLMError
from convosim.llm.transports import json_object_in
from convosim.models import Task, ToolSpec

JSON = {"type": "json_object"}


def schema_text(domain: Domain) -> str:
    path = domain.root / "schema.sql"
    return path.read_text(encoding="utf-8") if path.is_file() else ", ".join(domain.template.tables)


def tools_text(tools: dict[str, ToolSpec]) -> str:
    return "\n".join(f"- {t.name} ({t.kind}): {t.description}" for t in tools.values()) or "(none)"


def _json(content: str | None) -> dict[str, Any]:
    return json_object_in(content)


class LLMToolsmith:
    def __init__(self, client: LLMClient, questions: int = 24, complementary: int = 10) -> None:
        self.client = client
        self.questions = questions
        self.complementary = complementary

    async def _ask(self, prompt: str) -> dict[str, Any]:
        completion = await self.client.complete(
            [{"role": "user", "content": prompt}], session_id="pipeline", role="toolsmith", response_format=JSON
        )
        return _json(completion.content)

    def propose(self, domain: Domain) -> tuple[list[ToolSpec], list[Rejected]]:
        import asyncio

        return asyncio.run(self._propose(domain))

    async def _propose(self, domain: Domain) -> tuple[list[ToolSpec], list[Rejected]]:
        schema, existing = schema_text(domain), tools_text(domain.tools)
        rejected: list[Rejected] = []
        specs: list[Any] = []
        try:
            questions = (
                await self._ask(
                    render(
                        "tool_questions",
                        domain=domain.description or domain.name,
                        schema=schema,
                        tools=existing,
                        count=self.questions,
                    )
                )
            ).get("questions", [])
            task = "Turn these user questions into the tools needed to answer them:\n" + "\n".join(
                f"- {q}" for q in questions if isinstance(q, str)
            )
            specs += (await self._ask(render("tool_specs", schema=schema, tools=existing, task=task))).get("tools", [])
            task = (
                f"Propose up to {self.complementary} tools the set is missing (get_, search_, create_, update_, "
                "delete_), given these already proposed: "
                + ", ".join(str(s.get("name")) for s in specs if isinstance(s, dict))
            )
            extra = (await self._ask(render("tool_specs", schema=schema, tools=existing, task=task))).get("tools", [])
            specs += extra[: self.complementary]
        except (LLMError, ValueError) as exc:
            rejected.append(Rejected("(model)", f"no usable answer: {exc}"))
        tools: list[ToolSpec] = []
        seen: set[str] = set()
        for raw in specs:
            name = str(raw.get("name", "?")) if isinstance(raw, dict) else "?"
            try:
                tool = ToolSpec.model_validate(raw)
            except ValidationError as exc:
                err = exc.errors(include_url=False)[0]
                rejected.append(Rejected(name, f"invalid spec: {'.'.join(map(str, err['loc']))}: {err['msg']}"))
                continue
            if tool.name in seen:
                rejected.append(Rejected(tool.name, "proposed twice"))
                continue
            seen.add(tool.name)
            tools.append(tool)
        return tools, rejected

    def predict(self, domain: Domain, tools: list[ToolSpec], known: dict[str, Any]) -> dict[str, Any]:
        import asyncio

        async def ask() -> dict[str, Any]:
            listed = json.dumps([t.openai()["function"] | {"returns": t.returns} for t in tools], indent=1)
            data = await self._ask(render("schema_predict", known=json.dumps(known)[:20000], tools=listed))
            schemas = data.get("schemas", {})
            return {t.name: schemas[t.name] for t in tools if isinstance(schemas.get(t.name), dict)}

        try:
            predicted = asyncio.run(ask())
        except (LLMError, ValueError):
            return {}
        return unify_types(predicted, known, tools)


def unify_types(predicted: dict[str, Any], known: dict[str, Any], tools: list[ToolSpec]) -> dict[str, Any]:
    """Enforce consistency: an input's type wins for a same-named output field, then the first type seen."""
    types: dict[str, Any] = {}
    for tool in tools:
        for name, prop in tool.properties.items():
            types.setdefault(name, prop.get("type"))
    for schema in known.values():
        row = schema.get("items", schema)
        for name, prop in row.get("properties", {}).items():
            types.setdefault(name, prop.get("type"))
    out = {}
    for tool in tools:
        schema = predicted.get(tool.name)
        if schema is None:
            continue
        if tool.returns == "many" and schema.get("type") != "array":
            schema = {"type": "array", "items": schema}
        row = schema.get("items", schema)
        for name, prop in row.get("properties", {}).items():
            if isinstance(prop, dict) and name in types and types[name] is not None:
                prop["type"] = types[name]
            elif isinstance(prop, dict):
                types[name] = prop.get("type")
        out[tool.name] = schema
    return out


class LLMTaskWriter:
    """Rewrites sampled tasks' goal and sub-goal texts in natural language (facts unchanged)."""

    def __init__(self, client: LLMClient) -> None:
        self.client = client

    async def _rewrite(self, task: Task) -> Task:
        steps = "\n".join(f"{k}. {s.description}" for k, s in enumerate(task.subgoals, start=1))
        prompt = render("task_writer", context=task.context or "a customer", steps=steps)
        completion = await self.client.complete(
            [{"role": "user", "content": prompt}], session_id="pipeline", role="task_writer", response_format=JSON
        )
        data = _json(completion.content)
        goal, texts = data.get("goal"), data.get("subgoals")
        if not isinstance(goal, str) or not isinstance(texts, list) or len(texts) != len(task.subgoals):
            raise ValueError("the rewrite does not have one text per sub-goal")
        subgoals = tuple(
            s.model_copy(update={"description": str(t)}) for s, t in zip(task.subgoals, texts, strict=True)
        )
        return task.model_copy(update={"goal": goal, "subgoals": subgoals})

    def rewrite_all(self, tasks: list[Task]) -> tuple[list[Task], int]:
        """(tasks, how many kept their template text because the model's rewrite was unusable)."""
        import asyncio

        async def run() -> list[Task | BaseException]:
            return await asyncio.gather(*[self._rewrite(t) for t in tasks], return_exceptions=True)

        results = asyncio.run(run())
        out = [r if isinstance(r, Task) else t for r, t in zip(results, tasks, strict=True)]
        return out, sum(1 for r in results if not isinstance(r, Task))
