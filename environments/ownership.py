"""Who owns what in a domain: the customers, their records, and the shared catalog.

Read from the schema alone: customer tables hold people (an email column, else a phone column,
and no reference to another such table); owned tables reach a customer table through foreign
keys (orders -> customers, order_items -> orders); every other table is catalog (products, plans).
Generated tools and tasks use this to stay what a real customer may ask for: their own records,
and the catalog, never another customer's data, never the shop's own prices or statuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from convosim.environments.introspect import Table

_CONTACT = (re.compile(r"(^|_)e?mail$"), re.compile(r"(^|_)phone(_number)?$"))


@dataclass(frozen=True)
class Ownership:
    customers: frozenset[str]
    owned: frozenset[str]
    identifying: frozenset[str]  # columns of customer/owned tables whose value picks one customer's record

    @property
    def known(self) -> bool:
        """Whether the schema says who the customers are (otherwise nothing is restricted)."""
        return bool(self.customers)

    def is_private(self, table: str | None) -> bool:
        return table in self.customers or table in self.owned

    def is_catalog(self, table: str | None) -> bool:
        return self.known and table is not None and not self.is_private(table)


def ownership(tables: dict[str, Table]) -> Ownership:
    customers: set[str] = set()
    for pattern in _CONTACT:
        found = {n for n, t in tables.items() if any(pattern.search(c.name) for c in t.columns)}
        customers = {n for n in found if not any(fk.table in found for fk in tables[n].foreign_keys)}
        if customers:
            break
    owned: set[str] = set()
    grew = True
    while grew:
        grew = False
        for name, table in tables.items():
            reaches = any(fk.table in customers or fk.table in owned for fk in table.foreign_keys)
            if reaches and name not in owned and name not in customers:
                owned.add(name)
                grew = True
    identifying = {
        c.name
        for name in customers | owned
        for c in tables[name].columns
        if (c.primary_key and len(tables[name].primary_key) == 1) or c.unique
    }
    identifying |= {fk.column for name in owned for fk in tables[name].foreign_keys if fk.table in customers | owned}
    return Ownership(frozenset(customers), frozenset(owned), frozenset(identifying))
