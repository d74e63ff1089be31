"""Offline tool expansion: derive a domain's complete toolset from its SQL schema.

For every table: a lookup by key, lookups by each foreign key and by each enum column, a lookup
joined to each parent table, and the writes the schema allows (create; update of each plain
column; delete when nothing references the table). Each candidate gets phrasings, then must pass
the same checks as hand-written tools (sqlglot, execution on a clone of the template with real
rows, unambiguous phrasings); rejects are returned with reasons, never written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from convosim.environments.domain import Domain
from convosim.environments.introspect import Column, Table, introspect, referenced_tables, trigger_maintained
from convosim.environments.phrasing import PhraseBook, label
from convosim.environments.sql_checks import SqlCheckError, check_tool_sql
from convosim.environments.tool_constraints import Constraints, constraints_of
from convosim.environments.tool_trial import trial_call
from convosim.models import ToolSpec


@dataclass(frozen=True)
class Rejected:
    name: str
    reason: str


def singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith(("sses", "xes", "ches", "shes")):
        return name[:-2]
    if name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return name


def a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _param(column: Column, description: str | None = None) -> dict[str, Any]:
    return {**column.json_schema(), "description": description or f"the {label(column.name)}"}


def _key_words(table: Table) -> tuple[str, str]:
    """(phrase with slots identifying a row, WHERE clause) for the table's primary key."""
    pk = table.primary_key
    if len(pk) == 1:
        return f"{label(singular(table.name))} {{{pk[0].name}}}", f"{pk[0].name} = :{pk[0].name}"
    words = " and ".join(f"{label(c.name)} {{{c.name}}}" for c in pk)
    return f"{label(singular(table.name))} with {words}", " AND ".join(f"{c.name} = :{c.name}" for c in pk)


def _spec(
    name: str,
    description: str,
    kind: Literal["read", "write"],
    returns: Literal["one", "many"],
    params: dict[str, dict[str, Any]],
    required: Iterable[str],
    sql: str,
    phrasings: list[str],
) -> ToolSpec:
    return ToolSpec(
        name=name,
        description=description,
        kind=kind,
        returns=returns,
        parameters={"type": "object", "properties": params, "required": list(required)},
        sql=sql,
        phrasings=tuple(phrasings),
    )


