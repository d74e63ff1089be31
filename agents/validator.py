"""The Validator agent: judges an ended session against the task's rubric.

What it may know: the rubric of each task (private to it), the tools' specs, the user rules, and
what the supervisor hands it when a session ends (final state and the recorded transcript). An
optional LLM judge adds rubric-item verdicts on top of the deterministic checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from convosim.agents.llm_judge import LLMJudge
from convosim.messages import BaseEvent, Reason, SessionEnded, Verdict, event_id
from convosim.models import Rubric
from convosim.rules.behaviours import session_tags
from convosim.rules.checks import Checks, judge


class ValidatorRole:
    def __init__(
        self,
        session_id: str,
        rubrics: Mapping[str, Rubric],
        checks: Checks,
        judge: LLMJudge | None = None,
    ) -> None:
        self.session_id = session_id
        self.rubrics = rubrics
        self.checks = checks
        self.judge = judge

    async def handle(self, event: BaseEvent) -> Sequence[BaseEvent]:
        if not isinstance(event, SessionEnded):
            return []
        rubric = self.rubrics[event.task_id]
        reasons, completed = judge(event, rubric, self.checks)
        notes: list[Reason] = []
        if self.judge is not None:
            judged, notes = await self.judge.judge(event, rubric)
            reasons += judged
        return [
            Verdict(
                id=event_id(self.session_id, "verdict"),
                session_id=self.session_id,
                turn=event.turn,
                sender="validator",
                recipient="supervisor",
                accepted=not reasons,
                reasons=tuple(reasons),
                notes=tuple(notes),
                subgoals_total=len({k for k, _ in rubric.gold_calls}),
                subgoals_completed=completed,
                tags=session_tags(event.transcript, self.checks.write_tools),
            )
        ]
