"""An OpenAI-compatible chat-completions server that answers from a script.

Tests and benchmarks start it on 127.0.0.1 and point litellm at it (`api_base`), so the LLM path
is exercised over real HTTP without any provider. Replies come from per-model responders (like
pydantic-ai's FunctionModel: a callable that sees the request and returns a reply); latency and
faults (429 with Retry-After, 500, hangs, malformed tool-call arguments, unknown tool names, empty
choices) are injected by a seeded plan so a faulty run is reproducible.
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import json
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class ChatReply:
    """What a responder returns: text, or tool calls as (name, arguments) pairs."""

    content: str | None = None
    tool_calls: tuple[tuple[str, dict[str, Any] | str], ...] = ()
    reasoning: str | None = None  # sent as `reasoning_content`, as DeepSeek, vLLM and Qwen servers do


Responder = Callable[[dict[str, Any]], ChatReply | Awaitable[ChatReply]]
FAULT_KINDS = ("rate_limit", "server_error", "hang", "malformed_args", "unknown_tool", "empty_choices")
EXTRA_FAULTS = ("not_json",)  # drawn only when asked for by name


@dataclass
class FaultPlan:
    """Per-request fault probabilities (each drawn independently, seeded)."""

    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    retry_after_s: float = 0.05
    retry_after_date: bool = False  # send Retry-After as an HTTP-date (RFC 9110 allows both forms)
    hang_s: float = 30.0

    def __post_init__(self) -> None:
        unknown = set(self.rates) - set(FAULT_KINDS) - set(EXTRA_FAULTS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    @classmethod
    def uniform(cls, total: float, seed: int = 0, **kwargs: Any) -> FaultPlan:
        return cls({k: total / len(FAULT_KINDS) for k in FAULT_KINDS}, seed=seed, **kwargs)

    def draw(self) -> str | None:
        with self._lock:
            roll = self._rng.random()
        acc = 0.0
        for kind in (*FAULT_KINDS, *EXTRA_FAULTS):
            acc += self.rates.get(kind, 0.0)
            if roll < acc:
                return kind
        return None


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class ScriptedChatServer:
    """`with ScriptedChatServer({"assistant": fn}) as server: ... server.base_url ...`"""

    def __init__(
        self,
        responders: dict[str, Responder],
        latency_s: float = 0.0,
        faults: FaultPlan | None = None,
        host: str = "127.0.0.1",
        record_requests: bool = True,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the test server listens on loopback only")
        self.responders = responders
        self.latency_s = latency_s
        self.faults = faults or FaultPlan()
        self.host = host
        self.port = 0
        self.requests: list[dict[str, Any]] = []  # every request body, when record_requests (tests)
        self.record_requests = record_requests
        self._count = 0
        self.faults_injected: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def request_count(self) -> int:
        with self._lock:
            return self._count

    # --- HTTP -------------------------------------------------------------------------------
    def _retry_after(self) -> str:
        if self.faults.retry_after_date:
            return email.utils.formatdate(time.time() + self.faults.retry_after_s, usegmt=True)
        return f"{self.faults.retry_after_s:g}"

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        with self._lock:
            self._count += 1
            if self.record_requests:
                self.requests.append(body)
        fault = self.faults.draw()
        if fault:
            with self._lock:
                self.faults_injected[fault] = self.faults_injected.get(fault, 0) + 1
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if fault == "rate_limit":
            return web.json_response(
                {"error": {"message": "rate limited", "type": "rate_limit_error", "code": "rate_limit"}},
                status=429,
                headers={"Retry-After": self._retry_after()},
            )
        if fault == "server_error":
            return web.json_response({"error": {"message": "boom", "type": "server_error"}}, status=500)
        if fault == "not_json":
            return web.Response(text="<html>502 Bad Gateway</html>", content_type="text/html")
        if fault == "hang":
            await asyncio.sleep(self.faults.hang_s)
        model = str(body.get("model", ""))
        responder = self.responders.get(model) or self.responders.get("*")
        if responder is None:
            return web.json_response({"error": {"message": f"no responder for model {model!r}"}}, status=404)
        reply = responder(body)
        if inspect.isawaitable(reply):
            reply = await reply
        return web.json_response(self._completion(body, reply, fault))

    def _completion(self, body: dict[str, Any], reply: ChatReply, fault: str | None) -> dict[str, Any]:
        prompt = _tokens(json.dumps(body.get("messages", [])))
        created = int(time.time())
        if fault == "empty_choices":
            return {
                "id": "chatcmpl-empty",
                "object": "chat.completion",
                "created": created,
                "model": body.get("model"),
                "choices": [],
                "usage": {"prompt_tokens": prompt, "completion_tokens": 0, "total_tokens": prompt},
            }
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.reasoning is not None:
            message["reasoning_content"] = reply.reasoning
        if reply.tool_calls:
            calls = []
            for i, (name, args) in enumerate(reply.tool_calls):
                arguments = args if isinstance(args, str) else json.dumps(args)
                if fault == "malformed_args":
                    arguments = arguments[: max(1, len(arguments) // 2)]
                if fault == "unknown_tool":
                    name = f"{name}_v2"
                calls.append(
                    {
                        "id": f"call_srv_{self.request_count}_{i}",
                        "type": "function",
                        "function": {"name": name, "arguments": arguments},
                    }
                )
            message["tool_calls"] = calls
        completion = _tokens(json.dumps(message))
        return {
            "id": f"chatcmpl-{self.request_count}",
            "object": "chat.completion",
            "created": created,
            "model": body.get("model"),
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}
            ],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> ScriptedChatServer:
        self._thread = threading.Thread(target=self._serve, name="scripted-chat-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test server did not start")
        return self

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # this thread's loop: aiohttp looks it up
        self._loop = loop
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/chat/completions", self._chat)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, self.host, 0)
        loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._runner = runner
        self._ready.set()
        loop.run_forever()
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:  # e.g. requests still "hanging" on purpose
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> ScriptedChatServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
