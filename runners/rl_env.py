"""A Python environment for RL and evaluation loops: your code plays the assistant.

    env = ConversationEnv("examples/retail/scenario.yaml")
    observation = env.reset()                      # or env.reset(task_id="retail-003")
    done = False
    while not done:
        action = my_agent(observation)             # {"content": ...} or {"tool_calls": [{"name", "arguments"}]}
        observation, reward, done, info = env.step(action)
    env.close()

Inside is a whole session of the ordinary engine: the scenario's simulated user (offline or LLM)
with its private task, the tool executor on the session's own SQLite clone, and the validator,
whose verdict is the reward (1.0 accepted, else 0.0; `info` carries its reasons, sub-goals and
behaviour tags). The assistant role's policy is a bridge: each time the engine asks the assistant
to act, `step` returns that observation (system prompt, tool specs, the chat so far, exactly what a
deployed assistant sees) and waits for your action. The engine runs on its own event loop in a
background thread, so the API is plain synchronous calls; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from convosim.agents.policies import AssistantAction, AssistantObservation, PlannedCall
from convosim.config import Scenario, load_scenario
from convosim.runners.roles import PolicyHooks, derived_seed
from convosim.runners.run import load_inputs
from convosim.runners.session import SessionOutcome, SessionSpec
from convosim.runners.session_factory import SessionFactory

Observation = dict[str, Any]


class _Bridge:
    """The assistant policy the engine calls: hands each observation out, waits for the action."""

    def __init__(self, out: queue.Queue[tuple[str, Any]]) -> None:
        self.out = out
        self.actions: asyncio.Queue[AssistantAction] | None = None
        self.waiting: asyncio.Future[AssistantAction] | None = None

    async def act(self, observation: AssistantObservation) -> AssistantAction:
        if self.actions is None:
            self.actions = asyncio.Queue()
        self.out.put(("observation", observation))
        self.waiting = asyncio.ensure_future(self.actions.get())
        return await self.waiting

    def abandon(self) -> None:
        """Stop waiting for an action that will never come (the episode is closed mid-way)."""
        if self.waiting is not None and not self.waiting.done():
            self.waiting.cancel()


def _action(value: AssistantAction | dict[str, Any] | str) -> AssistantAction:
    """Text, an `AssistantAction`, or its dict form (`tool_calls` as name + arguments, or as an
    OpenAI message's `tool_calls` with `function.name` and JSON `function.arguments`)."""
    if isinstance(value, AssistantAction):
        return value
    if isinstance(value, str):
        return AssistantAction(content=value)
    calls = []
    for call in value.get("tool_calls") or []:
        fn = call.get("function", call)
        arguments = fn.get("arguments", {})
        if isinstance(arguments, str):
            with contextlib.suppress(ValueError):  # else kept as raw text: the executor answers an argument error
                arguments = json.loads(arguments or "{}")
        calls.append(PlannedCall(name=fn["name"], arguments=arguments))
    return AssistantAction(content=value.get("content"), tool_calls=tuple(calls), reasoning=value.get("reasoning"))


class ConversationEnv:
    def __init__(self, scenario: str | Path | Scenario, overrides: dict[str, Any] | None = None, timeout_s: float = 60):
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario, overrides)
        self.domain, self.tasks, self.rubrics = load_inputs(self.scenario)
        self.timeout_s = timeout_s
        self.episodes = 0
        self._out: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._bridge = _Bridge(self._out)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="convosim-env", daemon=True)
        self._thread.start()
        hooks = PolicyHooks(wrap_assistant=lambda _scenario_policy: self._bridge)
        self._factory = SessionFactory(self.scenario, self.domain, self.rubrics, hooks=hooks)
        self._call(self._factory.__aenter__())
        self._running: Future[SessionOutcome] | None = None

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout_s)

    def reset(self, task_id: str | None = None) -> Observation:
        """Start an episode on `task_id` (default: the scenario's tasks in turn); the first observation."""
        if self._running is not None and not self._running.done():
            raise RuntimeError("the episode is still running: step it to the end (done) before reset")
        task = (
            next(t for t in self.tasks if t.id == task_id) if task_id else self.tasks[self.episodes % len(self.tasks)]
        )
        trial = self.episodes
        self.episodes += 1
        session_id = f"{derived_seed(self.scenario.name, self.scenario.seed, task.id, trial, 'env'):016x}"
        spec = SessionSpec(idx=trial, session_id=session_id, task=task, trial=trial)
        self._bridge.actions = None  # made on the loop by the bridge's first act
        self._running = asyncio.run_coroutine_threadsafe(self._factory.run(spec), self._loop)
        self._running.add_done_callback(lambda f: self._out.put(("done", f)))
        kind, value = self._next()
        if kind != "observation":
            raise RuntimeError(f"the session ended before the assistant was asked anything: {value}")
        first: Observation = value
        return first

    def step(
        self, action: AssistantAction | dict[str, Any] | str
    ) -> tuple[Observation | None, float, bool, dict[str, Any]]:
        """Play one assistant move; the next observation, or (None, reward, True, info) at the end."""
        if self._running is None or self._bridge.actions is None:
            raise RuntimeError("call reset() first")
        actions = self._bridge.actions
        self._loop.call_soon_threadsafe(actions.put_nowait, _action(action))
        kind, value = self._next()
        if kind == "observation":
            return value, 0.0, False, {}
        outcome: SessionOutcome = value.result()
        verdict = outcome.verdict
        info = {
            "session_id": outcome.spec.session_id,
            "task_id": outcome.spec.task.id,
            "status": outcome.status,
            "end_reason": outcome.end_reason,
            "reasons": [r.model_dump() for r in verdict.reasons] if verdict else [{"code": outcome.status}],
            "subgoals_completed": verdict.subgoals_completed if verdict else 0,
            "subgoals_total": verdict.subgoals_total if verdict else len(outcome.spec.task.subgoals),
            "tags": list(verdict.tags) if verdict else [],
            "events": outcome.events,
        }
        return None, 1.0 if outcome.status == "accepted" else 0.0, True, info

    def _next(self) -> tuple[str, Any]:
        kind, value = self._out.get(timeout=self.timeout_s)
        if kind == "observation":
            observation: AssistantObservation = value
            return kind, {
                "system": observation.system,
                "tools": list(observation.tools),
                "messages": list(observation.messages),
            }
        return kind, value

    def close(self) -> None:
        """End the environment; an episode still running is abandoned (its session fails)."""
        try:
            if self._running is not None and not self._running.done():
                self._loop.call_soon_threadsafe(self._bridge.abandon)
                self._running.cancel()
                with contextlib.suppress(BaseException):
                    self._running.result(self.timeout_s)
            self._call(self._factory.__aexit__(None, None, None))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=self.timeout_s)

    def __enter__(self) -> ConversationEnv:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
