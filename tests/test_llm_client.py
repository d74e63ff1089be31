"""The litellm client's robustness, against the test server over real HTTP."""

from __future__ import annotations

import asyncio
import time

import pytest

from convosim.agents.llm_tool_simulator import ToolSimulator
from convosim.llm.client import LLMClient, LLMError
from convosim.llm.config import ModelConfig
from convosim.llm.usage import UsageMeter
from convosim.models import ToolSpec
from convosim.testing import ChatReply, FaultPlan, ScriptedChatServer

HELLO = {"echo": lambda body: ChatReply(content="hello")}


def client_for(server: ScriptedChatServer, **config) -> tuple[LLMClient, UsageMeter]:
    meter = UsageMeter()
    settings = {"timeout_s": 2.0, "max_retries": 3, **config}
    return LLMClient(ModelConfig(model="openai/echo", api_base=server.base_url, **settings), meter), meter


def ask(client: LLMClient) -> str | None:
    async def once() -> str | None:
        try:
            completion = await client.complete([{"role": "user", "content": "hi"}], session_id="s", role="assistant")
            return completion.content
        finally:
            await client.aclose()

    return asyncio.run(once())


TRANSPORTS = pytest.mark.parametrize("transport", ["litellm", "openai-http"])


@TRANSPORTS
def test_rate_limit_honours_retry_after(transport) -> None:
    plan = FaultPlan({"rate_limit": 1.0}, retry_after_s=0.4)
    with ScriptedChatServer(HELLO, faults=plan) as server:
        client, meter = client_for(server, max_retries=1, transport=transport)
        started = time.perf_counter()
        with pytest.raises(LLMError, match="rate limited"):
            ask(client)
        assert time.perf_counter() - started >= 0.4, "waited as long as Retry-After said"
        assert server.request_count == 2
    usage = meter.by_session["s"]["assistant"]
    assert usage.retries == 1 and usage.failed_calls == 1 and usage.calls == 2


@TRANSPORTS
@pytest.mark.parametrize("kind", ["server_error", "empty_choices", "hang"])
def test_transient_faults_are_retried_until_success(kind, transport) -> None:
    responses = iter([kind, None, None, None])

    class FirstFails(FaultPlan):
        def draw(self) -> str | None:
            return next(responses)

    with ScriptedChatServer(HELLO, faults=FirstFails(hang_s=3.0)) as server:
        client, meter = client_for(server, timeout_s=0.5, transport=transport)
        assert ask(client) == "hello"
        assert server.request_count == 2
    assert meter.by_session["s"]["assistant"].retries == 1


def test_concurrency_limit_queues_instead_of_rejecting() -> None:
    with ScriptedChatServer(HELLO, latency_s=0.1) as server:
        client, _ = client_for(server, max_concurrency=2)

        async def many() -> list:
            return await asyncio.gather(
                *[client.complete([{"role": "user", "content": f"{i}"}], session_id="s", role="a") for i in range(6)]
            )

        started = time.perf_counter()
        results = asyncio.run(many())
        elapsed = time.perf_counter() - started
    assert [r.content for r in results] == ["hello"] * 6
    assert elapsed >= 0.3, "6 requests through 2 slots take at least 3 rounds of 0.1 s"


def test_explicit_prices_give_a_known_cost() -> None:
    with ScriptedChatServer(HELLO) as server:
        client, meter = client_for(server, cost_per_1k_input=1.0, cost_per_1k_output=2.0)
        ask(client)
    usage = meter.by_session["s"]["assistant"]
    assert usage.cost_known and usage.cost_usd > 0


