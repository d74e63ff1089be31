"""Tasks for a domain whose tools have no SQL (imported ones), verified like any other.

There are no seed rows to start from, so a task starts from a record it names itself (an
`appointment_id` drawn from the parameter's schema): look it up, change it, then look again, or
look up what a read tells about it. Every write tool is the anchor of some task before any is used
twice. Each candidate is verified by the same gold replay as SQL tasks (the simulation answers it,
and its state is checked), and duplicates are rejected.
"""

from __future__ import annotations

import random
from typing import Any

from convosim.environments.domain import Domain
from convosim.environments.phrasing import label
from convosim.environments.simulation import identifying, is_identifier, value
from convosim.environments.tasks import build_rubric
from convosim.environments.tools import ToolError, run_tool
from convosim.models import Task, ToolSpec


def _facts(output: Any, args: dict[str, Any], rng: random.Random) -> list[str]:
    first = output[0] if isinstance(output, list) and output else output
    names = [
        n
        for n, v in (first.items() if isinstance(first, dict) else [])
        if n not in args and not is_identifier(n) and isinstance(v, int | float | str) and not isinstance(v, bool)
    ]
    return sorted(rng.sample(names, min(2, len(names))))


class SimulatedTaskSampler:
    def __init__(self, domain: Domain, seed: int = 0, subgoals: tuple[int, int] = (2, 3)) -> None:
        self.domain = domain
        self.rng = random.Random(seed)
        self.min_sub, self.max_sub = subgoals
        self.reads = [t for t in domain.tools.values() if t.kind == "read"]
        self.writes = [t for t in domain.tools.values() if t.kind == "write"]

    def _args(self, tool: ToolSpec, known: dict[str, Any], new: bool) -> dict[str, Any]:
        """Known values for what names the record; drawn ones for the rest (what a change sets)."""
        args: dict[str, Any] = {}
        for name in tool.required:
            if name in known:
                args[name] = known[name]
            else:
                args[name] = value(tool.properties[name], name, self.rng)
                if not new and is_identifier(name):
                    known[name] = args[name]
        return args

    def _call(self, env: Any, tool: ToolSpec, known: dict[str, Any], new: bool = False) -> dict[str, Any] | None:
        args = self._args(tool, known, new)
        try:
            output, _ = run_tool(env.db, tool, args)
        except ToolError:
            return None
        details = ", ".join(f"{label(n)} {v}" for n, v in args.items())
        return {
            "description": tool.description.rstrip(".") + (f" ({details})." if details else "."),
            "requests": [{"tool": tool.name, "args": args}],
            "facts": [] if tool.kind == "write" else _facts(output, args, self.rng),
        }

    def candidate(self, anchor: ToolSpec | None) -> Task | None:
        known: dict[str, Any] = {}
        env = self.domain.new_session()
        subgoals: list[dict[str, Any]] = []
        try:
            keys = identifying(anchor) if anchor is not None else []
            for name in keys:
                assert anchor is not None
                known[name] = value(anchor.properties[name], name, self.rng)
            about = [r for r in self.reads if r.required and set(r.required) <= set(known)]
            others = [r for r in self.reads if r not in about]
            self.rng.shuffle(about)
            self.rng.shuffle(others)
            plan: list[tuple[ToolSpec, bool]] = []
            if about:
                plan.append((about[0], False))  # look the record up first
            elif others:
                plan.append((others.pop(), False))
            if anchor is not None:
                plan.append((anchor, True))  # change it
            # then look again at the record, or ask about something else the tools know (every read gets used)
            again = about[1:2] or about[:1]
            follow = others[:1] if others and (not again or self.rng.random() < 0.4) else again
            length = self.rng.randint(self.min_sub, self.max_sub)
            plan += [(t, False) for t in follow][: max(0, length - len(plan))]
            for tool, is_change in plan:
                subgoal = self._call(env, tool, known, new=is_change)
                if subgoal is not None:
                    subgoals.append(subgoal)
        finally:
            env.close()
        if len(subgoals) < self.min_sub:
            return None
        goal = "You want to " + "; then ".join(s["description"][0].lower() + s["description"][1:-1] for s in subgoals)
        return Task.model_validate({"id": "pending", "context": "", "goal": goal + ".", "subgoals": subgoals})


def generate_simulated_tasks(
    domain: Domain, n: int, seed: int = 0, subgoals: tuple[int, int] = (2, 3), prefix: str = "gen"
) -> tuple[list[Task], dict[str, int]]:
    """Up to `n` verified, distinct tasks; and what was rejected, by reason."""
    sampler = SimulatedTaskSampler(domain, seed, subgoals)
    tasks: list[Task] = []
    rejected: dict[str, int] = {}
    seen: set[str] = set()
    anchors: list[ToolSpec | None] = list(sampler.writes) or [None]
    for attempt in range(n * 20):
        if len(tasks) >= n:
            break
        anchor = anchors[attempt % len(anchors)] if attempt < len(anchors) or sampler.rng.random() < 0.8 else None
        task = sampler.candidate(anchor)
        if task is None:
            rejected["too_short"] = rejected.get("too_short", 0) + 1
            continue
        signature = repr([(r.tool, sorted(r.args.items(), key=str)) for s in task.subgoals for r in s.requests])
        if signature in seen:
            rejected["duplicate"] = rejected.get("duplicate", 0) + 1
            continue
        task = task.model_copy(update={"id": f"{prefix}-{len(tasks) + 1:04d}"})
        try:
            build_rubric(domain, task)
        except ValueError:
            rejected["replay_failed"] = rejected.get("replay_failed", 0) + 1
            continue
        seen.add(signature)
        tasks.append(task)
    return tasks, rejected
