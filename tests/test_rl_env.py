"""The environment API: Python code plays the assistant against the simulated user, the session's
own database and the validator, whose verdict is the reward."""

from __future__ import annotations

import asyncio

from convosim.agents.offline_assistant import OfflineAssistantPolicy
from convosim.agents.policies import AssistantObservation
from convosim.environments.phrasing import PhraseBook
from convosim.messages import ToolResult
from convosim.runners.rl_env import ConversationEnv

from conftest import EXAMPLES


def test_a_capable_agent_drives_full_sessions_to_a_reward_of_one() -> None:
    with ConversationEnv(EXAMPLES / "retail" / "scenario.yaml") as env:
        rewards = []
        for task_id in ("retail-001", "retail-010", "retail-044"):  # 044 asks for a change that is refused
            agent = OfflineAssistantPolicy(PhraseBook(env.domain.tools), seed=3)
            observation = env.reset(task_id)
            assert observation["tools"] and observation["system"] == env.domain.policy
            assert [m["role"] for m in observation["messages"]] == ["user"]  # only what a deployed assistant sees
            steps, done = 0, False
            while not done:
                action = asyncio.run(agent.act(AssistantObservation(**observation)))
                observation, reward, done, info = env.step(action)
                steps += 1
                assert steps < 80
            rewards.append(reward)
            assert info["task_id"] == task_id and info["status"] == "accepted", info["reasons"]
            assert info["subgoals_completed"] == info["subgoals_total"] > 0
            calls = [r for e in info["events"] if isinstance(e, ToolResult) for r in e.results]
            assert calls and any(not r.is_error for r in calls)  # tools ran against the session's database
        assert rewards == [1.0, 1.0, 1.0]
        assert "refusal" in info["tags"]


def test_an_agent_that_never_helps_gets_nothing_and_the_dict_form_works() -> None:
    with ConversationEnv(EXAMPLES / "telecom" / "scenario.yaml") as env:
        observation = env.reset()
        # an OpenAI-style message with a tool call, then only apologies
        action = {"tool_calls": [{"function": {"name": "get_line", "arguments": '{"phone_number": "000"}'}}]}
        observation, reward, done, info = env.step(action)
        assert not done and observation["messages"][-1]["role"] == "tool"
        steps = 0
        while not done:
            observation, reward, done, info = env.step("Sorry, I can't help with that.")
            steps += 1
            assert steps < 80
        assert reward == 0.0 and info["status"] == "rejected"
        assert {r["code"] for r in info["reasons"]} & {"not_completed", "state_mismatch", "fact_missing"}
        again = env.reset()  # the next episode starts cleanly
        assert [m["role"] for m in again["messages"]] == ["user"]
        env.step("Sorry, I can't help with that.")
