"""Every role played by an LLM through litellm over real HTTP, against the shipped test server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from convosim.agents.offline_language import CONFIRM_RE
from convosim.config import Scenario
from convosim.environments.domain import load_domain
from convosim.environments.tasks import load_tasks
from convosim.messages import UserMessage
from convosim.rules.user_rules import Persona, UserRules
from convosim.testing import FaultPlan, ScriptedChatServer
from convosim.testing.scripted import OfflineResponders

from support import run, scenario_for, transcripts

LLM_ROLES = ("user", "assistant", "validator")
MODEL_OF = {
    "user": "openai/user",
    "assistant": "openai/assistant",
    "validator": "openai/judge",
    "tool_executor": "openai/tool",
}


@pytest.fixture(scope="module")
def retail(retail_dir):
    domain = load_domain(retail_dir)
    tasks, _ = load_tasks(retail_dir / "tasks.yaml", domain)
    return domain, tasks


def llm_scenario(retail_dir: Path, base_url: str, roles=LLM_ROLES, **overrides) -> Scenario:
    role_cfg = {r: {"policy": "llm", "model": MODEL_OF[r], "api_base": base_url, "timeout_s": 5} for r in roles}
    return scenario_for(retail_dir / "scenario.yaml", roles=role_cfg, **overrides)


@pytest.fixture
def server(retail, retail_dir) -> Iterator[ScriptedChatServer]:
    domain, tasks = retail
    scenario = scenario_for(retail_dir / "scenario.yaml")
    responders = OfflineResponders(domain.tools, tasks, scenario.rules, scenario.persona)
    with ScriptedChatServer(responders.responders()) as srv:
        yield srv


def test_all_llm_roles_over_http_produce_accepted_multi_turn_sessions(tmp_path, retail_dir, retail, server) -> None:
    _, tasks = retail
    result = run(llm_scenario(retail_dir, server.base_url, sessions=6, concurrency=6), tmp_path / "run")
    stats = result.stats
    assert stats["accepted"] == 6
    assert stats["mean_subgoals"] >= 2.5 and stats["mean_turns"] >= 20 and stats["mean_user_turns"] >= 6
    usage = stats["llm_usage"]
    assert set(usage) == {"user", "assistant", "judge"}
    assert usage["judge"]["calls"] == 6, "the judge's calls are counted"
    assert all(u["cost_usd"] is None for u in usage.values()), "a local model's cost is unknown, not 0"
    assert all(u["prompt_tokens"] > 0 and u["latency_s"] > 0 for u in usage.values())
    assert stats["preflight"]["calls"] == stats["preflight"]["models_checked"] == 3  # one per LLM role
    assert server.request_count - 3 == stats["llm_requests_sent"] == sum(u["calls"] for u in usage.values())

    by_model: dict[str, list[dict]] = {}
    for body in server.requests:
        by_model.setdefault(body["model"], []).append(body)
    # The user simulator's prompt carries the rules and its task; the assistant's never carries task text.
    sessions_only = {m: [b for b in bodies if b["messages"][0]["role"] == "system"] for m, bodies in by_model.items()}
    by_model = {m: bodies for m, bodies in sessions_only.items() if bodies}  # the pre-flight pings left out
    user_prompt = by_model["user"][0]["messages"][0]["content"]
    assert "at most 2" in user_prompt and "task_complete" in user_prompt and "never invent" in user_prompt.lower()
    private = {t.goal for t in tasks} | {t.context for t in tasks} | {s.description for t in tasks for s in t.subgoals}
    for body in by_model["assistant"]:
        blob = json.dumps(body)
        assert not [p for p in private if p and p in blob]
        assert body.get("tools"), "the assistant uses native tool calling"
    for body in by_model["user"]:
        assert all(m["role"] != "tool" and "tool_calls" not in m for m in body["messages"])


def test_plain_http_transport_gives_the_same_dataset(tmp_path, retail_dir, server) -> None:
    via_litellm = run(llm_scenario(retail_dir, server.base_url, sessions=4), tmp_path / "a")
    roles = {
        r: {"policy": "llm", "model": MODEL_OF[r], "api_base": server.base_url, "transport": "openai-http"}
        for r in LLM_ROLES
    }
    direct = run(scenario_for(retail_dir / "scenario.yaml", sessions=4, roles=roles), tmp_path / "b")
    assert direct.stats["accepted"] == via_litellm.stats["accepted"] == 4
    assert (tmp_path / "a" / "dataset.jsonl").read_bytes() == (tmp_path / "b" / "dataset.jsonl").read_bytes()


def test_mixed_policies_llm_user_with_offline_assistant(tmp_path, retail_dir, server) -> None:
    result = run(llm_scenario(retail_dir, server.base_url, roles=("user",), sessions=4), tmp_path / "run")
    assert result.stats["accepted"] == 4
    assert {b["model"] for b in server.requests} == {"user"}


def test_cache_replays_a_run_with_zero_requests(tmp_path, retail_dir, server) -> None:
    scenario = llm_scenario(retail_dir, server.base_url, sessions=4, cache=tmp_path / "cache.sqlite")
    run(scenario, tmp_path / "first")
    sent = server.request_count
    assert sent > 0
    second = run(scenario, tmp_path / "second")
    assert server.request_count == sent, "the cached rerun must not reach the server"
    assert second.stats["llm_requests_sent"] == 0
    assert (tmp_path / "first" / "dataset.jsonl").read_bytes() == (tmp_path / "second" / "dataset.jsonl").read_bytes()
    usage = second.stats["llm_usage"]
    assert all(u["cached_calls"] == u["calls"] == 0 or u["cached_calls"] > 0 for u in usage.values())


@pytest.mark.parametrize("transport", ["litellm", "openai-http"])
def test_faults_of_every_kind_never_lose_a_session(tmp_path, retail_dir, retail, transport) -> None:
    """Every fault kind at a seeded rate, over real HTTP, through each transport: every session is
    accounted for with a reason, and the usage counted equals the server's own count of requests."""
    from convosim.testing.server import EXTRA_FAULTS, FAULT_KINDS

    domain, tasks = retail
    base = scenario_for(retail_dir / "scenario.yaml")
    responders = OfflineResponders(domain.tools, tasks, base.rules, base.persona).responders()
    kinds = (*FAULT_KINDS, *EXTRA_FAULTS)
    plan = FaultPlan({k: 0.2 / len(kinds) for k in kinds}, seed=3, retry_after_s=0.05, hang_s=1.5)
    plan.retry_after_date = transport == "openai-http"  # the HTTP-date form of Retry-After, too
    n = 40  # every fault kind is still injected many times (about 160 faults)
    with ScriptedChatServer(responders, faults=plan) as srv:
        roles = {
            r: {
                "policy": "llm",
                "model": MODEL_OF[r],
                "api_base": srv.base_url,
                "timeout_s": 0.6,
                "max_retries": 3,
                "transport": transport,
            }
            for r in ("user", "assistant")
        }
        scenario = scenario_for(retail_dir / "scenario.yaml", sessions=n, concurrency=40, roles=roles)
        result = run(scenario, tmp_path / "run")
        injected = dict(srv.faults_injected)
        served = srv.request_count
    stats = result.stats
    counted = sum(u["calls"] for u in stats["llm_usage"].values())
    late = sum(u["calls"] for u in stats.get("late_llm_usage", {}).values())
    print(f"{transport}: faults {injected}; {served} requests, {counted} + {late} late + preflight counted; {stats}")
    assert set(injected) == set(kinds)
    assert counted + late + stats["preflight"]["calls"] == served, "every request the server saw is counted"
    assert stats["sessions"] == n
    assert stats["accepted"] + stats["rejected"] + stats["failed"] == n
    rows = [row for row, _ in transcripts(tmp_path / "run").values()]
    assert len(rows) == n and len({r["session_id"] for r in rows}) == n
    for row in rows:
        assert row["status"] in {"accepted", "rejected", "failed"}
        if row["status"] != "accepted":
            assert row["reasons"], row
    dataset = (tmp_path / "run" / "dataset.jsonl").read_text().splitlines()
    rejected = (tmp_path / "run" / "rejected.jsonl").read_text().splitlines()
    assert len(dataset) + len(rejected) == n and len(dataset) == stats["dataset_rows"]
    # the test double answers each task the same way: repeats are caught at export, not exported
    assert stats["accepted"] == stats["dataset_rows"] + stats["rejected_at_export"]
    assert len({json.dumps(json.loads(line)["messages"]) for line in dataset}) == len(dataset)
    assert stats["accepted"] >= n // 2, stats
    assert stats["tool_error_rate"] > 0, "malformed and unknown tool calls come back as tool errors"
    assert stats["llm_usage"]["assistant"]["retries"] > 0


