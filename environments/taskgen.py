"""Offline task generation: a seeded sampler over the tools' data dependencies, grounded in real rows.

A task starts from a real row (its values are what the user knows), then chains sub-goals so
each can use what earlier ones returned (query -> change -> confirm): a later call's argument
becomes a reference `${K.field}` when sub-goal K's output carries it. Changes get new values drawn
from other real rows (or other enum values). Every candidate is verified by replaying its gold
calls on a clean clone; a failing call, a change that changes nothing, or a duplicate (the same
calls, or the same tool sequence on the same record) is rejected with its reason.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp

from convosim.environments.domain import Domain
from convosim.environments.insert_roles import insert_roles
from convosim.environments.introspect import introspect
from convosim.environments.ownership import ownership
from convosim.environments.phrasing import label
from convosim.environments.simulated_tasks import generate_simulated_tasks
from convosim.environments.tasks import build_rubric
from convosim.environments.tools import ToolError, run_tool
from convosim.models import Ref, Task, ToolSpec


@dataclass
class GenerationReport:
    kept: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def reject(self, code: str, detail: str) -> None:
        self.rejected[code] += 1
        self.examples.setdefault(code, detail)


def key_params(tool: ToolSpec) -> set[str]:
    """Parameters that pick the record (used in WHERE/JOIN); the others are new values."""
    if tool.sql is None:
        return set(tool.required)
    statement = sqlglot.parse_one(tool.sql, read="sqlite")
    where = statement.args.get("where")
    found = {p.name for p in where.find_all(exp.Placeholder)} if where is not None else set()
    if isinstance(statement, exp.Insert):
        return set()
    for join in statement.find_all(exp.Join):
        found |= {p.name for p in join.find_all(exp.Placeholder)}
    return found


def _main_table(tool: ToolSpec) -> str | None:
    """The table a statement is about (the UPDATE/INSERT/DELETE target, or the first FROM)."""
    statement = sqlglot.parse_one(tool.sql or "", read="sqlite")
    table = statement.find(exp.Table)
    return table.name if table is not None else None


def _provides(tool: ToolSpec) -> set[str]:
    """The fields a tool's output carries: its SELECT list or RETURNING clause (or output schema)."""
    statement = sqlglot.parse_one(tool.sql or "", read="sqlite")
    returning = statement.args.get("returning")
    selects = returning.expressions if returning is not None else getattr(statement, "selects", [])
    names = {e.alias_or_name for e in selects if not isinstance(e, exp.Star) and e.alias_or_name != "*"}
    schema = tool.output_schema or {}
    return names | set((schema.get("items", schema)).get("properties", {}))


def _call(tool: ToolSpec, args: dict[str, Any]) -> tuple[str, str]:
    """A call as the task's `used` set holds it: the same call twice would answer two sub-goals."""
    return tool.name, repr(sorted(args.items()))


def _made(env: Any, tool: ToolSpec, args: dict[str, Any], used: set[tuple[str, str]]) -> bool:
    """Make a call the task has not made yet, on the task's own state; True (and now used) if it worked."""
    if _call(tool, args) in used:
        return False
    try:
        run_tool(env.db, tool, args)
    except ToolError:
        return False
    used.add(_call(tool, args))
    return True


def _scalar(value: Any) -> bool:
    return isinstance(value, int | float | str) and not isinstance(value, bool)


