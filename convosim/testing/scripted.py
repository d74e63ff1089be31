"""Responders that play each role on the test server with convosim's own offline policies.

A real model sees only the request; so do these. The assistant responder replays the offline
assistant over the request's messages; the user responder finds its task by the goal in its
system prompt and replays the offline user over the role-flipped history; the judge checks each
rubric fact against the transcript it is sent; the tool responder fills the output schema it is
sent. With them, an all-LLM run through litellm and real HTTP is deterministic and mostly accepted.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from convosim.agents.offline_assistant import OfflineAssistantPolicy
from convosim.agents.offline_user import OfflineUserPolicy
from convosim.agents.policies import AssistantObservation, DialogueLine, UserObservation
from convosim.environments.phrasing import PhraseBook
from convosim.models import Task, ToolSpec
from convosim.rules.user_rules import Persona, UserRules
from convosim.testing.server import ChatReply, Responder

KICKOFF = "(The chat has opened."


def json_values(text: str) -> list[Any]:
    """Every JSON object or array embedded in `text`, outermost only, in order. The responders find
    what they need by its shape, never by the prompt's wording, so a reworded prompt breaks no test."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    i = 0
    while i < len(text):
        if text[i] in "{[":
            try:
                value, end = decoder.raw_decode(text, i)
            except ValueError:
                i += 1
                continue
            found.append(value)
            i = end
        else:
            i += 1
    return found


def _list_of(values: list[Any], *keys: str) -> list[dict[str, Any]]:
    """The first JSON array whose items are objects carrying all `keys`."""
    for value in values:
        if isinstance(value, list) and value and all(isinstance(v, dict) and set(keys) <= set(v) for v in value):
            return value
    raise ValueError(f"no list of objects with {keys} in the prompt")


def sample_for(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0]
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        props = schema.get("properties", {})
        return {name: sample_for(sub) for name, sub in props.items()} if props else {"ok": True}
    if kind == "array":
        return [sample_for(schema.get("items", {"type": "object"}))]
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}.get(str(kind), "sample")


def _prefix_hashes(messages: Sequence[dict[str, Any]]) -> list[str]:
    """hashes[i] identifies messages[: i + 1]."""
    out: list[str] = []
    digest = hashlib.sha256()
    for m in messages:
        digest.update(json.dumps(m, sort_keys=True).encode())
        out.append(digest.copy().hexdigest())
    return out


class _Resumable:
    """Policy states keyed by the conversation prefix they have consumed.

    Replaying a whole conversation on every request costs O(turns^2); resuming from the state left
    by the previous request of the same conversation makes each request O(1) amortised, which
    keeps the server cheap enough for load benchmarks. Identical prefixes are identical states
    (the policies are deterministic), and a state is popped when used, so forks stay correct.
    """

    MAX_STATES = 20_000  # a long-lived server keeps only the most recent conversations' states

    def __init__(self) -> None:
        self.states: OrderedDict[str, tuple[Any, ChatReply]] = OrderedDict()  # prefix hash -> (policy, its reply)
        self.lock = threading.Lock()

    def answered(self, hashes: list[str]) -> ChatReply | None:
        """The reply already given to exactly this conversation (a twin session, or a retry)."""
        with self.lock:
            hit = self.states.get(hashes[-1])
        return hit[1] if hit is not None else None

    def resume(self, hashes: list[str], fresh: Callable[[], Any]) -> tuple[Any, int]:
        with self.lock:
            for i in range(len(hashes) - 2, -1, -1):
                hit = self.states.pop(hashes[i], None)
                if hit is not None:
                    return hit[0], i + 1
        return fresh(), 0

    def save(self, key: str, state: Any, reply: Any) -> None:
        with self.lock:
            self.states[key] = (state, reply)
            while len(self.states) > self.MAX_STATES:
                self.states.popitem(last=False)


