"""One client per model: retries, back-pressure, cache and accounting around a `Transport`.

The transport (`llm/transports.py`: litellm, plain OpenAI-compatible HTTP, or an in-process
function for tests) only sends one request; everything that must behave the same whatever the
transport is here, written once: 429s honour Retry-After (seconds or an HTTP-date), 5xx, timeouts,
malformed and empty replies back off and retry, every attempt and every failure is counted.
litellm is imported lazily, after LITELLM_LOCAL_MODEL_COST_MAP is set, and no litellm global is
touched at import.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from convosim.llm.budget import Budget
from convosim.llm.cache import ResponseCache, cache_key
from convosim.llm.config import ModelConfig
from convosim.llm.transports import (
    LLMError,
    RawToolCall,
    Reply,
    Retryable,
    Transport,
    litellm_module,
    split_reasoning,
    transport_for,
)
from convosim.llm.usage import Usage, UsageMeter

__all__ = ["Completion", "LLMClient", "LLMError", "RawToolCall", "litellm_module"]

log = structlog.get_logger("convosim.llm")


class _Limit:
    """An asyncio.Semaphore created on first use, inside the running loop."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._semaphore: asyncio.Semaphore | None = None

    def semaphore(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.size)
        return self._semaphore


@dataclass
class Completion:
    content: str | None
    tool_calls: list[RawToolCall]
    finish_reason: str | None
    usage: Usage = field(default_factory=Usage)
    cached: bool = False
    reasoning: str | None = None


class LLMClient:
    def __init__(
        self,
        config: ModelConfig,
        meter: UsageMeter,
        cache: ResponseCache | None = None,
        transport: Transport | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.budget = budget
        self.config = config
        self.meter = meter
        self.cache = cache
        self.transport = transport or transport_for(config)
        self._limit = _Limit(config.max_concurrency)
        self._rng = random.Random(0)
        self.requests_sent = 0

    def share_limit_with(self, other: LLMClient) -> None:
        """Use one in-flight limit with `other` (same model and endpoint): a run-wide cap per model."""
        self._limit = other._limit

    def _params(self, tools: list[dict[str, Any]] | None, response_format: dict[str, Any] | None) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.config.model}
        if tools:
            params["tools"] = tools
        if response_format:
            params["response_format"] = response_format
        if self.config.temperature is not None:
            params["temperature"] = self.config.temperature
        if self.config.max_tokens is not None:
            params["max_tokens"] = self.config.max_tokens
        params.update(self.config.extra)
        return params

    async def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        session_id: str,
        role: str,
        tools: list[dict[str, Any]] | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Completion:
        params = self._params(tools, response_format)
        key = cache_key({**params, "messages": messages}) if self.cache is not None else None
        if key is not None and self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                completion = _from_record(hit, cached=True)
                self.meter.record(session_id, role, completion.usage)
                return completion
        usage = Usage()
        try:
            if self.budget is not None:
                self.budget.check()
            completion = await self._with_retries(messages, params, usage)
        except BaseException:  # a failure, or a cancellation (session timeout, Ctrl-C): still billed
            usage.failed_calls += 1
            raise
        finally:
            self.meter.record(session_id, role, usage)
            if self.budget is not None:
                self.budget.charge(usage.cost_usd)
        completion.usage = usage
        if key is not None and self.cache is not None:
            self.cache.put(key, self.config.model, _to_record(completion))
        return completion

    async def _with_retries(self, messages: list[dict[str, Any]], params: dict[str, Any], usage: Usage) -> Completion:
        last = "no attempt"
        for attempt in range(self.config.max_retries + 1):
            try:
                async with self._limit.semaphore():
                    return await self._once(messages, params, usage)
            except Retryable as exc:
                last = str(exc)
                if attempt == self.config.max_retries:
                    break
                usage.retries += 1
                backoff = min(0.05 * 2**attempt, 4.0) * (0.5 + self._rng.random())
                delay = exc.delay if exc.delay is not None else backoff
                log.warning("llm_retry", model=self.config.model, attempt=attempt + 1, reason=last, delay_s=delay)
                await asyncio.sleep(delay)
        raise LLMError(f"{self.config.model}: gave up after {self.config.max_retries + 1} attempts: {last}")

    async def _once(self, messages: list[dict[str, Any]], params: dict[str, Any], usage: Usage) -> Completion:
        started = time.perf_counter()
        self.requests_sent += 1
        usage.calls += 1
        try:
            reply = await self.transport.send(messages, params)
        finally:
            usage.latency_s += time.perf_counter() - started
        if reply is None:
            raise Retryable("empty response (no choices)")
        self._account(reply, usage)  # billed even when it turns out empty
        content, reasoning = split_reasoning(reply.content, reply.reasoning)
        if not reply.tool_calls and not (content or "").strip():
            raise Retryable("empty response (no content, no tool calls)")
        return Completion(
            content=content, tool_calls=reply.tool_calls, finish_reason=reply.finish_reason, reasoning=reasoning
        )

    def _account(self, reply: Reply, usage: Usage) -> None:
        usage.prompt_tokens += reply.prompt_tokens
        usage.completion_tokens += reply.completion_tokens
        cfg = self.config
        if cfg.cost_per_1k_input is not None and cfg.cost_per_1k_output is not None:
            usage.cost_usd += reply.prompt_tokens / 1000 * cfg.cost_per_1k_input
            usage.cost_usd += reply.completion_tokens / 1000 * cfg.cost_per_1k_output
        elif reply.cost is None:  # no price known for this model (local servers): unknown, not free
            usage.cost_unknown_calls += 1
        else:
            usage.cost_usd += reply.cost

    async def aclose(self) -> None:
        await self.transport.aclose()


def _to_record(completion: Completion) -> dict[str, Any]:
    return {
        "content": completion.content,
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in completion.tool_calls],
        "finish_reason": completion.finish_reason,
        "prompt_tokens": completion.usage.prompt_tokens,
        "completion_tokens": completion.usage.completion_tokens,
        "reasoning": completion.reasoning,
    }


def _from_record(record: dict[str, Any], cached: bool) -> Completion:
    usage = Usage(cached_calls=1, prompt_tokens=record["prompt_tokens"], completion_tokens=record["completion_tokens"])
    return Completion(
        content=record["content"],
        tool_calls=[RawToolCall(**c) for c in record["tool_calls"]],
        finish_reason=record["finish_reason"],
        usage=usage,
        cached=cached,
        reasoning=record.get("reasoning"),  # absent in caches written before reasoning was kept
    )
