"""Task files and rubrics: a rubric is the gold calls replayed on a fresh clone of the template.

Replaying at load time also verifies every task: a gold call that errors, a reference to an
output field that does not exist, or a fact that never appears in an output is reported with the
task file and task id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from convosim.environments.domain import Domain
from convosim.environments.tools import argument_errors
from convosim.errors import ConvosimError, from_validation_error
from convosim.models import PLACEHOLDER, Fact, Ref, Rubric, Task, ToolRequest
from convosim.yamlio import load_data

_TASKS = TypeAdapter(list[Task])


def field_value(outputs: list[Any], name: str) -> tuple[bool, Any]:
    """The first value of `name` among outputs (rows, or lists of rows)."""
    for output in outputs:
        rows = output if isinstance(output, list) else [output]
        for row in rows:
            if isinstance(row, dict) and name in row:
                return True, row[name]
    return False, None


def resolve_args(args: dict[str, Any], outputs_by_subgoal: dict[int, list[Any]]) -> dict[str, Any]:
    """Replace `${K.field}` references with values from sub-goal K's outputs."""
    resolved = {}
    for key, value in args.items():
        ref = Ref.parse(value)
        if Ref.looks_like(value):
            raise KeyError(f"argument {key}: {value!r} is not a reference: write ${{K.field}}, K a sub-goal number")
        if ref:
            k, name = ref.subgoal, ref.field
            found, val = field_value(outputs_by_subgoal.get(k, []), name)
            if not found:
                raise KeyError(f"argument {key}: ${{{k}.{name}}} has no value (no such output field in sub-goal {k})")
            value = val
        resolved[key] = value
    return resolved


def build_rubric(domain: Domain, task: Task) -> Rubric:
    """Replay the task's gold calls on a fresh clone; raise ValueError naming what failed."""
    env = domain.new_session()
    try:
        outputs: dict[int, list[Any]] = {}
        gold: list[tuple[int, ToolRequest]] = []
        facts: list[Fact] = []
        for k, subgoal in enumerate(task.subgoals, start=1):
            outputs[k] = []
            for j, request in enumerate(subgoal.requests):
                where = f"subgoals[{k - 1}].requests[{j}]"
                tool = domain.tools.get(request.tool)
                if tool is None:
                    raise ValueError(f"{where}: unknown tool {request.tool!r}")
                try:
                    args = resolve_args(request.args, outputs)
                except KeyError as exc:
                    raise ValueError(f"{where}: {exc.args[0]}") from exc
                problems = argument_errors(tool, args)
                if problems:
                    raise ValueError(f"{where}: {'; '.join(problems)}")
                result = env.call("gold", request.tool, args)
                gold.append((k, ToolRequest(tool=request.tool, args=args, expect=request.expect)))
                if request.expect == "refused":
                    if not result.is_error:
                        raise ValueError(f"{where}: expect: refused, but gold call {request.tool} succeeded")
                    continue  # refused: nothing written, nothing to learn from
                if result.is_error:
                    raise ValueError(f"{where}: gold call {request.tool} failed: {result.output['error']}")
                outputs[k].append(result.output)
            for name in subgoal.facts:
                found, value = field_value(outputs[k], name)
                if not found:
                    raise ValueError(f"subgoals[{k - 1}].facts: {name!r} is not an output field of this sub-goal")
                facts.append(Fact(subgoal=k, field=name, value=value))
        expected_hash, expected_diff = env.final_state()
        return Rubric(
            task_id=task.id,
            expected_state_hash=expected_hash,
            expected_diff=expected_diff,
            facts=tuple(facts),
            gold_calls=tuple(gold),
        )
    finally:
        env.close()


def _texts(task: Task) -> list[tuple[str, str]]:
    """The task's words the user simulator may say: a template placeholder in them would be spoken."""
    out = [("context", task.context), ("goal", task.goal)]
    return out + [(f"subgoals[{k}].description", sg.description) for k, sg in enumerate(task.subgoals)]


def load_tasks(path: str | Path, domain: Domain) -> tuple[list[Task], dict[str, Rubric]]:
    """Load and verify a task file; returns the tasks and their rubrics keyed by task id."""
    path = Path(path)
    data = load_data(path)
    if isinstance(data, dict) and "tasks" in data:
        data = data["tasks"]
    if not isinstance(data, list) or not data:
        raise ConvosimError(path, None, "must be a non-empty list of tasks")
    try:
        tasks = _TASKS.validate_python(data)
    except ValidationError as exc:
        raise from_validation_error(path, exc, prefix="tasks") from exc
    rubrics: dict[str, Rubric] = {}
    for i, task in enumerate(tasks):
        if task.id in rubrics:
            raise ConvosimError(path, f"tasks[{i}].id", f"duplicate task id {task.id!r}")
        for where, text in _texts(task):
            if PLACEHOLDER.search(text):
                raise ConvosimError(
                    path, f"task {task.id!r} (tasks[{i}]).{where}", f"unresolved placeholder in {text!r}"
                )
        try:
            rubrics[task.id] = build_rubric(domain, task)
        except ValueError as exc:
            raise ConvosimError(path, f"task {task.id!r} (tasks[{i}])", str(exc)) from exc
    return tasks, rubrics
