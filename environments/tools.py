"""Tool execution against a session database: argument checks, binding, output shaping.

Arguments are validated against the tool's JSON schema and only ever bound as SQL parameters,
so a value like `'1; DROP TABLE orders; --'` is data, never SQL.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import jsonschema

from convosim.environments.database import OutputTooLarge, QueryTimeout, SessionDatabase
from convosim.environments.simulation import TABLE as SIMULATED_TABLE
from convosim.environments.simulation import Simulation
from convosim.models import ToolSpec

FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER  # format: email, date, ... are checked, not decoration
INT64 = (-(2**63), 2**63 - 1)  # what SQLite can bind: a larger integer is a tool error, not a crash


class ToolError(Exception):
    """A failed call; its message is returned to the assistant as the tool's output."""


def argument_errors(tool: ToolSpec, args: Any) -> list[str]:
    """Schema violations of `args`, as short human-readable strings (empty when valid)."""
    if isinstance(args, str):
        return [f"arguments are not valid JSON: {args[:80]!r}"]
    if not isinstance(args, dict):
        return ["arguments must be a JSON object"]
    validator = jsonschema.Draft202012Validator(tool.parameters, format_checker=FORMATS)
    errors = []
    for err in sorted(validator.iter_errors(args), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in err.path)
        errors.append(f"{where}: {err.message}" if where else err.message)
    extra = sorted(set(args) - set(tool.properties))
    errors.extend(f"unknown argument {name!r}" for name in extra)
    for name, value in args.items():
        schema = tool.properties.get(name, {})
        if isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
            errors.append(f"{name}: {value} is outside the 64-bit integer range")
        pattern = schema.get("pattern")
        if isinstance(value, str) and isinstance(pattern, str) and pattern.endswith("$") and value.endswith("\n"):
            errors.append(f"{name}: {value!r} does not match {pattern!r} (a trailing newline is not the end)")
    return errors


def run_tool(db: SessionDatabase, tool: ToolSpec, args: dict[str, Any]) -> tuple[Any, int]:
    """Execute `tool` with `args` on `db`; returns (output, rows changed) or raises ToolError."""
    problems = argument_errors(tool, args)
    if problems:
        raise ToolError("invalid arguments: " + "; ".join(problems))
    if tool.sql is None:  # an imported tool: simulated from its output schema, its state in the database
        try:
            return Simulation(db).call(tool, args)
        except sqlite3.OperationalError as exc:
            raise ToolError(f"tool {tool.name} has no SQL and its domain no {SIMULATED_TABLE} table: {exc}") from exc
    params = {name: args.get(name) for name in tool.properties}
    try:
        rows, changed = db.execute(tool.sql, params, write=tool.kind == "write")
    except (QueryTimeout, OutputTooLarge) as exc:
        raise ToolError(str(exc)) from exc
    except sqlite3.IntegrityError as exc:
        raise ToolError(f"rejected by the database: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise ToolError(f"database error: {exc}") from exc
    if tool.kind == "write" and changed == 0:
        raise ToolError("nothing was changed: no matching record")
    if tool.returns == "many":
        return rows, changed
    if len(rows) > 1 and tool.kind == "read":  # never hand the assistant one of several as if it were the only
        raise ToolError(f"{len(rows)} records match, but this tool returns one: be more specific")
    if rows:
        return rows[0], changed
    if tool.kind == "write":
        return {"rows_changed": changed}, changed
    raise ToolError("no matching record found")