def test_litellm_is_not_imported_or_configured_by_our_imports() -> None:
    code = (
        "import sys, os\n"
        "import convosim.cli, convosim.runners.run, convosim.llm.client, convosim.agents.llm_user\n"
        "assert 'litellm' not in sys.modules, 'litellm imported at import time'\n"
        "assert 'LITELLM_LOCAL_MODEL_COST_MAP' not in os.environ\n"
        "from convosim.llm.client import litellm_module\n"
        "m = litellm_module()\n"
        "assert os.environ['LITELLM_LOCAL_MODEL_COST_MAP'] == 'True'\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("LITELLM")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_user_cannot_finish_in_the_message_that_confirms_a_change(tmp_path, retail_dir, retail) -> None:
    """A model that says "yes, go ahead" and task_complete together must not lose the write."""
    domain, tasks = retail
    base = scenario_for(retail_dir / "scenario.yaml")
    offline = OfflineResponders(domain.tools, tasks, base.rules, base.persona)
    eager = []

    async def eager_user(body):
        reply = await offline.user(body)
        data = json.loads(reply.content)
        if CONFIRM_RE.search(body["messages"][-1]["content"]):  # this message answers a confirmation request
            data["task_complete"] = True  # peers' simulators do exactly this
            eager.append(data["message"])
        from convosim.testing import ChatReply

        return ChatReply(content=json.dumps(data))

    with ScriptedChatServer({**offline.responders(), "user": eager_user}) as srv:
        result = run(llm_scenario(retail_dir, srv.base_url, roles=("user",), sessions=3), tmp_path / "run")
    assert result.stats["accepted"] == 3 and len(eager) >= 3  # every session had a change to confirm
    for _, events in transcripts(tmp_path / "run").values():
        users = [e for e in events if isinstance(e, UserMessage)]
        assert sum(u.done for u in users) == 1 and users[-1].done


@pytest.mark.live
def test_live_provider_smoke(tmp_path, retail_dir) -> None:
    import os

    model = os.environ.get("CONVOSIM_LIVE_MODEL", "openai/gpt-4o-mini")
    if not any(os.environ.get(k) for k in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "CONVOSIM_LIVE_MODEL")):
        pytest.skip("no provider key in the environment")
    roles = {"assistant": {"policy": "llm", "model": model, "temperature": 0}}
    result = run(scenario_for(retail_dir / "scenario.yaml", sessions=2, roles=roles), tmp_path / "run")
    assert result.stats["sessions"] == 2 and result.stats["failed"] == 0


