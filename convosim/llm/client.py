"""One client per model: litellm calls with timeouts, retries, back-pressure, cache and accounting.

litellm is imported lazily (its import costs ~2 s and ~200 MB) and only after
LITELLM_LOCAL_MODEL_COST_MAP is set, so it never fetches its cost map from the internet; no
litellm global is touched. Retries are ours (429 honours Retry-After, 5xx/timeouts/empty replies
back off) because litellm's `max_parallel_requests` rejects instead of queueing and its cache
needs proxy extras.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from convosim.llm.cache import ResponseCache, cache_key
from convosim.llm.config import ModelConfig
from convosim.llm.usage import Usage, UsageMeter

log = structlog.get_logger("convosim.llm")


_QUIETED = False


def litellm_module() -> Any:
    """Import litellm on first use only, with its cost map read locally (never from the internet).

    Its "Provider List" banner on every unpriced model is silenced at first use (never at import).
    """
    global _QUIETED
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    if not _QUIETED:
        litellm.suppress_debug_info = True
        _QUIETED = True
    return litellm


class LLMError(RuntimeError):
    """The model could not give a usable answer (after retries)."""


class _Retryable(Exception):
    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class _Limit:
    """An asyncio.Semaphore created on first use, inside the running loop."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._semaphore: asyncio.Semaphore | None = None

    def semaphore(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.size)
        return self._semaphore


@dataclass(frozen=True)
class RawToolCall:
    id: str
    name: str
    arguments: str  # as the model wrote it: may not even be JSON


@dataclass
class Completion:
    content: str | None
    tool_calls: list[RawToolCall]
    finish_reason: str | None
    usage: Usage = field(default_factory=Usage)
    cached: bool = False


def _retry_after(exc: Exception) -> float | None:
    headers: Any = getattr(exc, "litellm_response_headers", None)
    response = getattr(exc, "response", None)
    if headers is None and response is not None:
        headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return min(float(value), 60.0) if value is not None else None
    except ValueError:
        return None


