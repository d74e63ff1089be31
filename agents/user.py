"""The User agent: holds the private task and speaks through a UserPolicy.

What it may know: its task (goal and sub-goals, never the rubric), and the assistant's text
replies. It never sees tool calls, tool outputs or the database. Rules that must hold whatever
the policy does (the max-turn guard, non-empty messages, leaving only after the assistant has
answered the end marker) are enforced here rather than trusted to the policy.
"""

from __future__ import annotations

from collections.abc import Sequence

from convosim.agents.policies import DialogueLine, UserAction, UserObservation, UserPolicy
from convosim.messages import AssistantMessage, BaseEvent, ConversationClosed, SessionStarted, UserMessage, event_id
from convosim.models import UserTask
from convosim.rules.user_rules import UserRules


class UserSimulator:
    def __init__(self, session_id: str, policy: UserPolicy, rules: UserRules) -> None:
        self.session_id = session_id
        self.policy = policy
        self.rules = rules
        self.task: UserTask | None = None
        self.history: list[DialogueLine] = []
        self.turn = 0
        self.ended: UserMessage | None = None
        self._closed = False

    async def handle(self, event: BaseEvent) -> Sequence[BaseEvent]:
        if isinstance(event, SessionStarted):
            self.task = event.task
            return [await self._speak()]
        if isinstance(event, AssistantMessage):
            self.history.append(DialogueLine(speaker="assistant", text=event.content))
            if self.ended is not None:
                if self._closed:
                    return []
                self._closed = True
                return [
                    ConversationClosed(
                        id=event_id(self.session_id, "user-closed"),
                        session_id=self.session_id,
                        turn=self.turn,
                        sender="user",
                        recipient="supervisor",
                        reason=self.ended.end_reason or "completed",
                    )
                ]
            return [await self._speak()]
        return []

    async def _speak(self) -> UserMessage:
        assert self.task is not None, "SessionStarted must come first"
        self.turn += 1
        if self.turn > self.rules.max_turns:
            action = UserAction(content="I've run out of time for this, goodbye.", done=True, end_reason="max_turns")
        else:
            action = await self.policy.act(UserObservation(task=self.task, history=tuple(self.history), turn=self.turn))
        content = action.content.strip() or "Hello?"
        done = action.done
        reason = (action.end_reason or "completed") if done else None
        self.history.append(DialogueLine(speaker="user", text=content))
        message = UserMessage(
            id=event_id(self.session_id, "user", self.turn),
            session_id=self.session_id,
            turn=self.turn,
            sender="user",
            recipient="assistant",
            content=content,
            done=done,
            end_reason=reason,
        )
        if done:
            self.ended = message
        return message
