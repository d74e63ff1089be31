"""What a domain's schema says: tables, typed columns, keys, foreign keys and enum checks.

Read from SQLite itself (PRAGMA table_info / foreign_key_list) so it matches what the engine
runs; `CHECK (col IN (...))` constraints become enums.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from convosim.environments.database import SessionDatabase
from convosim.environments.simulation import TABLE as SIMULATED_TABLE

_CHECK_IN = re.compile(r"CHECK\s*\(\s*\"?(\w+)\"?\s+IN\s*\(([^)]*)\)\s*\)", re.IGNORECASE)


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    not_null: bool
    primary_key: bool
    has_default: bool
    enum: tuple[str, ...] = ()
    unique: bool = False  # a one-column UNIQUE constraint or index: its value picks one row

    def json_schema(self) -> dict[str, Any]:
        kind = self.sql_type.upper()
        if self.enum:
            return {"type": "string", "enum": list(self.enum)}
        if "INT" in kind:
            return {"type": "integer"}
        if any(k in kind for k in ("REAL", "FLOA", "DOUB", "NUM", "DEC")):
            return {"type": "number"}
        if self.name == "email" or self.name.endswith("_email"):
            return {"type": "string", "format": "email"}
        return {"type": "string"}


@dataclass(frozen=True)
class ForeignKey:
    column: str
    table: str
    target: str


@dataclass
class Table:
    name: str
    columns: list[Column]
    foreign_keys: list[ForeignKey] = field(default_factory=list)

    @property
    def primary_key(self) -> list[Column]:
        return [c for c in self.columns if c.primary_key]

    @property
    def rowid_key(self) -> bool:
        """A single INTEGER PRIMARY KEY: SQLite assigns it on insert."""
        pk = self.primary_key
        return len(pk) == 1 and pk[0].sql_type.upper() == "INTEGER"

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def introspect(db: SessionDatabase) -> dict[str, Table]:
    """The domain's own tables: not SQLite's, nor the state convosim keeps for simulated tools
    (no tool is derived from it, no task is about it)."""
    tables: dict[str, Table] = {}
    for name, sql in db.conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name != ? "
        "ORDER BY name",
        (SIMULATED_TABLE,),
    ):
        enums = {
            m.group(1): tuple(v.strip().strip("'\"") for v in m.group(2).split(",")) for m in _CHECK_IN.finditer(sql)
        }
        unique = _unique_columns(db, name)
        columns = [
            Column(
                name=r["name"],
                sql_type=r["type"] or "TEXT",
                not_null=bool(r["notnull"]),
                primary_key=bool(r["pk"]),
                has_default=r["dflt_value"] is not None,
                enum=enums.get(r["name"], ()),
                unique=r["name"] in unique,
            )
            for r in db.conn.execute(f'PRAGMA table_info("{name}")')
        ]
        fks = [
            ForeignKey(column=r["from"], table=r["table"], target=r["to"] or "rowid")
            for r in db.conn.execute(f'PRAGMA foreign_key_list("{name}")')
        ]
        tables[name] = Table(name, columns, fks)
    return tables


def _unique_columns(db: SessionDatabase, table: str) -> set[str]:
    found = set()
    for index in db.conn.execute(f'PRAGMA index_list("{table}")'):
        if index["unique"]:
            cols = [r["name"] for r in db.conn.execute(f'PRAGMA index_info("{index["name"]}")')]
            if len(cols) == 1:
                found.add(cols[0])
    return found


_TRIGGER_SET = re.compile(r"UPDATE\s+\"?(\w+)\"?\s+SET\s+(.+?)\s+WHERE", re.IGNORECASE | re.DOTALL)


def trigger_maintained(db: SessionDatabase) -> set[tuple[str, str]]:
    """(table, column) pairs that triggers keep up to date (an order's total follows its items):
    derived data, never a thing to set by hand."""
    found = set()
    for (sql,) in db.conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'"):
        for m in _TRIGGER_SET.finditer(sql or ""):
            found |= {(m.group(1), c) for c in re.findall(r"(\w+)\s*=", m.group(2))}
    return found


def referenced_tables(tables: dict[str, Table]) -> set[str]:
    return {fk.table for t in tables.values() for fk in t.foreign_keys}