ORDER_TOOL = ToolSpec(
    name="get_status",
    description="Get a status.",
    kind="read",
    parameters={"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]},
    phrasings=("Status of {id}?",),
    output_schema={"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]},
)


def test_simulated_tool_output_must_validate_against_its_schema() -> None:
    replies = iter(['{"state": 1}', '{"status": "shipped"}'])
    with ScriptedChatServer({"echo": lambda body: ChatReply(content=next(replies))}) as server:
        client, _ = client_for(server)
        simulator = ToolSimulator(client, "s")
        output, is_error = asyncio.run(simulator.run(ORDER_TOOL, {"id": 3}))
        assert (output, is_error) == ({"status": "shipped"}, False)
        retry_prompt = server.requests[1]["messages"][-1]["content"]
        assert "'status' is a required property" in retry_prompt


def test_simulated_tool_gives_up_with_a_tool_error() -> None:
    with ScriptedChatServer({"echo": lambda body: ChatReply(content="not json")}) as server:
        client, _ = client_for(server)
        output, is_error = asyncio.run(ToolSimulator(client, "s").run(ORDER_TOOL, {"id": 3}))
    assert is_error and "did not match the tool's schema" in output["error"]


@TRANSPORTS
@pytest.mark.parametrize("kind", ["rate_limit", "not_json"])
def test_date_form_retry_after_and_a_non_json_body_are_retried_by_both_transports(kind, transport) -> None:
    responses = iter([kind, None, None])

    class FirstFails(FaultPlan):
        def draw(self) -> str | None:
            return next(responses)

    with ScriptedChatServer(HELLO, faults=FirstFails(retry_after_s=0.0, retry_after_date=True)) as server:
        client, meter = client_for(server, max_retries=2, transport=transport)
        assert ask(client) == "hello"
        assert server.request_count == 2
    usage = meter.by_session["s"]["assistant"]
    assert usage.retries == 1 and usage.calls == 2 and usage.failed_calls == 0


def test_retry_after_reads_seconds_and_http_dates() -> None:
    from email.utils import formatdate

    from convosim.llm.transports import retry_after_seconds

    now = 1_800_000_000.0
    assert retry_after_seconds("2", now) == 2.0
    assert retry_after_seconds(formatdate(now + 5, usegmt=True), now) == 5.0
    assert retry_after_seconds(formatdate(now - 5, usegmt=True), now) == 0.0  # already past: no wait
    assert retry_after_seconds("3600", now) == 60.0  # capped
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None


@pytest.mark.parametrize(
    ("body", "content", "arguments", "tokens"),
    [
        ({"choices": [{"message": {"content": [{"type": "text", "text": "hi"}]}}]}, "hi", None, 0),
        (
            {
                "choices": [
                    {"message": {"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": {"x": 1}}}]}}
                ],
                "usage": {"prompt_tokens": "12", "completion_tokens": 3.0},
            },
            None,
            '{"x": 1}',
            15,
        ),
        ({"choices": [{"message": {"content": "ok"}}], "usage": {"prompt_tokens": "many"}}, "ok", None, 0),
    ],
)
def test_openai_bodies_in_odd_shapes_are_read(body, content, arguments, tokens) -> None:
    from convosim.llm.transports import reply_from_openai_json

    reply = reply_from_openai_json(body)
    assert reply is not None and reply.content == content
    assert (reply.tool_calls[0].arguments if reply.tool_calls else None) == arguments
    assert reply.prompt_tokens + reply.completion_tokens == tokens


def test_a_top_level_array_is_a_malformed_reply_to_retry() -> None:
    from convosim.llm.transports import Retryable, reply_from_openai_json

    with pytest.raises(Retryable, match="malformed"):
        reply_from_openai_json([{"choices": []}])


def test_function_transport_goes_through_the_same_retries_and_accounting() -> None:
    """An in-process model: no server, no network, behaviour stated as a function."""
    from convosim.llm.transports import FunctionTransport, Reply

    replies = iter([Reply(content="", tool_calls=[]), Reply(content="pong", tool_calls=[], prompt_tokens=4)])
    transport = FunctionTransport(lambda messages, params: next(replies))
    meter = UsageMeter()
    client = LLMClient(ModelConfig(model="fn/echo", max_retries=2), meter, transport=transport)

    async def once() -> str | None:
        try:
            reply = await client.complete([{"role": "user", "content": "ping"}], session_id="s", role="user")
            return reply.content
        finally:
            await client.aclose()

    assert asyncio.run(once()) == "pong"
    usage = meter.by_session["s"]["user"]
    assert transport.calls == 2 and usage.retries == 1 and usage.calls == 2 and usage.prompt_tokens == 4


@TRANSPORTS
def test_an_oversized_reply_is_refused(transport) -> None:
    """openai-http stops reading at the cap; litellm (whose HTTP client reads the whole body) still
    keeps the reply out of the session."""
    huge = "x" * 3_000_000
    with ScriptedChatServer({"echo": lambda body: ChatReply(content=huge)}) as server:
        client, meter = client_for(server, transport=transport, max_reply_bytes=1_000_000, max_retries=0)
        with pytest.raises(LLMError, match="larger than 1000000 bytes"):
            ask(client)
    assert meter.by_session["s"]["assistant"].failed_calls == 1
