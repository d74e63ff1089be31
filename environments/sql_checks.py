"""Load-time checks of a tool's SQL with sqlglot.

A tool's SQL must be exactly one statement, touch only the domain's tables, match its declared
kind (read = SELECT, write = INSERT/UPDATE/DELETE), and take its inputs only as named parameters
that the tool declares. sqlglot's `qualify` does not reject unknown tables, so the referenced
table set is checked against the schema explicitly.
"""

from __future__ import annotations

import re
from functools import lru_cache

import sqlglot
from sqlglot import exp

from convosim.models import ToolSpec

WRITE_STATEMENTS = (exp.Insert, exp.Update, exp.Delete)
REPLACE_INTO = re.compile(r"^\s*REPLACE\s+INTO\b", re.IGNORECASE)


class SqlCheckError(ValueError):
    """Raised with a message naming what is wrong with a tool's SQL."""


def check_tool_sql(tool: ToolSpec, tables: set[str]) -> list[str]:
    """Validate `tool.sql` against the domain; return the columns it binds as named parameters."""
    if tool.sql is None:
        return []
    sql = REPLACE_INTO.sub("INSERT OR REPLACE INTO", tool.sql)  # SQLite's shorthand, same statement
    try:
        statements = [s for s in sqlglot.parse(sql, read="sqlite") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise SqlCheckError(f"does not parse as SQLite: {str(exc).splitlines()[0]}") from exc
    if len(statements) != 1:
        raise SqlCheckError(f"must be exactly one statement, found {len(statements)}")
    statement = statements[0]
    if isinstance(statement, WRITE_STATEMENTS):
        found_kind = "write"
    elif isinstance(statement, exp.Select | exp.Union):
        found_kind = "read"
    else:
        raise SqlCheckError(f"statement {statement.key.upper()} is not allowed (only SELECT/INSERT/UPDATE/DELETE)")
    nested_writes = [n for n in statement.find_all(*WRITE_STATEMENTS) if n is not statement]
    if found_kind == "read" and nested_writes:
        found_kind = "write"
    if found_kind != tool.kind:
        raise SqlCheckError(f"declared kind {tool.kind!r} but the statement is a {found_kind}")

    cte_names = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    known = {t.lower() for t in tables}
    shadowing = sorted(n for n in cte_names if n in known or n.startswith("sqlite_"))
    if shadowing:
        raise SqlCheckError(f"a WITH name may not hide a table: {', '.join(shadowing)}")
    referenced = {t.name.lower() for t in statement.find_all(exp.Table) if t.name}
    unknown = sorted(referenced - known - cte_names)
    if unknown:
        raise SqlCheckError(f"references undeclared table(s) {', '.join(unknown)}")

    placeholders = [p for p in statement.find_all(exp.Placeholder)]
    if any(p.name in ("", "?") for p in placeholders):
        raise SqlCheckError("uses positional '?' parameters; use named ones like :order_id")
    used = {p.name for p in placeholders}
    declared = set(tool.properties)
    undeclared = sorted(used - declared)
    if undeclared:
        raise SqlCheckError(f"uses parameter(s) {', '.join(':' + u for u in undeclared)} not declared in parameters")
    missing = sorted(set(tool.required) - used)
    if missing:
        raise SqlCheckError(f"required parameter(s) {', '.join(missing)} are never used in the SQL")
    return sorted(used)


@lru_cache(maxsize=4096)
def written_parameters(sql: str) -> frozenset[str]:
    """The parameters a write stores (SET values, inserted values), as opposed to the ones that
    only select the record (WHERE keys). A read-back of a change names only these: reading back
    the phone number after a plan change would "confirm" something that never changed."""
    try:
        statement = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.ParseError:
        return frozenset()
    if isinstance(statement, exp.Update):
        sources: list[exp.Expression] = [e.expression for e in statement.args.get("expressions") or []]
    elif isinstance(statement, exp.Insert):
        body = statement.expression
        sources = list(body.expressions) if isinstance(body, exp.Select) else [body] if body is not None else []
    else:
        return frozenset()
    return frozenset(p.name for source in sources for p in source.find_all(exp.Placeholder) if p.name)


@lru_cache(maxsize=4096)
def _output_columns(sql: str) -> frozenset[str]:
    try:
        statement = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.ParseError:
        return frozenset()
    if isinstance(statement, exp.Select | exp.Union):
        projections = statement.selects
    else:
        returning = statement.args.get("returning")
        projections = returning.expressions if returning is not None else []
    return frozenset(p.alias_or_name for p in projections if p.alias_or_name and p.alias_or_name != "*")


def output_columns(tool: ToolSpec) -> frozenset[str]:
    """The field names a tool's rows carry (its SELECT list or RETURNING clause; `*` is not expanded)."""
    return _output_columns(tool.sql) if tool.sql else frozenset()