class OfflineResponders:
    def __init__(
        self, tools: dict[str, ToolSpec], tasks: Sequence[Task], rules: UserRules, persona: Persona, seed: int = 0
    ) -> None:
        self.book = PhraseBook(tools)
        self.tasks = list(tasks)
        self.rules = rules
        self.persona = persona
        self.seed = seed
        self._assistants = _Resumable()
        self._users = _Resumable()

    def responders(self) -> dict[str, Responder]:
        return {"assistant": self.assistant, "user": self.user, "judge": self.judge, "tool": self.tool}

    async def assistant(self, body: dict[str, Any]) -> ChatReply:
        messages = [m for m in body["messages"] if m["role"] != "system"]
        hashes = _prefix_hashes(messages)
        known = self._assistants.answered(hashes)
        if known is not None:
            return known
        seed = int(hashes[0][:8], 16)  # wording fixed by the conversation's opening, as a session's is by its seed
        policy, start = self._assistants.resume(hashes, lambda: OfflineAssistantPolicy(self.book, seed))
        action = None
        for i in range(start, len(messages)):
            acts_here = i + 1 == len(messages) or messages[i + 1]["role"] == "assistant"
            if messages[i]["role"] in ("user", "tool") and acts_here:
                observation = AssistantObservation(system="", tools=(), messages=tuple(messages[: i + 1]))
                action = await policy.act(observation)
        assert action is not None, "no user message to answer"
        if action.tool_calls:
            reply = ChatReply(tool_calls=tuple((c.name, c.arguments) for c in action.tool_calls))
        else:
            reply = ChatReply(content=action.content)
        self._assistants.save(hashes[-1], policy, reply)
        return reply

    async def user(self, body: dict[str, Any]) -> ChatReply:
        system = body["messages"][0]["content"]
        matching = [t for t in self.tasks if t.goal in system]
        if not matching:  # not a session (a pre-flight check): answer like any model would
            return ChatReply(content=json.dumps({"message": "ready", "task_complete": False}))
        task = max(matching, key=lambda t: len(t.goal) + (t.context in system))
        view = task.user_view()
        messages = body["messages"]
        hashes = _prefix_hashes(messages)
        known = self._users.answered(hashes)
        if known is not None:
            return known
        fresh = lambda: OfflineUserPolicy(self.book, self.rules, self.persona, self.seed)  # noqa: E731
        policy, start = self._users.resume(hashes, fresh)
        lines: list[DialogueLine] = []
        action = None

        async def act() -> None:
            nonlocal action
            turn = 1 + sum(1 for x in lines if x.speaker == "user")
            action = await policy.act(UserObservation(task=view, history=tuple(lines), turn=turn))

        for i, m in enumerate(messages[1:], start=1):
            if m["role"] == "assistant":  # the simulated user's own earlier message: it spoke here
                if i >= start and not (start and i == start):
                    await act()
                lines.append(DialogueLine(speaker="user", text=m["content"]))
            elif m["role"] == "user" and not m["content"].startswith(KICKOFF):
                lines.append(DialogueLine(speaker="assistant", text=m["content"]))
        await act()
        assert action is not None
        reply = ChatReply(content=json.dumps({"message": action.content, "task_complete": action.done}))
        self._users.save(hashes[-1], policy, reply)
        return reply

    def judge(self, body: dict[str, Any]) -> ChatReply:
        values = json_values(body["messages"][-1]["content"])
        try:
            items = _list_of(values, "id", "class", "text")
            transcript = _list_of(values, "role")
        except ValueError:  # not a review (a pre-flight check)
            return ChatReply(content=json.dumps({"items": [], "summary": "ready"}))
        said = "\n".join(m.get("content") or "" for m in transcript if m["role"] == "assistant")
        results = []
        for item in items:
            value = re.search(r"\((.*)\) for sub-goal", item["text"]) if item["class"] == "critical" else None
            passed = value is None or value.group(1) in said
            results.append({"id": item["id"], "passed": passed, "evidence": "checked against the transcript"})
        return ChatReply(content=json.dumps({"items": results, "summary": "scripted review"}))

    def tool(self, body: dict[str, Any]) -> ChatReply:
        schemas = [
            v
            for v in json_values(body["messages"][0]["content"])
            if isinstance(v, dict) and v.get("type") in ("object", "array") and ("properties" in v or "items" in v)
        ]
        if not schemas:  # not a tool call (a pre-flight check)
            return ChatReply(content="ready")
        schema = schemas[0]
        return ChatReply(content=json.dumps(sample_for(schema)))