class TaskSampler:
    def __init__(
        self, domain: Domain, seed: int = 0, subgoals: tuple[int, int] = (2, 4), refusal_rate: float = 0.15
    ) -> None:
        self.domain = domain
        self.rng = random.Random(seed)
        self.refusal_rate = refusal_rate
        self.prefer: str | None = None
        self.min_sub, self.max_sub = subgoals
        self.tools = [t for t in domain.tools.values() if t.sql is not None]
        self.table_of = {t.name: _main_table(t) for t in self.tools}
        probe = domain.new_session()
        try:
            tables = introspect(probe.db)
        finally:
            probe.close()
        self.owners = ownership(tables)
        # An UPDATE picks its record by its WHERE keys; an INSERT hangs a new row off the customer's
        # records (its keys) and may take choices from the catalog (a product, a free slot).
        self.keys = {t.name: key_params(t) for t in self.tools}
        self.choices: dict[str, dict[str, str]] = {}
        for tool in self.tools:
            roles = insert_roles(tool.sql or "", tables, self.owners)
            if roles is not None:
                self.keys[tool.name], self.choices[tool.name] = set(roles.keys), roles.choices
        self.provides = {t.name: _provides(t) for t in self.tools}
        # the keys of a customer row: an output row carrying another value of one is someone else's
        self.customer_keys = {c.name for t in self.owners.customers for c in tables[t].primary_key}
        self.columns: dict[str, list[Any]] = {}
        for rows in domain.snapshot.values():
            for row in rows:
                for name, value in row.items():
                    if value is not None:
                        self.columns.setdefault(name, []).append(value)

    # --- one candidate ----------------------------------------------------------------------
    def candidate(self, prefer: str | None = None) -> Task | None:
        """One task; with `prefer`, that tool is tried first wherever it may go (coverage)."""
        self.prefer = prefer
        tables = [name for name, rows in self.domain.snapshot.items() if rows]
        people = [t for t in tables if t in self.owners.customers]
        row = dict(self.rng.choice(self.domain.snapshot[self.rng.choice(people or tables)]))
        known: dict[str, Any] = {k: v for k, v in row.items() if v is not None}
        self.own = set(known)  # fields whose current value is the customer's own data
        self.persona = {k: v for k, v in row.items() if k in self.customer_keys}
        source: dict[str, int] = {}  # field -> sub-goal that told the user its value
        env = self.domain.new_session()
        try:
            length = self.rng.randint(self.min_sub, self.max_sub) if prefer is None else self.max_sub
            subgoals: list[dict[str, Any]] = []
            used: set[tuple[str, str]] = set()
            wrote = refused = False
            for k in range(1, length + 1):
                refusal = self._refusal(env, known, used, k) if not (wrote or refused) and k > 1 else None
                if refusal is not None:
                    refused = True
                    tool, args = refusal
                    used.add(_call(tool, args))
                    subgoals.append(self._refused_subgoal(tool, args, source))
                    continue
                step = self._step(env, known, source, used, k, length, wrote)
                if step is None:
                    break
                tool, args, output = step
                wrote |= tool.kind == "write"
                used.add(_call(tool, args))
                subgoal = self._subgoal(tool, args, output, source)
                companion = self._companion(env, tool, args, known, used) if tool.kind == "write" else None
                if companion is not None:  # one change over two tables: both calls in one sub-goal
                    second = self._subgoal(companion[0], companion[1], {}, {})  # said in this breath: no refs
                    subgoal["requests"] += second["requests"]
                    subgoal["description"] = (
                        subgoal["description"].rstrip(".")
                        + "; and "
                        + second["description"][0].lower()
                        + second["description"][1:]
                    )
                check = self._check_after(env, tool, args, used) if tool.kind == "write" else None
                if check is not None:  # make the change and see it: one sub-goal, two calls
                    subgoal["requests"].append(check)
                    subgoal["description"] = subgoal["description"].rstrip(".") + ", then check the record."
                subgoals.append(subgoal)
                first = output[0] if isinstance(output, list) else output
                private = self.owners.is_private(self.table_of[tool.name])
                for name, value in first.items() if isinstance(first, dict) else []:
                    if value is not None:  # the latest record's values are the current ones
                        source[name] = k
                        known[name] = value
                        (self.own.add if private or not self.owners.known else self.own.discard)(name)
        finally:
            env.close()
        if len(subgoals) < self.min_sub:
            return None
        who = " ".join(f"{label(n)} {row[n]}" for n in ("name", "holder_name", "email") if n in row)
        goal = (
            "You want to "
            + "; then ".join(s["description"][0].lower() + s["description"][1:].rstrip(".") for s in subgoals)
            + "."
        )
        return Task.model_validate(
            {
                "id": "pending",
                "context": f"You are the customer ({who})." if who else "",
                "goal": goal,
                "subgoals": subgoals,
            }
        )

    def _step(
        self,
        env: Any,
        known: dict[str, Any],
        source: dict[str, int],
        used: set[tuple[str, str]],
        k: int,
        length: int,
        wrote: bool,
    ) -> tuple[ToolSpec, dict[str, Any], Any] | None:
        options = []
        for tool in self.tools:
            keys = self.keys[tool.name]
            if not keys or not keys <= set(known):
                continue
            if self.owners.is_private(self.table_of[tool.name]) and not (
                keys <= self.own and keys & self.owners.identifying
            ):
                continue  # a customer asks about their own records, picked by what identifies them
            if tool.kind == "write" and (k == 1 or (k == length and length > 2) or wrote):
                continue  # look something up first, and confirm after the change
            options.append(tool)
        self.rng.shuffle(options)
        if (k == length - 1 and not wrote) or (k > 1 and not wrote and self.rng.random() < 0.6):
            options.sort(key=lambda t: t.kind != "write")  # change something, then confirm it
        wanted = self.keys[self.prefer] - set(known) if self.prefer in self.keys else set()
        if wanted:  # the tool the set lacks needs a value no step has told yet: find it first
            options = [t for t in options if t.kind == "read"]
            options.sort(key=lambda t: not (self.provides[t.name] & wanted))
        options.sort(key=lambda t: t.name != self.prefer)  # the tool the set still lacks goes first
        for tool in options[:12]:
            for _ in range(3 if self.choices.get(tool.name) else 1):  # another product, another slot
                args = self._arguments(tool, known)
                if args is None or _call(tool, args) in used:
                    continue
                try:
                    output, _ = run_tool(env.db, tool, args)
                except ToolError:
                    continue
                if output in ([], {}) or self._someone_elses(output):
                    continue
                return tool, args, output
        return None

    def _companion(
        self, env: Any, write: ToolSpec, args: dict[str, Any], known: dict[str, Any], used: set[tuple[str, str]]
    ) -> tuple[ToolSpec, dict[str, Any]] | None:
        """The other half of a change that spans two tables: a new row that takes something from
        the catalog (an appointment takes a slot, a loan takes a copy of a book), and the write on
        that catalog row, keyed by the very choice just made. Made in the same sub-goal, so the
        task never leaves a two-step change half done."""
        said = {**known, **args}
        taken = {param: table for param, table in self.choices.get(write.name, {}).items() if param in args}
        for tool in self.tools:
            keys = self.keys[tool.name]
            if tool.kind != "write" or tool.name == write.name or len(keys) != 1:
                continue
            (key,) = keys
            if taken.get(key) != self.table_of[tool.name]:
                continue
            companion_args = self._arguments(tool, said)
            if companion_args is not None and _made(env, tool, companion_args, used):
                return tool, companion_args
        return None

    def _refusal(self, env: Any, known: dict[str, Any], used: set[tuple[str, str]], k: int) -> Any:
        """Sometimes a change the rules do not allow on the customer's own record (the tool's own
        guard refuses it: nothing would change): asked for anyway, and expected to be refused."""
        if self.rng.random() >= (0.5 if self.prefer else self.refusal_rate):
            return None
        writes = [t for t in self.tools if t.kind == "write" and self.keys[t.name] and self.keys[t.name] <= set(known)]
        if self.prefer:  # the set lacks this tool: only its refusal counts
            writes = [t for t in writes if t.name == self.prefer]
        self.rng.shuffle(writes)
        for tool in writes:
            if self.owners.is_private(self.table_of[tool.name]) and not self.keys[tool.name] <= self.own:
                continue
            args = self._arguments(tool, known)
            if args is None or _call(tool, args) in used:
                continue
            probe = self.domain.new_session()  # tried on a scratch clone: the task's own state is untouched
            try:
                run_tool(probe.db, tool, args)
            except ToolError as exc:
                if "nothing was changed" in str(exc):
                    return tool, args
            finally:
                probe.close()
        return None

    def _refused_subgoal(self, tool: ToolSpec, args: dict[str, Any], source: dict[str, int]) -> dict[str, Any]:
        subgoal = self._subgoal(tool, args, {}, source)
        subgoal["requests"][0]["expect"] = "refused"
        subgoal["facts"] = []
        subgoal["description"] = subgoal["description"].rstrip(".") + " (not allowed here: expect to be told so)."
        return subgoal

    def _check_after(
        self, env: Any, write: ToolSpec, args: dict[str, Any], used: set[tuple[str, str]]
    ) -> dict[str, Any] | None:
        """Half the time, a read of the record just changed, asked in the same breath (never a call
        the task already makes: the same words would then answer two sub-goals)."""
        if self.rng.random() >= 0.5:
            return None
        keys = self.keys[write.name]
        for tool in self.tools:
            if tool.kind != "read" or not self.keys[tool.name] or not self.keys[tool.name] <= keys:
                continue
            if self.table_of[tool.name] != self.table_of[write.name]:
                continue
            read_args = {n: args[n] for n in self.keys[tool.name]}
            if set(tool.required) <= set(read_args) and _made(env, tool, read_args, used):
                return {"tool": tool.name, "args": read_args}
        return None

    def _someone_elses(self, output: Any) -> bool:
        rows = output if isinstance(output, list) else [output]
        return any(
            isinstance(r, dict) and r.get(key) not in (None, value) for r in rows for key, value in self.persona.items()
        )

    def _arguments(self, tool: ToolSpec, known: dict[str, Any]) -> dict[str, Any] | None:
        args: dict[str, Any] = {}
        for name, schema in tool.properties.items():
            if name in self.keys[tool.name]:
                args[name] = known[name]
                continue
            current = known.get(name)
            if schema.get("format") == "email" and isinstance(current, str) and "@" in current:
                local, _, host = current.partition("@")  # a new address of the person's own, never another's
                args[name] = f"{local}.{self.rng.randint(2, 99)}@{host}"
                continue
            chosen_from = self.choices.get(tool.name, {}).get(name)
            rows = self.domain.snapshot.get(chosen_from or self.table_of[tool.name] or "", [])
            same_table = [r[name] for r in rows if r.get(name) is not None]
            pool = [v for v in schema.get("enum", []) if v != current] or [
                v for v in (same_table or self.columns.get(name, [])) if v != current and _scalar(v)
            ]
            if not pool:
                if name in tool.required:
                    return None
                continue
            args[name] = self.rng.choice(pool)
        return args

    def _subgoal(self, tool: ToolSpec, args: dict[str, Any], output: Any, source: dict[str, int]) -> dict[str, Any]:
        shown = {}
        for name, value in args.items():
            origin = source.get(name) if name in self.keys[tool.name] else None  # new values are never refs
            speakable = isinstance(value, int) or (isinstance(value, str) and "," not in value and len(value) < 40)
            shown[name] = str(Ref(origin, name)) if origin is not None and speakable else value
        first = output[0] if isinstance(output, list) and output else output
        facts = [
            n
            for n, v in (first.items() if isinstance(first, dict) else [])
            if not n.endswith("_id") and n not in args and _scalar(v)
        ]
        picked = sorted(self.rng.sample(facts, min(2, len(facts))))
        details = ", ".join(f"{label(n)} {v}" for n, v in args.items())
        description = tool.description.rstrip(".") + (f" ({details})." if details else ".")
        return {"description": description, "requests": [{"tool": tool.name, "args": shown}], "facts": picked}