def candidates(tables: dict[str, Table], rules: Constraints | None = None) -> list[ToolSpec]:
    """Every tool the schema suggests, within `rules` (none: everything the schema allows)."""
    rules = rules or Constraints()
    private = rules.ownership.is_private
    referenced = referenced_tables(tables)
    out: list[ToolSpec] = []
    for table in tables.values():
        one, plural = singular(table.name), label(table.name)
        pk = table.primary_key
        if not pk:
            continue
        key_phrase, where = _key_words(table)
        pk_params = {c.name: _param(c) for c in pk}
        cols = ", ".join(c.name for c in table.columns)
        out.append(
            _spec(
                f"get_{one}",
                f"Look up {a(label(one))} by its key.",
                "read",
                "one",
                pk_params,
                pk_params,
                f"SELECT {cols} FROM {table.name} WHERE {where}",
                [f"Can you look up {key_phrase} for me?", f"Please show me the record of {key_phrase}."],
            )
        )
        for fk in table.foreign_keys:
            column = table.column(fk.column)
            slot = f"{{{fk.column}}}"
            if private(table.name) and not private(fk.table):
                continue  # "every order line with product 7" is other customers' business
            out.append(
                _spec(
                    f"list_{table.name}_by_{fk.column}",
                    f"List the {plural} of {a(label(singular(fk.table)))}.",
                    "read",
                    "many",
                    {fk.column: _param(column)},
                    [fk.column],
                    f"SELECT {cols} FROM {table.name} WHERE {fk.column} = :{fk.column} ORDER BY {pk[0].name}",
                    [
                        f"Which {plural} are there for {label(fk.column)} {slot}?",
                        f"List every {label(one)} with {label(fk.column)} {slot}, please.",
                    ],
                )
            )
            parent = tables.get(fk.table)
            if parent is not None and len(pk) == 1:
                extra = [
                    c for c in parent.columns if c.name != fk.target and c.name not in {x.name for x in table.columns}
                ]
                if extra:
                    picked = ", ".join([f"t.{c.name}" for c in table.columns] + [f"p.{c.name}" for c in extra])
                    out.append(
                        _spec(
                            f"get_{one}_with_{singular(fk.table)}",
                            f"Look up {a(label(one))} together with its {label(singular(fk.table))}.",
                            "read",
                            "one",
                            pk_params,
                            pk_params,
                            f"SELECT {picked} FROM {table.name} t JOIN {fk.table} p ON p.{fk.target} = t.{fk.column} "
                            f"WHERE t.{pk[0].name} = :{pk[0].name}",
                            [
                                f"Show me {key_phrase} together with its {label(singular(fk.table))} details.",
                                f"For {key_phrase}, which {label(singular(fk.table))} does it belong to?",
                            ],
                        )
                    )
        for column in table.columns:
            if column.enum and not column.primary_key and not private(table.name):
                slot = f"{{{column.name}}}"
                out.append(
                    _spec(
                        f"list_{table.name}_by_{column.name}",
                        f"List the {plural} with a given {label(column.name)}.",
                        "read",
                        "many",
                        {column.name: _param(column)},
                        [column.name],
                        f"SELECT {cols} FROM {table.name} WHERE {column.name} = :{column.name} ORDER BY {pk[0].name}",
                        [
                            f"Which {plural} have {label(column.name)} {slot}?",
                            f"Show me all {plural} whose {label(column.name)} is {slot}.",
                        ],
                    )
                )
        fk_columns = {fk.column for fk in table.foreign_keys}
        writable = [c for c in table.columns if not c.primary_key]
        insertable = [c for c in table.columns if not (c.primary_key and table.rowid_key)]
        if rules.ownership.known:  # a customer gives the details, never the price or the status
            given = [c for c in insertable if c.primary_key or c.name in fk_columns or rules.settable(table, c)]
            withheld = [c for c in insertable if c not in given]
            insertable = [] if any(c.not_null and not c.has_default for c in withheld) else given
        if insertable and rules.may_insert(table):
            params = {c.name: _param(c) for c in insertable}
            required = [c.name for c in insertable if c.not_null and not c.has_default]
            slots = ", ".join(f"{label(c.name)} {{{c.name}}}" for c in insertable)
            names = ", ".join(c.name for c in insertable)
            values = ", ".join(f":{c.name}" for c in insertable)
            out.append(
                _spec(
                    f"create_{one}",
                    f"Create a new {label(one)}.",
                    "write",
                    "one",
                    params,
                    required,
                    f"INSERT INTO {table.name} ({names}) VALUES ({values}) RETURNING {cols}",
                    [f"Please create a new {label(one)} with {slots}.", f"I'd like to add {a(label(one))}: {slots}."],
                )
            )
        for column in writable:
            if column.name in fk_columns or not rules.settable(table, column):
                continue
            slot = f"{{{column.name}}}"
            out.append(
                _spec(
                    f"update_{one}_{column.name}",
                    f"Change the {label(column.name)} of {a(label(one))}.",
                    "write",
                    "one",
                    {**pk_params, column.name: _param(column, f"the new {label(column.name)}")},
                    [*pk_params, column.name],
                    f"UPDATE {table.name} SET {column.name} = :{column.name} "
                    f"WHERE {rules.where(table, where)} RETURNING {cols}",
                    [
                        f"Please set the {label(column.name)} of {key_phrase} to {slot}.",
                        f"Can you change the {label(column.name)} on {key_phrase} to {slot}?",
                    ],
                )
            )
        if table.name not in referenced and not rules.ownership.known:  # customers cancel, they do not delete
            out.append(
                _spec(
                    f"delete_{one}",
                    f"Delete {a(label(one))}.",
                    "write",
                    "one",
                    pk_params,
                    pk_params,
                    f"DELETE FROM {table.name} WHERE {where} RETURNING {cols}",
                    [f"Please delete {key_phrase}.", f"Remove {key_phrase} from the system, please."],
                )
            )
    return out


def trial(domain: Domain, tool: ToolSpec) -> str | None:
    """Why `tool` fails its checks, or None: sqlglot, then one real call on a fresh clone."""
    try:
        check_tool_sql(tool, set(domain.template.tables))
    except SqlCheckError as exc:
        return f"sql: {exc}"
    env = domain.new_session()
    try:
        return trial_call(env.db, tool, domain.snapshot, strict=True)
    finally:
        env.close()


def expand_offline(domain: Domain) -> tuple[list[ToolSpec], list[Rejected]]:
    """New tools derived from the schema that pass every check; existing names are kept as they are."""
    probe = domain.new_session()
    try:
        tables = introspect(probe.db)
        triggered = trigger_maintained(probe.db)
    finally:
        probe.close()
    return vet(domain, candidates(tables, constraints_of(domain, tables, triggered)))


def vet(domain: Domain, proposed: list[ToolSpec]) -> tuple[list[ToolSpec], list[Rejected]]:
    """Keep the proposals that pass every check and keep the domain's language unambiguous."""
    kept: list[ToolSpec] = []
    rejected: list[Rejected] = []
    known = dict(domain.tools)
    for tool in proposed:
        if tool.name in known:
            rejected.append(Rejected(tool.name, "a tool with this name already exists (kept as written)"))
            continue
        problem = trial(domain, tool)
        if problem is None:
            ambiguous = PhraseBook({**known, tool.name: tool}).ambiguities()
            problem = f"ambiguous phrasing: {ambiguous[0]}" if ambiguous else None
        if problem is not None:
            rejected.append(Rejected(tool.name, problem))
            continue
        kept.append(tool)
        known[tool.name] = tool
    return kept, rejected
