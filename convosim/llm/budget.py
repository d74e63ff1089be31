"""A run's spending cap (`run --max-cost USD`), shared by every LLM client of the run.

Checked before each call and charged after it, so a run stops within the cost of the calls in
flight when the cap is reached (one call at concurrency 1). A call refused by the budget fails its
session (`--resume` with a higher cap runs it again); no new session starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from convosim.llm.transports import LLMError


class BudgetExhausted(LLMError):
    """The run has spent its budget: no more calls."""


@dataclass
class Budget:
    cap_usd: float
    spent_usd: float = 0.0

    @property
    def exhausted(self) -> bool:
        return self.spent_usd >= self.cap_usd

    def check(self) -> None:
        if self.exhausted:
            raise BudgetExhausted(f"the run's budget of ${self.cap_usd:.4f} is spent (${self.spent_usd:.4f})")

    def charge(self, cost_usd: float) -> None:
        self.spent_usd += cost_usd
