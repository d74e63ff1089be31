"""The Validator agent: judges an ended session against the task's rubric.

What it may know: the rubric of each task (private to it), the tools' specs, the user rules, and
what the supervisor hands it when a session ends (final state and the recorded transcript). An
optional LLM judge adds rubric-item verdicts on top of the deterministic checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from convosim.agents.llm_judge import LLMJudge
from convosim.environments.phrasing import PhraseBook
from convosim.messages import BaseEvent, Reason, SessionEnded, Verdict
from convosim.models import Rubric, ToolSpec
from convosim.rules.checks import judge
from convosim.rules.user_rules import UserRules


class ValidatorRole:
    def __init__(
        self,
        session_id: str,
        rubrics: Mapping[str, Rubric],
        tools: dict[str, ToolSpec],
        rules: UserRules,
        book: PhraseBook,
        judge: LLMJudge | None = None,
        grounded: bool = True,
    ) -> None:
        self.session_id = session_id
        self.rubrics = rubrics
        self.tools = tools
        self.rules = rules
        self.book = book
        self.judge = judge
        self.grounded = grounded

    async def handle(self, event: BaseEvent) -> Sequence[BaseEvent]:
        if not isinstance(event, SessionEnded):
            return []
        rubric = self.rubrics[event.task_id]
        reasons, completed = judge(event, rubric, self.tools, self.rules, self.book, self.grounded)
        notes: list[Reason] = []
        if self.judge is not None:
            judged, notes = await self.judge.judge(event, rubric)
            reasons += judged
        return [
            Verdict(
                id=f"{self.session_id}-verdict",
                session_id=self.session_id,
                turn=event.turn,
                sender="validator",
                recipient="supervisor",
                accepted=not reasons,
                reasons=tuple(reasons),
                notes=tuple(notes),
                subgoals_total=len({k for k, _ in rubric.gold_calls}),
                subgoals_completed=completed,
            )
        ]