def test_an_isolated_llm_user_counts_the_same_usage_as_in_process(tmp_path, retail_dir, server) -> None:
    """The user host sends its LLM usage back with each reply: nothing billed goes uncounted."""
    runs = {}
    for name, isolate in (("in", []), ("iso", ["user"])):
        scenario = llm_scenario(
            retail_dir, server.base_url, roles=("user",), sessions=4, concurrency=4, isolate=isolate
        )
        runs[name] = run(scenario, tmp_path / name).stats
    inproc, isolated = runs["in"]["llm_usage"]["user"], runs["iso"]["llm_usage"]["user"]
    assert inproc["calls"] > 0 and "user_host" in runs["iso"]
    for key in ("calls", "prompt_tokens", "completion_tokens", "failed_calls", "retries"):
        assert isolated[key] == inproc[key], key
    assert (tmp_path / "iso" / "dataset.jsonl").read_bytes() == (tmp_path / "in" / "dataset.jsonl").read_bytes()


def _reworded(original: Any) -> Any:
    """Prompt templates with every word of their own replaced: only the placeholders survive."""
    import re
    from string import Template

    def template(name: str) -> Template:
        lines = original(name).template.splitlines()
        kept = [" ".join(re.findall(r"\$\w+", line)) or "(instructions, reworded)" for line in lines]
        return Template("Reworded.\n" + "\n".join(kept))

    return template


def test_test_doubles_do_not_depend_on_prompt_wording(tmp_path, retail_dir, server, monkeypatch) -> None:
    """Reword every prompt (only the $placeholders kept): the LLM path still runs and is accepted,
    because the test doubles read what a request carries by its shape, not by its words."""
    from convosim.agents import prompts

    monkeypatch.setattr(prompts, "template", _reworded(prompts.template))
    result = run(llm_scenario(retail_dir, server.base_url, sessions=3, concurrency=3), tmp_path / "run")
    assert result.stats["accepted"] == 3
    assert result.stats["llm_usage"]["judge"]["calls"] == 3
    texts = [m["content"] for r in server.requests for m in r["messages"] if isinstance(m.get("content"), str)]
    assert any(t.startswith("Reworded.") for t in texts)


