"""SQLite state: a template built once per domain, cloned into one private database per session.

The template is serialised to bytes once; a session clone is `deserialize()` of those bytes into
a fresh in-memory connection, so writes in one session are invisible to every other. Session
connections run in autocommit mode (explicit transactions only) behind an authorizer that refuses
ATTACH, PRAGMA writes and extension loading, and a progress handler that stops runaway queries.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

import sqlite_utils

DENIED_ACTIONS = {sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH}
DENIED_FUNCTIONS = {"load_extension", "readfile", "writefile"}
# Pragmas that only read the schema; any other pragma given an argument is a write and refused.
READ_PRAGMAS = {"table_info", "table_xinfo", "index_list", "index_info", "foreign_key_list"}


def _authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    if action in DENIED_ACTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and arg2 is not None and (arg1 or "").lower() not in READ_PRAGMAS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


class QueryTimeout(RuntimeError):
    pass


class OutputTooLarge(RuntimeError):
    pass


class SchemaError(Exception):
    """A statement of the domain's schema failed; `line` is where that statement starts."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(message)


class SeedError(Exception):
    """A seed row was refused; `row` is its index within its table's list."""

    def __init__(self, table: str, row: int | None, message: str) -> None:
        self.table = table
        self.row = row
        super().__init__(message)


def run_schema(conn: sqlite3.Connection, schema_sql: str) -> None:
    """Execute the schema one statement at a time, so a failure names the line it starts on."""
    buffer, start = "", 1
    for number, line in enumerate(schema_sql.splitlines(keepends=True), start=1):
        if not buffer.strip():
            start = number
        buffer += line
        if sqlite3.complete_statement(buffer):
            try:
                conn.execute(buffer)
            except sqlite3.Error as exc:
                raise SchemaError(start, str(exc)) from exc
            buffer = ""
    if buffer.strip() and not buffer.strip().startswith("--"):
        try:
            conn.execute(buffer)
        except sqlite3.Error as exc:
            raise SchemaError(start, str(exc)) from exc


def _schema_only(schema_sql: str) -> tuple[sqlite3.Connection, set[str]]:
    conn = sqlite3.connect(":memory:")
    conn.set_authorizer(_authorizer)  # the schema is user input too: no ATTACH, no pragma writes
    run_schema(conn, schema_sql)
    conn.commit()
    conn.set_authorizer(None)  # seed rows go through sqlite-utils, which reads pragmas of its own
    return conn, set(sqlite_utils.Database(conn).table_names())


def _failing_row(
    schema_sql: str, seed: Mapping[str, Sequence[Mapping[str, Any]]], table: str
) -> tuple[int | None, str | None]:
    """Replay the seed up to `table`, then its rows one by one: which row fails, and why.
    Only run after a bulk insert failed, so a good seed never pays for it."""
    conn, _ = _schema_only(schema_sql)
    db = sqlite_utils.Database(conn)
    try:
        for name, rows in seed.items():
            if name != table:
                db[name].insert_all([dict(r) for r in rows])  # type: ignore[union-attr]
                continue
            for i, row in enumerate(rows):
                try:
                    db[name].insert(dict(row))  # type: ignore[union-attr]
                except sqlite3.Error as exc:
                    return i, str(exc)
            return None, None
    finally:
        conn.close()
    return None, None


class TemplateDatabase:
    """The domain's pristine state: schema + seed rows, held as serialised bytes."""

    def __init__(self, schema_sql: str, seed: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        conn, tables = _schema_only(schema_sql)
        db = sqlite_utils.Database(conn)
        for table, rows in seed.items():
            if table not in tables:
                raise SeedError(table, None, "table is not in the schema")
            try:
                db[table].insert_all([dict(r) for r in rows])  # type: ignore[union-attr]
            except sqlite3.Error as exc:
                index, message = _failing_row(schema_sql, seed, table)
                raise SeedError(table, index, message or str(exc)) from exc
        self.tables: tuple[str, ...] = tuple(sorted(tables))
        self.image: bytes = conn.serialize()
        conn.close()

    def clone(self, timeout_s: float = 2.0, max_output_bytes: int = 1_000_000) -> SessionDatabase:
        return SessionDatabase(self.image, timeout_s=timeout_s, max_output_bytes=max_output_bytes)


class SessionDatabase:
    """One session's private, mutable copy of the template."""

    def __init__(self, image: bytes, timeout_s: float = 2.0, max_output_bytes: int = 1_000_000) -> None:
        self.max_output_bytes = max_output_bytes
        self.conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.conn.deserialize(image)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA foreign_keys = ON")
        # Memory per step: no value larger than the output cap (randomblob(1e9) is refused at once,
        # not allocated), and sorts spill to temporary files past a small page cache.
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max(max_output_bytes, 1_000_000))
        self.conn.execute("PRAGMA cache_size = -16384")  # KiB; set before the authorizer refuses pragmas
        self.conn.set_authorizer(_authorizer)
        self._timeout_s = timeout_s
        self._deadline = 0.0
        self.conn.set_progress_handler(self._check_deadline, 1000)

    def _check_deadline(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0

    def execute(self, sql: str, params: Mapping[str, Any], write: bool) -> tuple[list[dict[str, Any]], int]:
        """Run one statement with bound parameters; writes run in their own transaction."""
        self._deadline = time.monotonic() + self._timeout_s
        try:
            if write:
                self.conn.execute("BEGIN")
            try:
                before = self.conn.total_changes
                cursor = self.conn.execute(sql, dict(params))
                rows = self._bounded_rows(cursor)
                changed = self.conn.total_changes - before
                if write:
                    self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise QueryTimeout(f"query exceeded {self._timeout_s}s") from exc
            raise
        return rows, changed

    def _bounded_rows(self, cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
        """The result rows, fetched in batches and refused once they pass the size a conversation can
        carry: a result of millions of rows never reaches memory, let alone the model."""
        rows: list[dict[str, Any]] = []
        size = 0
        while batch := cursor.fetchmany(256):
            for row in batch:
                item = dict(row)
                size += sum(len(str(v)) + len(k) + 6 for k, v in item.items())
                rows.append(item)
            if size > self.max_output_bytes:
                raise OutputTooLarge(f"the result is larger than {self.max_output_bytes} bytes: ask for less")
        return rows

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of every table, in a canonical order (used for hashing and diffs)."""
        self._deadline = time.monotonic() + 60
        out: dict[str, list[dict[str, Any]]] = {}
        for table in self.table_names():
            rows = self.conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
            out[table] = [dict(r) for r in rows]
        return out

    def primary_keys(self) -> dict[str, tuple[str, ...]]:
        self._deadline = time.monotonic() + 60  # reading the schema of a large domain is not a runaway query
        keys: dict[str, tuple[str, ...]] = {}
        for table in self.table_names():
            info = self.conn.execute(f'PRAGMA table_info("{table}")').fetchall()
            pk = tuple(r["name"] for r in sorted(info, key=lambda r: r["pk"]) if r["pk"])
            keys[table] = pk
        return keys

    def table_names(self) -> list[str]:
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]

    def close(self) -> None:
        self.conn.close()
