"""One real call of a tool on a fresh clone of the template, with arguments from real rows.

Both hand-written tools (at load) and generated ones (at `tools expand`) must survive it: a tool
whose SQL names a missing column, or that returns several rows while promising one, is a broken
tool whether or not a task happens to call it.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from convosim.environments.database import QueryTimeout, SessionDatabase
from convosim.environments.phrasing import sample_value
from convosim.environments.tools import argument_errors
from convosim.models import ToolSpec

Rows = Mapping[str, Sequence[Mapping[str, Any]]]


def row_arguments(tool: ToolSpec, snapshot: Rows, offset: int = 0) -> dict[str, Any]:
    """Arguments taken from real rows: each parameter from the `offset`-th row of a table with that column."""
    args: dict[str, Any] = {}
    for name in tool.properties:
        for rows in snapshot.values():
            if len(rows) > offset and rows[offset].get(name) is not None:
                args[name] = rows[offset][name]
                break
    return args


def sample_arguments(tool: ToolSpec, snapshot: Rows, offset: int = 0) -> dict[str, Any]:
    """Arguments for a trial call: real-row values, typed samples for required ones no row has.

    An insert gets fresh values where the target table's column is unique in the sample rows
    (ids, emails), or every trial insert would collide with the row it copied."""
    args = {k: v for k, v in row_arguments(tool, snapshot, offset).items() if not argument_errors_for(tool, k, v)}
    for name in tool.required:
        args.setdefault(name, sample_value(tool.properties[name]))  # e.g. an empty table: the SQL must still run
    target = INSERT_TARGET.match(tool.sql or "") if tool.kind == "write" else None
    rows = snapshot.get(target.group(1), ()) if target else ()
    for name, value in list(args.items()):
        taken = {r.get(name) for r in rows}
        if value in taken and len(taken) == len(rows):
            fresh = _fresh(value, taken)
            if not argument_errors_for(tool, name, fresh):
                args[name] = fresh
    return args


INSERT_TARGET = re.compile(r"\s*INSERT\s+(?:OR\s+\w+\s+)?INTO\s+[\"`\[]?(\w+)", re.IGNORECASE)


def _fresh(value: Any, taken: set[Any]) -> Any:
    """A value like `value` that no row has: the next free number, or a renamed email or text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return max([v for v in taken if isinstance(v, int)] + [value]) + 1
    if not isinstance(value, str):
        return value
    digits = re.search(r"(\d+)(?!.*\d)", value)
    for n in range(1, 10_000):
        if digits:
            width = len(digits.group(1))
            number = str(int(digits.group(1)) + n).zfill(width)
            candidate = value[: digits.start()] + number + value[digits.end() :]
        elif "@" in value:
            candidate = f"new{n}.{value}"
        else:
            candidate = f"{value} {n + 1}"
        if candidate not in taken:
            return candidate
    return value


def argument_errors_for(tool: ToolSpec, name: str, value: Any) -> list[str]:
    """Schema problems of one argument on its own (a real value may not fit a narrower parameter)."""
    single = tool.model_copy(update={"parameters": {"type": "object", "properties": {name: tool.properties[name]}}})
    return argument_errors(single, {name: value})


def trial_call(db: SessionDatabase, tool: ToolSpec, snapshot: Rows, strict: bool = False) -> str | None:
    """Why one real call of `tool` on `db` (a throwaway clone) fails, or None when the SQL ran.

    A database rule refusing the sample (a constraint, a trigger's RAISE) or nothing matching is a
    pass: the statement was prepared and run against the real schema. `strict` (for generated
    tools, which must work as proposed) makes a refused write a failure too."""
    args = sample_arguments(tool, snapshot)
    problems = argument_errors(tool, args)
    if problems:
        return f"cannot build a valid sample call from real rows ({'; '.join(problems)}): give the parameter examples"
    if tool.sql is None:
        return None
    try:
        rows, _ = db.execute(tool.sql, {n: args.get(n) for n in tool.properties}, write=tool.kind == "write")
    except sqlite3.IntegrityError as exc:
        return f"refused by the database with {args}: {exc}" if strict else None
    except QueryTimeout as exc:
        return f"a call with {args} did not finish: {exc}"
    except sqlite3.DatabaseError as exc:
        return f"failed on the template database with {args}: {exc}"
    if tool.returns == "one" and len(rows) > 1:
        return (
            f"returns: one, but a call with {args} returned {len(rows)} rows "
            "(narrow the query, or declare returns: many)"
        )
    return None
