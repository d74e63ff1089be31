"""A user simulator played by any litellm model, following the seed's method.

The model gets its private task (goal and sub-goals with the details it may give, never the
rubric), its persona and the behavioural rules, and the conversation role-flipped (the assistant's
messages as "user", its own as "assistant"; it never sees tool calls). It answers in structured
form: a message plus a task-complete flag. Two guards hold whatever the model says: a reply that
confirms a change cannot also end the session (the change must first be reported as done), and an
unparseable reply is retried once with the error, then used as plain text.
"""

from __future__ import annotations

import re
from typing import Any

from convosim.agents.policies import Intent, UserAction, UserObservation
from convosim.agents.prompts import render
from convosim.environments.phrasing import label, render_value
from convosim.llm.client import LLMClient
from convosim.llm.transports import json_object_in
from convosim.models import Ref, UserTask
from convosim.rules.user_rules import Persona, UserRules, rule_texts

CONFIRMATION_REQUEST = re.compile(
    r"\b(confirm|shall i|should i|can i|go ahead|proceed|is that (?:right|okay|correct)|sound right|want me to)\b"
    r"[^.?!]*\?",
    re.IGNORECASE,
)


def describe_subgoals(task: UserTask) -> str:
    lines = []
    for k, subgoal in enumerate(task.subgoals, start=1):
        details = []
        for request in subgoal.requests:
            for name, value in request.args.items():
                ref = Ref.parse(value)
                shown = f"the {label(ref.field)} the assistant tells you" if ref else render_value(value)
                details.append(f"{label(name)}: {shown}")
        suffix = f" (details: {'; '.join(details)})" if details else ""
        lines.append(f"{k}. {subgoal.description}{suffix}")
    return "\n".join(lines)


def system_prompt(task: UserTask, rules: UserRules, persona: Persona) -> str:
    return render(
        "user_simulator",
        context=task.context,
        goal=task.goal,
        subgoals=describe_subgoals(task),
        rules="\n".join(f"- {text}" for text in rule_texts(rules)),
        max_subgoals=rules.max_subgoals_per_message,
        persona=f"{persona.verbosity} and {persona.temperament}",
    )


def parse_reply(text: str) -> tuple[str, bool]:
    data = json_object_in(text)
    if not isinstance(data.get("message"), str):
        raise ValueError('expected {"message": string, "task_complete": boolean}')
    return data["message"], bool(data.get("task_complete", False))


VOICE = (
    "You are the customer in this chat with a customer-service assistant. Write your next message: {instruction} "
    'Use your own words, one message only. Reply with a JSON object: {{"message": "...", "task_complete": false}}.'
)


class LLMUserPolicy:
    def __init__(self, client: LLMClient, session_id: str, rules: UserRules, persona: Persona) -> None:
        self.client = client
        self.session_id = session_id
        self.rules = rules
        self.persona = persona

    async def voice(self, intent: Intent, observation: UserObservation) -> str:
        """A scripted intent in the model's own words (the conversation so far, role-flipped)."""
        subgoal = next((s for s in observation.task.subgoals if any(r.tool == intent.tool for r in s.requests)), None)
        instruction = intent.instruction(subgoal.description if subgoal is not None else "")
        messages: list[dict[str, Any]] = [{"role": "system", "content": VOICE.format(instruction=instruction)}]
        for line in observation.history:
            messages.append({"role": "assistant" if line.speaker == "user" else "user", "content": line.text})
        completion = await self.client.complete(
            messages, session_id=self.session_id, role="user", response_format={"type": "json_object"}
        )
        try:
            return parse_reply(completion.content or "")[0]
        except ValueError:
            return (completion.content or "").strip()

    async def act(self, observation: UserObservation) -> UserAction:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system_prompt(observation.task, self.rules, self.persona)}
        ]
        for line in observation.history:  # role-flipped: the model plays the user
            messages.append({"role": "assistant" if line.speaker == "user" else "user", "content": line.text})
        if not observation.history:
            messages.append({"role": "user", "content": "(The chat has opened. Write your first message.)"})
        fmt = {"type": "json_object"}
        completion = await self.client.complete(messages, session_id=self.session_id, role="user", response_format=fmt)
        try:
            message, done = parse_reply(completion.content or "")
        except ValueError as exc:
            messages += [
                {"role": "assistant", "content": completion.content or ""},
                {"role": "user", "content": f"That was not valid: {exc}. Reply with the JSON object only."},
            ]
            retry = await self.client.complete(messages, session_id=self.session_id, role="user", response_format=fmt)
            try:
                message, done = parse_reply(retry.content or "")
            except ValueError:
                message, done = (retry.content or completion.content or "").strip(), False
        last_assistant = next((h.text for h in reversed(observation.history) if h.speaker == "assistant"), "")
        if done and CONFIRMATION_REQUEST.search(last_assistant):
            done = False  # a confirmed change is not done until the assistant reports it made
        return UserAction(content=message, done=done, end_reason="completed" if done else None)
