"""How a request reaches a model: one small protocol, three implementations.

The client (`llm/client.py`) owns everything around a call: retries, the concurrency limit, the
cache and usage accounting, written once. A transport only sends one request and turns the answer
into a `Reply`, or raises `Retryable` (try again, maybe after a delay) or `LLMError` (do not).
`LiteLLMTransport` reaches any provider, `OpenAIHTTPTransport` is a plain POST to an
OpenAI-compatible server, and `FunctionTransport` answers in-process from a Python function, so
LLM-dependent code is tested without network and without depending on prompt wording.
"""

from __future__ import annotations

import email.utils
import json
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from convosim.llm.config import ModelConfig


class LLMError(RuntimeError):
    """The model could not give a usable answer (after retries)."""


class Retryable(Exception):
    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


@dataclass(frozen=True)
class RawToolCall:
    id: str
    name: str
    arguments: str  # as the model wrote it: may not even be JSON


@dataclass
class Reply:
    """A completion as any transport returns it, before checks and accounting."""

    content: str | None
    tool_calls: list[RawToolCall]
    finish_reason: str | None = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    reasoning: str | None = None  # the model's own reasoning field (`reasoning_content` / `reasoning`)


class Transport(Protocol):
    async def send(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> Reply | None:
        """One request; None for a reply without choices."""
        ...

    async def aclose(self) -> None: ...


MAX_RETRY_AFTER_S = 60.0


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header in either form RFC 9110 allows: delay-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


MAX_DEPTH = 32  # deeper JSON from a model is not a tool call anyone means; it also cannot be stored


def clean_text(text: str | None) -> str | None:
    """Model text as storable UTF-8: a lone surrogate (valid in a JSON escape, not in UTF-8) becomes
    U+FFFD instead of failing the store write of the whole run later."""
    if text is None:
        return None
    return _SURROGATE.sub("\ufffd", text)


_SURROGATE = re.compile("[\ud800-\udfff]")


_THINK = re.compile(r"\A\s*<think>(.*?)</think>\s*", re.DOTALL)


def split_reasoning(content: str | None, reasoning: str | None) -> tuple[str | None, str | None]:
    """(content, reasoning) with a leading `<think>...</think>` block moved out of the content.

    Servers differ: some return reasoning in its own field (`reasoning_content`, `reasoning`), some
    leave a model's `<think>` block in the text. Either way the answer the user sees never carries
    the block, and the reasoning is kept (joined, when a server sends both)."""
    if content:
        match = _THINK.match(content)
        if match:
            inline = match.group(1).strip()
            content = content[match.end() :]
            reasoning = "\n\n".join(r for r in ((reasoning or "").strip(), inline) if r) or None
    # litellm itself moves a `<think>` block into `reasoning_content`, keeping its newlines: both
    # transports give the same text.
    return content, (reasoning or "").strip() or None


def _reasoning_of(message: Any) -> str | None:
    """The reasoning a message carries, whatever the server named the field."""
    for name in ("reasoning_content", "reasoning"):
        value = message.get(name) if isinstance(message, dict) else getattr(message, name, None)
        if isinstance(value, str) and value.strip():
            return clean_text(value)
    return None


def _has_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def storable(value: Any, depth: int = 0) -> bool:
    """Can this parsed JSON be stored and exported as it is: not too deep, no lone surrogates."""
    if depth > MAX_DEPTH:
        return False
    if isinstance(value, str):
        return not _has_surrogate(value)
    if isinstance(value, dict):
        return all(storable(k, depth + 1) and storable(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(storable(v, depth + 1) for v in value)
    return True


def json_object_in(text: str | None) -> dict[str, Any]:
    """The JSON object a model wrote, also when it wrapped it in prose or a code fence: the one
    parser every LLM role uses for structured replies. Raises ValueError when there is none."""
    text = text or ""
    start, end = text.find("{"), text.rfind("}")
    data = json.loads(text[start : end + 1] if start != -1 and end > start else text)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _int(value: Any) -> int:
    """Token counts as servers send them: ints, floats, numeric strings, or junk (then 0)."""
    try:
        return max(int(float(value)), 0)
    except (TypeError, ValueError, OverflowError):
        return 0


def _text(content: Any) -> str | None:
    """Message content as text, also when a server sends a list of parts."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content]
        return "".join(parts)
    return str(content)


def _arguments(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value) if value is not None else ""


def reply_from_openai_json(data: Any) -> Reply | None:
    """An OpenAI-style chat completion body, tolerating the shapes servers get wrong."""
    if not isinstance(data, dict):
        raise Retryable(f"malformed reply: a JSON {type(data).__name__}, not an object")
    choices = data.get("choices") or []
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message") or {}
    raw_calls = message.get("tool_calls") or [] if isinstance(message, dict) else []
    calls = [
        RawToolCall(
            id=str(c.get("id") or f"call_{i}"),
            name=clean_text(str((c.get("function") or {}).get("name") or "")) or "",
            arguments=clean_text(_arguments((c.get("function") or {}).get("arguments"))) or "",
        )
        for i, c in enumerate(raw_calls if isinstance(raw_calls, list) else [])
        if isinstance(c, dict)
    ]
    usage = data.get("usage")
    tokens: dict[str, Any] = usage if isinstance(usage, dict) else {}
    return Reply(
        content=clean_text(_text(message.get("content"))) if isinstance(message, dict) else None,
        tool_calls=calls,
        finish_reason=choices[0].get("finish_reason"),
        prompt_tokens=_int(tokens.get("prompt_tokens")),
        completion_tokens=_int(tokens.get("completion_tokens")),
        reasoning=_reasoning_of(message),
    )


class FunctionTransport:
    """Answers from a Python function of (messages, params): deterministic, in-process, no network.
    Like pydantic-ai's FunctionModel: a test states behaviour, not prompt wording."""

    def __init__(self, fn: Callable[[list[dict[str, Any]], dict[str, Any]], Reply | Awaitable[Reply]]) -> None:
        self.fn = fn
        self.calls = 0

    async def send(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> Reply | None:
        self.calls += 1
        result = self.fn(messages, params)
        return await result if isinstance(result, Awaitable) else result

    async def aclose(self) -> None:
        return None


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


def _retry_after(exc: Exception) -> float | None:
    headers: Any = getattr(exc, "litellm_response_headers", None)
    response = getattr(exc, "response", None)
    if headers is None and response is not None:
        headers = getattr(response, "headers", None)
    if not headers:
        return None
    return retry_after_seconds(headers.get("retry-after") or headers.get("Retry-After"))


class LiteLLMTransport:
    """Any provider litellm reaches. litellm's own retries are off: the client's are the only ones."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self._pricing: dict[str, float] | None = None
        self.price_known: bool | None = None

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
            self.price_known = True
            return
        try:
            info = litellm.get_model_info(cfg.model)
            self.price_known = info.get("input_cost_per_token") is not None
        except Exception:
            self.price_known = False
        if not self.price_known:
            self._pricing = {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0}

    async def send(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> Reply | None:
        litellm = litellm_module()
        if self.price_known is None:
            self._resolve_pricing(litellm)
        model = self.config.model
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
            raise Retryable("rate limited (429)", _retry_after(exc)) from exc
        except (litellm.Timeout, litellm.APIConnectionError) as exc:
            raise Retryable(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        except (litellm.InternalServerError, litellm.ServiceUnavailableError) as exc:
            raise Retryable(f"server error: {str(exc)[:200]}") from exc
        except (litellm.AuthenticationError, litellm.PermissionDeniedError, litellm.NotFoundError) as exc:
            raise LLMError(f"{model}: {type(exc).__name__}: {str(exc)[:300]}") from exc
        except litellm.BadRequestError as exc:
            raise LLMError(f"{model}: bad request: {str(exc)[:300]}") from exc
        except litellm.APIError as exc:
            if (getattr(exc, "status_code", 0) or 0) >= 500:
                raise Retryable(f"server error {exc.status_code}") from exc
            raise LLMError(f"{model}: {str(exc)[:300]}") from exc
        except Exception as exc:  # any other provider error is this call's failure, counted, never a crash
            raise LLMError(f"{model}: {type(exc).__name__}: {str(exc)[:300]}") from exc
        if not getattr(response, "choices", None):
            return None
        choice = response.choices[0]
        message = choice.message
        reasoning = _reasoning_of(message)
        size = len(message.content or "") + len(reasoning or "")
        size += sum(len(c.function.arguments or "") for c in message.tool_calls or [])
        if size > self.config.max_reply_bytes:  # httpx has read it already; it still never enters a session
            raise LLMError(f"{model}: reply larger than {self.config.max_reply_bytes} bytes (max_reply_bytes)")
        calls = [
            RawToolCall(
                id=c.id or f"call_{i}",
                name=clean_text(c.function.name) or "",
                arguments=clean_text(_arguments(c.function.arguments)) or "",
            )
            for i, c in enumerate(getattr(message, "tool_calls", None) or [])
        ]
        tokens = getattr(response, "usage", None)
        # litellm has already priced the response (once per call) while building it.
        cost = (getattr(response, "_hidden_params", None) or {}).get("response_cost") if self.price_known else None
        return Reply(
            content=clean_text(_text(message.content)),
            tool_calls=calls,
            finish_reason=choice.finish_reason,
            prompt_tokens=_int(getattr(tokens, "prompt_tokens", 0)),
            completion_tokens=_int(getattr(tokens, "completion_tokens", 0)),
            cost=float(cost) if cost is not None else None,
            reasoning=reasoning,
        )

    async def aclose(self) -> None:
        return None


class OpenAIHTTPTransport:
    """A plain OpenAI-compatible POST (aiohttp): for local servers where litellm's CPU cost dominates."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self._http: Any = None

    async def send(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> Reply | None:
        import aiohttp

        cfg = self.config
        if not cfg.api_base:
            raise LLMError(f"{cfg.model}: transport openai-http needs api_base")
        if self._http is None:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=cfg.max_concurrency),
                timeout=aiohttp.ClientTimeout(total=cfg.timeout_s),
            )
        body = {**params, "model": params["model"].split("/", 1)[-1], "messages": messages}
        headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
        try:
            url = f"{cfg.api_base.rstrip('/')}/chat/completions"
            async with self._http.post(url, json=body, headers=headers) as response:
                if response.status == 429:
                    raise Retryable("rate limited (429)", retry_after_seconds(response.headers.get("Retry-After")))
                if response.status >= 500:
                    raise Retryable(f"server error {response.status}")
                if response.status >= 400:
                    raise LLMError(f"{cfg.model}: HTTP {response.status}: {(await response.text())[:300]}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_chunked(65536):  # never more than the cap in memory
                    size += len(chunk)
                    if size > cfg.max_reply_bytes:
                        raise LLMError(f"{cfg.model}: reply larger than {cfg.max_reply_bytes} bytes (max_reply_bytes)")
                    chunks.append(chunk)
                text = b"".join(chunks).decode("utf-8", "replace")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise Retryable(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise Retryable(f"malformed reply: not JSON: {text[:80]!r}") from exc
        return reply_from_openai_json(data)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


def transport_for(config: ModelConfig) -> Transport:
    if config.transport == "openai-http":
        return OpenAIHTTPTransport(config)
    return LiteLLMTransport(config)