def generate_tasks(
    domain: Domain,
    n: int,
    seed: int = 0,
    subgoals: tuple[int, int] = (2, 4),
    prefix: str = "gen",
    max_attempts: int | None = None,
) -> tuple[list[Task], GenerationReport]:
    """Up to `n` verified, distinct tasks, and a report of what was rejected and why."""
    if all(t.sql is None for t in domain.tools.values()):  # imported tools: no seed rows to start from
        simulated, rejected = generate_simulated_tasks(domain, n, seed, subgoals, prefix)
        report = GenerationReport(kept=len(simulated))
        report.rejected.update(rejected)
        return simulated, report
    sampler = TaskSampler(domain, seed, subgoals)
    report = GenerationReport()
    tasks: list[Task] = []
    exact: set[str] = set()
    near: set[str] = set()
    write_tools = sorted(t.name for t in sampler.tools if t.kind == "write")
    for attempt in range(max_attempts or n * 30):
        if len(tasks) >= n:
            break
        used = {r.tool for t in tasks for s in t.subgoals for r in s.requests}  # a refused request counts too
        missing = [w for w in write_tools if w not in used]
        # every write tool in the set: every other attempt goes to a missing one
        prefer = missing[(attempt // 2) % len(missing)] if missing and attempt % 2 == 1 else None
        task = sampler.candidate(prefer=prefer)
        if task is None:
            report.reject("too_short", "no chain of enough sub-goals from this record")
            continue
        calls = [(r.tool, sorted(r.args.items(), key=str)) for s in task.subgoals for r in s.requests]
        signature = repr(calls)
        shape = repr([(tool, [v for k, v in args if k in sampler.keys[tool]]) for tool, args in calls])
        if signature in exact:
            report.reject("duplicate", signature[:200])
            continue
        if shape in near:
            report.reject("near_duplicate", shape[:200])
            continue
        task = task.model_copy(update={"id": f"{prefix}-{len(tasks) + 1:04d}"})
        try:
            rubric = build_rubric(domain, task)
        except ValueError as exc:
            report.reject("replay_failed", str(exc)[:200])
            continue
        writes = any(
            domain.tools[r.tool].kind == "write" and r.expect == "done" for s in task.subgoals for r in s.requests
        )
        if writes and not rubric.expected_diff:
            report.reject("write_changes_nothing", task.goal[:200])
            continue
        exact.add(signature)
        near.add(shape)
        tasks.append(task)
    report.kept = len(tasks)
    return tasks, report