def test_the_tool_double_reads_a_reworded_prompt_by_shape(retail, monkeypatch) -> None:
    import asyncio

    from convosim.agents import prompts
    from convosim.agents.llm_tool_simulator import ToolSimulator
    from convosim.llm.client import LLMClient
    from convosim.llm.config import ModelConfig
    from convosim.llm.usage import UsageMeter
    from convosim.models import ToolSpec

    domain, tasks = retail
    monkeypatch.setattr(prompts, "template", _reworded(prompts.template))
    schema = {"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]}
    tool = ToolSpec.model_validate({**domain.tools["get_order"].model_dump(), "output_schema": schema, "sql": None})
    responders = OfflineResponders(domain.tools, tasks, UserRules(), Persona())
    with ScriptedChatServer({"tool": responders.tool}) as server:
        config = ModelConfig(model="openai/tool", api_base=server.base_url, timeout_s=5)
        output, is_error = asyncio.run(ToolSimulator(LLMClient(config, UsageMeter()), "s").run(tool, {"order_id": 1}))
    assert not is_error and isinstance(output["status"], str)


def test_preflight_stops_a_run_before_it_writes_anything(tmp_path, retail_dir) -> None:
    """An unreachable endpoint is found by one call per role, not by every session failing."""
    import socket

    from convosim.errors import ConvosimError

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    role = {"policy": "llm", "model": "openai/assistant", "api_base": f"http://127.0.0.1:{port}/v1", "timeout_s": 2}
    scenario = scenario_for(retail_dir / "scenario.yaml", sessions=4, roles={"assistant": role})
    with pytest.raises(ConvosimError) as err:
        run(scenario, tmp_path / "run")
    assert str(err.value).startswith("roles.assistant: pre-flight call failed")
    assert not (tmp_path / "run").exists()


PRICED = {"cost_per_1k_input": 0.5, "cost_per_1k_output": 1.5}


def test_plan_estimates_the_run_within_a_quarter(tmp_path, retail_dir, server) -> None:
    """A pilot of 8 sessions spread over a 40-session run predicts its calls and tokens (±25%)."""
    from convosim.runners.plan import plan_run

    roles = {r: {**cfg, **PRICED} for r, cfg in llm_scenario(retail_dir, server.base_url).roles.model_dump().items()}
    scenario = scenario_for(retail_dir / "scenario.yaml", sessions=40, concurrency=8, roles=roles)
    estimate = plan_run(scenario, pilot=8)
    actual = run(scenario, tmp_path / "run").stats
    real_calls = sum(u["calls"] for u in actual["llm_usage"].values())
    real_tokens = sum(u["prompt_tokens"] + u["completion_tokens"] for u in actual["llm_usage"].values())
    real_cost = sum(u["cost_usd"] for u in actual["llm_usage"].values())
    print(f"plan: {estimate['total_calls']} calls, {estimate['total_tokens']} tokens, ${estimate['total_cost_usd']}")
    print(f"real: {real_calls} calls, {real_tokens} tokens, ${real_cost:.4f}")
    assert estimate["pilot_sessions"] == 8 and not (tmp_path / "plan").exists()
    assert abs(estimate["total_calls"] - real_calls) <= 0.25 * real_calls
    assert abs(estimate["total_tokens"] - real_tokens) <= 0.25 * real_tokens
    assert abs(estimate["total_cost_usd"] - real_cost) <= 0.25 * real_cost


def test_max_cost_stops_within_one_call_and_resume_goes_on(tmp_path, retail_dir, server) -> None:
    from convosim.runners.run import run_scenario

    roles = {"assistant": {"policy": "llm", "model": "openai/assistant", "api_base": server.base_url, **PRICED}}
    free = run(scenario_for(retail_dir / "scenario.yaml", sessions=12, concurrency=1, roles=roles), tmp_path / "free")
    per_call = free.stats["llm_usage"]["assistant"]["cost_usd"] / free.stats["llm_usage"]["assistant"]["calls"]
    cap = free.stats["llm_usage"]["assistant"]["cost_usd"] / 3
    capped = scenario_for(
        retail_dir / "scenario.yaml", sessions=12, concurrency=1, roles=roles, limits={"max_cost_usd": cap}
    )
    stopped = run(capped, tmp_path / "run").stats
    budget = stopped["budget"]
    print(f"cap ${cap:.5f}, spent ${budget['spent_usd']:.5f}, one call about ${per_call:.5f}")
    assert budget["reached"] and cap <= budget["spent_usd"] <= cap + 2 * per_call  # the call in flight at the cap
    assert 0 < stopped["accepted"] < 12
    sessions = run_scenario(
        scenario_for(
            retail_dir / "scenario.yaml", sessions=12, concurrency=1, roles=roles, limits={"max_cost_usd": 10 * cap}
        ),
        tmp_path / "run",
        show_progress=False,
        resume=True,
    ).stats
    assert sessions["sessions"] == 12 and sessions["accepted"] == 12
