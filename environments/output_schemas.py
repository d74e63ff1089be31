"""Output JSON schemas for tools: derived from the SQL, then proven on real outputs.

A projection that is a plain column takes the column's declared type and nullability; anything
else (an expression) is typed from the values sample calls return. `returns: many` gives an array.
`check_schemas` runs sample calls on clones of the template and validates every real output, so a
wrong schema (hand-written or predicted) is caught before any session relies on it.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import sqlglot
from sqlglot import exp

from convosim.environments.domain import Domain
from convosim.environments.introspect import Table, introspect
from convosim.environments.tool_trial import row_arguments
from convosim.environments.tools import ToolError, run_tool
from convosim.models import ToolSpec

JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def _projections(sql: str) -> list[exp.Expression]:
    statement = sqlglot.parse_one(sql, read="sqlite")
    returning = statement.args.get("returning")
    if returning is not None:
        return list(returning.expressions)
    if isinstance(statement, exp.Select):
        return list(statement.expressions)
    return []


def _aliases(sql: str) -> dict[str, str]:
    statement = sqlglot.parse_one(sql, read="sqlite")
    out = {}
    for table in statement.find_all(exp.Table):
        out[table.alias_or_name] = table.name
        out[table.name] = table.name
    return out


def _column_schema(table: Table, name: str) -> dict[str, Any]:
    column = table.column(name)
    schema = {k: v for k, v in column.json_schema().items() if k != "format"}
    if not column.not_null and not column.primary_key:
        schema["type"] = [schema["type"], "null"]
    return schema


def row_schema(tool: ToolSpec, tables: dict[str, Table], samples: list[Any]) -> dict[str, Any]:
    assert tool.sql is not None
    aliases = _aliases(tool.sql)
    main = next((t for t in aliases.values() if t in tables), None)
    properties: dict[str, Any] = {}
    for projection in _projections(tool.sql):
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(inner, exp.Star) or (isinstance(inner, exp.Column) and isinstance(inner.this, exp.Star)):
            source = (
                tables[aliases.get(inner.table, main or "")] if isinstance(inner, exp.Column) else tables[main or ""]
            )
            for column in source.columns:
                properties[column.name] = _column_schema(source, column.name)
            continue
        name = projection.alias_or_name
        table_name = aliases.get(inner.table, main) if isinstance(inner, exp.Column) else None
        table = tables.get(table_name or "")
        if isinstance(inner, exp.Column) and table is not None and inner.name in {c.name for c in table.columns}:
            properties[name] = _column_schema(table, inner.name)
        else:
            seen = {JSON_TYPES.get(type(row.get(name)), "null") for row in samples if isinstance(row, dict)}
            types = sorted(seen - {"null"}) or ["string"]
            if "integer" in types and "number" in types:
                types.remove("integer")
            properties[name] = {"type": [*types, "null"] if "null" in seen or not seen else types[0]}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def sample_calls(domain: Domain, tool: ToolSpec, limit: int = 3) -> list[dict[str, Any]]:
    """Up to `limit` argument sets drawn from different real rows."""
    calls: list[dict[str, Any]] = []
    for offset in range(limit):
        args = row_arguments(tool, domain.snapshot, offset)
        if set(tool.required) <= set(args) and args not in calls:
            calls.append(args)
    return calls


def _outputs(domain: Domain, tool: ToolSpec) -> list[Any]:
    outputs = []
    for args in sample_calls(domain, tool):
        env = domain.new_session()
        try:
            outputs.append(run_tool(env.db, tool, args)[0])
        except ToolError:
            pass
        finally:
            env.close()
    return outputs


def derive_schema(domain: Domain, tool: ToolSpec) -> dict[str, Any] | None:
    if tool.sql is None:
        return None
    probe = domain.new_session()
    try:
        tables = introspect(probe.db)
    finally:
        probe.close()
    outputs = _outputs(domain, tool)
    rows = [r for out in outputs for r in (out if isinstance(out, list) else [out])]
    if tool.kind == "write" and not _projections(tool.sql):
        return {"type": "object", "properties": {"rows_changed": {"type": "integer"}}, "required": ["rows_changed"]}
    row = row_schema(tool, tables, rows)
    return {"type": "array", "items": row} if tool.returns == "many" else row


def check_schemas(domain: Domain, schemas: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Problems per tool: real sample outputs that do not validate against the tool's schema."""
    problems: dict[str, list[str]] = {}
    for name, schema in schemas.items():
        tool = domain.tools[name]
        if tool.sql is None:
            continue
        for output in _outputs(domain, tool):
            try:
                jsonschema.validate(output, schema)
            except jsonschema.ValidationError as exc:
                problems.setdefault(name, []).append(exc.message)
    return problems
