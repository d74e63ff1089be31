"""Token, cost and latency accounting per (session, role); unknown cost stays unknown, not 0."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Usage:
    calls: int = 0
    cached_calls: int = 0
    failed_calls: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cost_unknown_calls: int = 0
    latency_s: float = 0.0

    def add(self, other: Usage) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_record(self) -> dict[str, float | int]:
        """Every counter, for storage and transport (the run store, Ray, the user host): one format."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Usage:
        return cls(**{k: v for k, v in record.items() if k in cls.__dataclass_fields__})

    @property
    def cost_known(self) -> bool:
        return self.cost_unknown_calls == 0

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "calls": self.calls,
            "cached_calls": self.cached_calls,
            "failed_calls": self.failed_calls,
            "retries": self.retries,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 6) if self.cost_known else None,
            "latency_s": round(self.latency_s, 4),
        }


@dataclass
class UsageMeter:
    """Collects usage per session and role; the runner drains a session's usage when it ends."""

    by_session: dict[str, dict[str, Usage]] = field(default_factory=dict)
    # Usage of calls that finished after their session was closed (in flight at a timeout): billed,
    # so counted here, by role, instead of silently dropped.
    late: dict[str, Usage] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)

    def record(self, session_id: str, role: str, usage: Usage) -> None:
        if session_id in self.closed:
            self.late.setdefault(role, Usage()).add(usage)
            return
        self.by_session.setdefault(session_id, {}).setdefault(role, Usage()).add(usage)

    def pop(self, session_id: str, calls_may_linger: bool = False) -> dict[str, Usage]:
        """A finished session's usage. `calls_may_linger` (it timed out or failed with calls in
        flight): remember it, so what those calls cost later is counted as late usage."""
        if calls_may_linger:
            self.closed.add(session_id)
        return self.by_session.pop(session_id, {})
