"""What each parameter of an INSERT means to a customer: whose record it is, or what they chose.

An UPDATE picks its record in its WHERE clause; an INSERT creates one, so its parameters need
reading against the schema. A parameter bound to (or compared with) a column of a customer's own
tables, or to a column referencing one, names the customer's record the new row belongs to
(`customer_id`, `order_id`): the task must already know it. One bound to a catalog table's column,
or to a column referencing the catalog, is a choice among the catalog's rows (a product, a free
slot): drawn from that table. Anything else is a new value (a quantity, a reason).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from convosim.environments.introspect import Table
from convosim.environments.ownership import Ownership


@dataclass(frozen=True)
class InsertRoles:
    keys: frozenset[str]  # the customer's own records the new row hangs off
    choices: dict[str, str]  # parameter -> the catalog table its value is chosen from


def insert_roles(sql: str, tables: dict[str, Table], owners: Ownership) -> InsertRoles | None:
    """The roles of an INSERT's parameters, or None if `sql` is not an INSERT."""
    statement = sqlglot.parse_one(sql, read="sqlite")
    if not isinstance(statement, exp.Insert):
        return None
    target = statement.this.this.name if isinstance(statement.this, exp.Schema) else statement.this.name
    columns = [c.name for c in statement.this.expressions] if isinstance(statement.this, exp.Schema) else []
    source = statement.expression
    aliases = {t.alias_or_name: t.name for t in source.find_all(exp.Table)} if source is not None else {}
    keys: set[str] = set()
    choices: dict[str, str] = {}

    def place(param: str, table: str | None) -> None:
        if table is None or table not in tables:
            return
        if owners.is_private(table):
            keys.add(param)
        elif owners.is_catalog(table):
            choices.setdefault(param, table)

    def referenced(table: str, column: str) -> str | None:
        """The table whose row a column's value picks: the one it references, its own if it is
        that table's key (or unique), none if it is a plain value."""
        info = tables.get(table)
        if info is None:
            return None
        fk = next((f for f in info.foreign_keys if f.column == column), None)
        if fk is not None:
            return fk.table
        col = next((c for c in info.columns if c.name == column), None)
        picks = col is not None and (col.unique or (col.primary_key and len(info.primary_key) == 1))
        return table if picks else None

    # bound by position: VALUES (:a, :b) or SELECT :a, col ... into the listed columns
    row = source.expressions[0].expressions if isinstance(source, exp.Values) else getattr(source, "selects", [])
    for column, value in zip(columns, row, strict=False):
        if isinstance(value, exp.Placeholder):
            place(value.name, referenced(target, column))
    # compared in WHERE / JOIN ON: `p.product_id = :product_id` picks a row of that table
    for placeholder in statement.find_all(exp.Placeholder):
        compared = placeholder.parent
        if not isinstance(compared, exp.EQ):
            continue
        other = compared.left if compared.right is placeholder else compared.right
        if not isinstance(other, exp.Column):
            continue
        table = aliases.get(other.table) if other.table else next(iter(aliases.values()), None)
        if table is not None:
            place(placeholder.name, referenced(table, other.name))
    return InsertRoles(frozenset(keys), {p: t for p, t in choices.items() if p not in keys})