class LLMClient:
    def __init__(self, config: ModelConfig, meter: UsageMeter, cache: ResponseCache | None = None) -> None:
        self.config = config
        self.meter = meter
        self.cache = cache
        self._limit = _Limit(config.max_concurrency)
        self._rng = random.Random(0)
        self.requests_sent = 0
        self._pricing: dict[str, float] | None = None  # per-token prices passed to litellm, if any
        self._price_known: bool | None = None
        self._http: Any = None  # aiohttp session of the openai-http transport

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
            completion = await self._with_retries(messages, params, usage)
        except LLMError:
            usage.failed_calls += 1
            self.meter.record(session_id, role, usage)
            raise
        completion.usage = usage
        self.meter.record(session_id, role, usage)
        if key is not None and self.cache is not None:
            self.cache.put(key, self.config.model, _to_record(completion))
        return completion

    async def _with_retries(self, messages: list[dict[str, Any]], params: dict[str, Any], usage: Usage) -> Completion:
        last = "no attempt"
        for attempt in range(self.config.max_retries + 1):
            try:
                async with self._limit.semaphore():
                    return await self._once(messages, params, usage)
            except _Retryable as exc:
                last = str(exc)
                if attempt == self.config.max_retries:
                    break
                usage.retries += 1
                backoff = min(0.05 * 2**attempt, 4.0) * (0.5 + self._rng.random())
                delay = exc.delay if exc.delay is not None else backoff
                log.warning("llm_retry", model=self.config.model, attempt=attempt + 1, reason=last, delay_s=delay)
                await asyncio.sleep(delay)
        raise LLMError(f"{self.config.model}: gave up after {self.config.max_retries + 1} attempts: {last}")

    def _resolve_pricing(self, litellm: Any) -> None:
        """Decide once whether this model's cost is knowable, and how litellm should price it.

        An unpriced (local) model gets explicit zero prices so litellm skips its slow failing price
        lookup on every call; its cost is still reported as unknown, never as 0.
        """
        cfg = self.config
        if cfg.cost_per_1k_input is not None and cfg.cost_per_1k_output is not None:
            self._pricing = {
                "input_cost_per_token": cfg.cost_per_1k_input / 1000,
                "output_cost_per_token": cfg.cost_per_1k_output / 1000,
            }
            self._price_known = True
            return
        try:
            info = litellm.get_model_info(cfg.model)
            self._price_known = info.get("input_cost_per_token") is not None
        except Exception:
            self._price_known = False
        if not self._price_known:
            self._pricing = {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0}

    async def _once(self, messages: list[dict[str, Any]], params: dict[str, Any], usage: Usage) -> Completion:
        started = time.perf_counter()
        self.requests_sent += 1
        usage.calls += 1
        try:
            if self.config.transport == "openai-http":
                reply = await self._via_http(messages, params)
            else:
                reply = await self._via_litellm(messages, params)
        finally:
            usage.latency_s += time.perf_counter() - started
        if reply is None:
            raise _Retryable("empty response (no choices)")
        if not reply.tool_calls and not (reply.content or "").strip():
            raise _Retryable("empty response (no content, no tool calls)")
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
        return Completion(content=reply.content, tool_calls=reply.tool_calls, finish_reason=reply.finish_reason)

    async def _via_litellm(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> _Reply | None:
        litellm = litellm_module()
        if self._price_known is None:
            self._resolve_pricing(litellm)
        try:
            response = await litellm.acompletion(
                messages=messages,
                api_base=self.config.api_base,
                api_key=self.config.api_key or ("not-needed" if self.config.api_base else None),
                timeout=self.config.timeout_s,
                num_retries=0,
                max_retries=0,
                **(self._pricing or {}),
                **params,
            )
        except litellm.RateLimitError as exc:
            raise _Retryable("rate limited (429)", _retry_after(exc)) from exc
        except (litellm.Timeout, litellm.APIConnectionError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        except (litellm.InternalServerError, litellm.ServiceUnavailableError) as exc:
            raise _Retryable(f"server error: {str(exc)[:200]}") from exc
        except litellm.APIError as exc:
            if getattr(exc, "status_code", 0) >= 500:
                raise _Retryable(f"server error {exc.status_code}") from exc
            raise LLMError(f"{self.config.model}: {str(exc)[:300]}") from exc
        except litellm.BadRequestError as exc:
            raise LLMError(f"{self.config.model}: bad request: {str(exc)[:300]}") from exc
        if not getattr(response, "choices", None):
            return None
        choice = response.choices[0]
        message = choice.message
        calls = [
            RawToolCall(id=c.id or f"call_{i}", name=c.function.name or "", arguments=c.function.arguments or "")
            for i, c in enumerate(getattr(message, "tool_calls", None) or [])
        ]
        tokens = getattr(response, "usage", None)
        # litellm has already priced the response (once per call) while building it.
        cost = (getattr(response, "_hidden_params", None) or {}).get("response_cost") if self._price_known else None
        return _Reply(
            content=message.content,
            tool_calls=calls,
            finish_reason=choice.finish_reason,
            prompt_tokens=int(getattr(tokens, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(tokens, "completion_tokens", 0) or 0),
            cost=float(cost) if cost is not None else None,
        )

    async def _via_http(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> _Reply | None:
        """A plain OpenAI-compatible POST (aiohttp): for local servers where litellm's CPU cost dominates."""
        import aiohttp

        if not self.config.api_base:
            raise LLMError(f"{self.config.model}: transport openai-http needs api_base")
        if self._http is None:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.config.max_concurrency),
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
            )
        body = {**params, "model": params["model"].split("/", 1)[-1], "messages": messages}
        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        try:
            async with self._http.post(
                f"{self.config.api_base.rstrip('/')}/chat/completions", json=body, headers=headers
            ) as response:
                if response.status == 429:
                    value = response.headers.get("Retry-After")
                    raise _Retryable("rate limited (429)", min(float(value), 60.0) if value else None)
                if response.status >= 500:
                    raise _Retryable(f"server error {response.status}")
                if response.status >= 400:
                    raise LLMError(f"{self.config.model}: HTTP {response.status}: {(await response.text())[:300]}")
                data = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        choices = data.get("choices") or []
        if not choices:
            return None
        message = choices[0].get("message") or {}
        calls = [
            RawToolCall(
                id=c.get("id") or f"call_{i}",
                name=(c.get("function") or {}).get("name") or "",
                arguments=(c.get("function") or {}).get("arguments") or "",
            )
            for i, c in enumerate(message.get("tool_calls") or [])
        ]
        tokens = data.get("usage") or {}
        return _Reply(
            content=message.get("content"),
            tool_calls=calls,
            finish_reason=choices[0].get("finish_reason"),
            prompt_tokens=int(tokens.get("prompt_tokens") or 0),
            completion_tokens=int(tokens.get("completion_tokens") or 0),
            cost=None,
        )

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


@dataclass
class _Reply:
    """A completion as any transport returns it, before checks and accounting."""

    content: str | None
    tool_calls: list[RawToolCall]
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cost: float | None


def _to_record(completion: Completion) -> dict[str, Any]:
    return {
        "content": completion.content,
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in completion.tool_calls],
        "finish_reason": completion.finish_reason,
        "prompt_tokens": completion.usage.prompt_tokens,
        "completion_tokens": completion.usage.completion_tokens,
    }


def _from_record(record: dict[str, Any], cached: bool) -> Completion:
    usage = Usage(cached_calls=1, prompt_tokens=record["prompt_tokens"], completion_tokens=record["completion_tokens"])
    return Completion(
        content=record["content"],
        tool_calls=[RawToolCall(**c) for c in record["tool_calls"]],
        finish_reason=record["finish_reason"],
        usage=usage,
        cached=cached,
    )
