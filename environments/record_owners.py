"""Whose record is this? Traced on the domain's database, for the validator's privacy check.

The owner table (declared as `owner: customers` in domain.yaml, else the schema's one customer
table as `ownership.py` finds it) holds the people the assistant serves. A table whose foreign key
reaches it (directly, or through other owned tables) holds records that belong to someone: orders
to a customer, an order's return to the order's customer. Any tool output or argument that names
such a record by its key (a primary key, or a single-column unique key such as an email) can then
be traced to its owner on the pristine database, so the validator can tell a record of the user's
own from another person's, whoever wrote the dialogue.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


class OwnerError(ValueError):
    pass


def _keys(conn: sqlite3.Connection, table: str) -> tuple[list[str], list[str]]:
    """(primary key columns, single-column unique columns) of a table."""
    info = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
    primary = [row[1] for row in sorted(info, key=lambda r: r[5]) if row[5]]
    unique = []
    for index in conn.execute(f'PRAGMA index_list("{table}")').fetchall():
        if index[2]:  # unique
            cols = conn.execute(f'PRAGMA index_info("{index[1]}")').fetchall()
            if len(cols) == 1:
                unique.append(cols[0][2])
    return primary, unique


@dataclass
class RecordOwners:
    """Resolves records to their owner (the owner table's key value) on the pristine database."""

    table: str
    key: str
    lookups: dict[str, str]  # column naming a record (order_id, email, phone_number) -> SQL: value -> owner
    conn: sqlite3.Connection = field(repr=False)

    @classmethod
    def build(cls, image: bytes, tables: Iterable[str], owner: str) -> RecordOwners:
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        conn.deserialize(image)
        tables = list(tables)
        if owner not in tables:
            raise OwnerError(f"no table {owner!r} in the schema (tables: {sorted(tables)})")
        primary, _ = _keys(conn, owner)
        if len(primary) != 1:
            raise OwnerError(f"table {owner!r} needs a single-column primary key to name its people")
        key = primary[0]
        # owner_expr[T]: SQL giving the owner of a row of T aliased `t0`, as joins from T up to the owner
        paths: dict[str, list[tuple[str, str, str]]] = {owner: []}
        grew = True
        while grew:
            grew = False
            for table in tables:
                if table in paths:
                    continue
                for fk in conn.execute(f'PRAGMA foreign_key_list("{table}")').fetchall():
                    parent, column, parent_column = fk[2], fk[3], fk[4]
                    if parent in paths:
                        paths[table] = [(column, parent, parent_column or key), *paths[parent]]
                        grew = True
                        break
        lookups: dict[str, str] = {}
        for table, hops in paths.items():
            primary, unique = _keys(conn, table)
            for column in (primary if len(primary) == 1 else []) + unique:
                lookups.setdefault(column, _owner_sql(table, column, hops, key))
        return cls(owner, key, lookups, conn)

    def owners(self, values: Mapping[str, Any]) -> set[Any]:
        """The owners of every record the mapping names (a tool output row, or a call's arguments)."""
        found = set()
        for column, value in values.items():
            sql = self.lookups.get(column)
            if sql is None or value is None or isinstance(value, dict | list | bool):
                continue
            found |= {row[0] for row in self.conn.execute(sql, (value,)).fetchall() if row[0] is not None}
        return found


def _owner_sql(table: str, column: str, hops: list[tuple[str, str, str]], key: str) -> str:
    """SELECT the owner key of the `table` row whose `column` = ?, following `hops` up to the owner."""
    joins, alias = [], "t0"
    for i, (col, parent, parent_col) in enumerate(hops, start=1):
        joins.append(f'JOIN "{parent}" t{i} ON t{i}."{parent_col}" = {alias}."{col}"')
        alias = f"t{i}"
    owner_col = f'{alias}."{key}"' if hops else f't0."{key}"'
    return f'SELECT DISTINCT {owner_col} FROM "{table}" t0 {" ".join(joins)} WHERE t0."{column}" = ?'
