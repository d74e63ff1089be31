"""Canonical state hash and row-level diff of a session database.

Both work on snapshots (table -> rows) so they can compare a live session against a gold replay
without either database being open at the same time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

Snapshot = Mapping[str, Sequence[Mapping[str, Any]]]
Keys = Mapping[str, tuple[str, ...]]


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _row_key(row: Mapping[str, Any], pk: tuple[str, ...]) -> str:
    return canonical_json([row[c] for c in pk]) if pk else canonical_json(row)


def state_hash(snapshot: Snapshot, keys: Keys) -> str:
    """sha256 of every table's rows sorted by primary key: equal states hash equal."""
    digest = hashlib.sha256()
    for table in sorted(snapshot):
        pk = keys.get(table, ())
        rows = sorted(snapshot[table], key=lambda r: _row_key(r, pk))
        digest.update(canonical_json([table, rows]).encode())
    return digest.hexdigest()


def diff(before: Snapshot, after: Snapshot, keys: Keys) -> dict[str, dict[str, list[Any]]]:
    """Rows added, removed and changed per table (only tables that changed appear)."""
    out: dict[str, dict[str, list[Any]]] = {}
    for table in sorted(set(before) | set(after)):
        pk = keys.get(table, ())
        old = {_row_key(r, pk): dict(r) for r in before.get(table, ())}
        new = {_row_key(r, pk): dict(r) for r in after.get(table, ())}
        added = [new[k] for k in new if k not in old]
        removed = [old[k] for k in old if k not in new]
        changed = []
        for k in old.keys() & new.keys():
            if old[k] != new[k]:
                fields = {c: [old[k].get(c), new[k].get(c)] for c in new[k] if old[k].get(c) != new[k].get(c)}
                changed.append({"key": json.loads(k) if pk else None, "changes": fields})
        changed.sort(key=canonical_json)
        if added or removed or changed:
            out[table] = {"added": added, "removed": removed, "changed": changed}
    return out
