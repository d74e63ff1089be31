"""The constraints a generated tool must honour, read from the domain's own tools and schema.

A tool the schema allows is not always one a customer may use: "set the order total" or "set
the order status" bypass the shop's rules, and an address update without the pending-only
condition of the hand-written one is a loophole. Generated tools therefore never set a column
that hand-written tools or triggers own, money, system timestamps or statuses, and carry every
condition all hand-written writes on their table carry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp

from convosim.environments.domain import Domain
from convosim.environments.introspect import Column, Table
from convosim.environments.ownership import Ownership, ownership

SYSTEM_COLUMN = re.compile(r"(^|_)(created|updated|modified|deleted)(_at|_on)?$|_at$")
MONEY_COLUMN = re.compile(
    r"(^|_)(price|total|amount|cost|fee|balance|credit|debit|stock|salary|discount|tax|rate)s?($|_)"
)
STATUS_COLUMN = re.compile(r"(^|_)(status|state|tier|level|role|rank|grade|type|kind)$")


@dataclass(frozen=True)
class Constraints:
    """What generated tools must honour: who owns what, the columns only the domain's own tools
    or triggers may set, and the conditions every hand-written write on a table carries (an
    address may change only while the order is pending)."""

    ownership: Ownership = field(default_factory=lambda: Ownership(frozenset(), frozenset(), frozenset()))
    protected: frozenset[tuple[str, str]] = frozenset()
    guards: dict[str, tuple[str, ...]] = field(default_factory=dict)
    inserted: frozenset[str] = frozenset()  # tables a hand-written tool already inserts into

    def settable(self, table: Table, column: Column) -> bool:
        """May a customer-facing tool set this column directly?"""
        if column.primary_key or (table.name, column.name) in self.protected:
            return False
        if SYSTEM_COLUMN.search(column.name) or MONEY_COLUMN.search(column.name):
            return False
        if STATUS_COLUMN.search(column.name):
            return False  # statuses move through the domain's own actions (cancel, pay), never "set"
        return not self.ownership.known or self.ownership.is_private(table.name)

    def inherited(self, table: Table) -> list[str]:
        """The guards of the records this one belongs to: an order line may change only while
        its order may (`order_id IN (SELECT order_id FROM orders WHERE status = 'pending')`)."""
        out = []
        for fk in table.foreign_keys:
            for guard in self.guards.get(fk.table, ()):
                out.append(f"{fk.column} IN (SELECT {fk.target} FROM {fk.table} WHERE {guard})")
        return out

    def where(self, table: Table, clause: str) -> str:
        return " AND ".join([clause, *self.guards.get(table.name, ()), *self.inherited(table)])

    def may_insert(self, table: Table) -> bool:
        """Customers create their own records (a return, a booking), where no hand-written tool
        already does and no guard of the table or of its parent records would be bypassed."""
        if not self.ownership.known:
            return True
        return (
            table.name in self.ownership.owned
            and table.name not in self.inserted
            and table.name not in self.guards
            and not self.inherited(table)
        )


def _conjuncts(condition: Any) -> list[exp.Expression]:
    """The AND-ed conditions of a WHERE clause, each without its parentheses."""
    if not isinstance(condition, exp.Expression):
        return []
    if isinstance(condition, exp.And):
        return _conjuncts(condition.left) + _conjuncts(condition.right)
    unnested = condition.unnest()
    return [unnested] if isinstance(unnested, exp.Expression) else []


def constraints_of(domain: Domain, tables: dict[str, Table], triggered: set[tuple[str, str]]) -> Constraints:
    """Read the constraints the hand-written tools express: what they write, under which guards."""
    protected = set(triggered)
    guards: dict[str, set[str] | None] = {}
    inserted = set()
    for tool in domain.tools.values():
        if tool.kind != "write" or not tool.sql:
            continue
        statement = sqlglot.parse_one(tool.sql, read="sqlite")
        target = statement.find(exp.Table)
        if target is None:
            continue
        if isinstance(statement, exp.Insert):
            inserted.add(target.name)
            continue
        for assignment in statement.args.get("expressions") or []:
            if isinstance(assignment, exp.EQ) and isinstance(assignment.left, exp.Column):
                protected.add((target.name, assignment.left.name))
        where = statement.args.get("where")
        conditions = {
            c.sql(dialect="sqlite")
            for c in _conjuncts(where.this if where is not None else None)
            if not list(c.find_all(exp.Placeholder))
        }
        before = guards.get(target.name)
        guards[target.name] = conditions if before is None else before & conditions
    return Constraints(
        ownership=ownership(tables),
        protected=frozenset(protected),
        guards={t: tuple(sorted(g)) for t, g in guards.items() if g},
        inserted=frozenset(inserted),
    )
