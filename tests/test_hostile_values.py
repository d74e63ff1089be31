"""Hostile values from a model never take down a run: a lone surrogate or JSON nested hundreds of
levels deep is cleaned or refused for its own session, and every session is accounted for."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from convosim.environments.domain import load_domain
from convosim.environments.tasks import load_tasks
from convosim.messages import AssistantMessage, Verdict
from convosim.runners.store import RunStore
from convosim.testing import ChatReply, ScriptedChatServer
from convosim.testing.scripted import OfflineResponders

from support import run, scenario_for, transcripts

DEEP = '{"order_id": ' + '{"a": ' * 300 + "1" + "}" * 300 + "}"


def hostile(responder, rate: float, seed: int):
    """Wraps the assistant double: at `rate`, a reply carries a lone surrogate or deep arguments."""
    rng = random.Random(seed)
    counts = {"surrogate": 0, "deep_arguments": 0}

    async def respond(body):
        reply = await responder(body)
        roll = rng.random()
        if roll < rate / 2 and reply.content:
            counts["surrogate"] += 1
            return ChatReply(content=reply.content + " \ud83d")  # half of an emoji pair
        if roll < rate and reply.tool_calls:
            counts["deep_arguments"] += 1
            name, _ = reply.tool_calls[0]
            return ChatReply(tool_calls=((name, DEEP),))
        return reply

    return respond, counts


@pytest.mark.parametrize("transport", ["litellm", "openai-http"])
def test_hostile_model_values_are_contained_in_their_session(tmp_path: Path, retail_dir: Path, transport: str) -> None:
    domain = load_domain(retail_dir)
    tasks, _ = load_tasks(retail_dir / "tasks.yaml", domain)
    base = scenario_for(retail_dir / "scenario.yaml")
    responders = OfflineResponders(domain.tools, tasks, base.rules, base.persona).responders()
    respond, counts = hostile(responders["assistant"], rate=0.3, seed=3)
    with ScriptedChatServer({"assistant": respond}) as server:
        role = {"policy": "llm", "model": "openai/assistant", "api_base": server.base_url, "transport": transport}
        scenario = scenario_for(retail_dir / "scenario.yaml", sessions=24, concurrency=8, roles={"assistant": role})
        result = run(scenario, tmp_path / "run")
    print(f"{transport}: injected {counts}; stats {result.stats['accepted']} accepted of 24")
    assert counts["surrogate"] > 5 and counts["deep_arguments"] > 5
    sessions = transcripts(tmp_path / "run")
    assert len(sessions) == 24 and result.stats["sessions"] == 24
    for row, events in sessions.values():
        assert row["status"] in {"accepted", "rejected", "failed"}
        if row["status"] != "accepted":
            assert row["reasons"], row
        said = " ".join(e.content for e in events if isinstance(e, AssistantMessage))
        assert "\ud83d" not in said  # cleaned before it was recorded
    for name in ("dataset.jsonl", "rejected.jsonl"):
        for line in (tmp_path / "run" / name).read_text(encoding="utf-8").splitlines():
            json.loads(line)


def test_an_unstorable_event_fails_its_session_alone(tmp_path: Path) -> None:
    """The store's last line: an event no encoder takes fails that session, with its reason."""
    store = RunStore(tmp_path / "run.sqlite")
    store.start_run("r", {}, 0)
    common = {"session_id": "bad", "turn": 1, "sender": "assistant", "recipient": "user"}
    events = [
        AssistantMessage(id="a1", content="fine", **common),
        AssistantMessage(id="a2", content="not \udc00 storable", **common),
    ]
    verdict = Verdict(id="v", session_id="bad", turn=1, sender="validator", recipient="supervisor", accepted=True)
    args = {"run_id": "r", "task_id": "t", "trial": 0, "end_reason": "completed", "started_at": 0.0}
    status = store.write_session(session_id="bad", idx=0, status="accepted", events=events, verdict=verdict, **args)
    good = store.write_session(session_id="ok", idx=1, status="accepted", events=events[:1], verdict=verdict, **args)
    rows = {r["session_id"]: r for r in store.sessions()}
    store.close()
    assert (status, good) == ("failed", "accepted")
    assert rows["bad"]["status"] == "failed" and rows["ok"]["status"] == "accepted"
    assert rows["bad"]["reasons"][0]["code"] == "session_failed"
    assert "cannot be stored" in rows["bad"]["reasons"][0]["detail"]["error"]
