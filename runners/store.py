"""The run store: one SQLite file per run holding runs, sessions, events and verdicts.

A session is written in one transaction when it finishes (its events, its row and its verdict
together), so a crash never leaves a half-written session behind. The format is versioned
(`meta.format_version`) and documented in the README for external readers.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from convosim.llm.usage import Usage
from convosim.messages import BaseEvent, SessionEnded, Verdict, event_from_json

FORMAT_VERSION = 1
USAGE_COLUMNS = (
    "calls",
    "cached_calls",
    "failed_calls",
    "retries",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_s",
)
STORE_NAME = "run.sqlite"  # the run store's file name inside a run's output folder

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, created_at REAL NOT NULL, scenario_json TEXT NOT NULL, seed INTEGER NOT NULL,
    status TEXT NOT NULL, finished_at REAL
);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(run_id), idx INTEGER NOT NULL,
    task_id TEXT NOT NULL, trial INTEGER NOT NULL, status TEXT NOT NULL, end_reason TEXT,
    started_at REAL NOT NULL, ended_at REAL NOT NULL, parent_session_id TEXT, fork_turn INTEGER
);
CREATE TABLE IF NOT EXISTS events (
    session_id TEXT NOT NULL REFERENCES sessions(session_id), seq INTEGER NOT NULL, turn INTEGER NOT NULL,
    type TEXT NOT NULL, sender TEXT NOT NULL, recipient TEXT NOT NULL, ts REAL NOT NULL, payload TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS verdicts (
    session_id TEXT PRIMARY KEY REFERENCES sessions(session_id), accepted INTEGER NOT NULL,
    reasons TEXT NOT NULL, subgoals_total INTEGER NOT NULL, subgoals_completed INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS usage (
    session_id TEXT NOT NULL REFERENCES sessions(session_id), role TEXT NOT NULL, calls INTEGER NOT NULL,
    cached_calls INTEGER NOT NULL, failed_calls INTEGER NOT NULL, retries INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, cost_usd REAL, latency_s REAL NOT NULL,
    PRIMARY KEY (session_id, role)
);
CREATE TABLE IF NOT EXISTS tool_call_ids (
    session_id TEXT NOT NULL, call_id TEXT NOT NULL, export_id TEXT NOT NULL, PRIMARY KEY (session_id, call_id)
);
CREATE INDEX IF NOT EXISTS events_type ON events(type);
CREATE INDEX IF NOT EXISTS sessions_run ON sessions(run_id, idx);
"""


class RunStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)
        found = self.conn.execute("SELECT value FROM meta WHERE key='format_version'").fetchone()
        if found is None:
            self.conn.execute("INSERT INTO meta VALUES ('format_version', ?)", (str(FORMAT_VERSION),))
        elif int(found[0]) != FORMAT_VERSION:
            raise RuntimeError(f"{self.path}: run store format {found[0]} is not supported (expected {FORMAT_VERSION})")

    def start_run(self, run_id: str, scenario: dict[str, Any], seed: int) -> None:
        self.conn.execute(
            "INSERT INTO runs (run_id, created_at, scenario_json, seed, status) VALUES (?, ?, ?, ?, 'running')",
            (run_id, time.time(), json.dumps(scenario, sort_keys=True, default=str), seed),
        )

    def finish_run(self, run_id: str, status: str = "finished") -> None:
        self.conn.execute("UPDATE runs SET status=?, finished_at=? WHERE run_id=?", (status, time.time(), run_id))

    def write_session(
        self,
        *,
        run_id: str,
        session_id: str,
        idx: int,
        task_id: str,
        trial: int,
        status: str,
        end_reason: str | None,
        started_at: float,
        events: Sequence[BaseEvent],
        verdict: Verdict | None,
        usage: Mapping[str, Usage] | None = None,
        parent_session_id: str | None = None,
        fork_turn: int | None = None,
        error: str | None = None,
    ) -> str:
        """Persist one finished session atomically; returns the status stored. An event that cannot
        be stored (a value no JSON encoder takes) fails this session alone, with the reason, and
        is left out: the run and every other session go on."""
        rows = []
        payloads = []
        for seq, event in enumerate(events):
            if isinstance(event, SessionEnded):  # its transcript is the events themselves
                event = event.model_copy(update={"transcript": ()})
            try:
                payloads.append((seq, event, event.model_dump_json()))
            except ValueError as exc:  # pydantic's serialisation errors are ValueErrors
                status, verdict = "failed", None
                error = f"event {seq} ({event.type}) cannot be stored: {str(exc)[:200]}"
        for seq, event, payload in payloads:
            rows.append(
                (
                    session_id,
                    seq,
                    event.turn,
                    event.type,
                    event.sender,
                    event.recipient,
                    event.ts,
                    payload,
                )
            )
        with self._transaction():
            self.conn.execute(
                "INSERT INTO sessions (session_id, run_id, idx, task_id, trial, status, end_reason, started_at,"
                " ended_at, parent_session_id, fork_turn) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session_id,
                    run_id,
                    idx,
                    task_id,
                    trial,
                    status,
                    end_reason,
                    started_at,
                    time.time(),
                    parent_session_id,
                    fork_turn,
                ),
            )
            self.conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            for role, u in (usage or {}).items():
                record: dict[str, float | int | None] = {k: v for k, v in u.to_record().items() if k in USAGE_COLUMNS}
                record["cost_usd"] = u.cost_usd if u.cost_known else None  # unknown cost is NULL, never 0
                self.conn.execute(
                    f"INSERT INTO usage (session_id, role, {', '.join(record)}) VALUES (?, ?{', ?' * len(record)})",
                    (session_id, role, *record.values()),
                )
            if verdict is not None:
                self.conn.execute(
                    "INSERT INTO verdicts VALUES (?, ?, ?, ?, ?)",
                    (
                        session_id,
                        int(verdict.accepted),
                        json.dumps([r.model_dump() for r in verdict.reasons]),
                        verdict.subgoals_total,
                        verdict.subgoals_completed,
                    ),
                )
            elif status == "failed":  # a failed session is never without its reason
                reason = {"code": "session_failed", "detail": {"end_reason": end_reason, "error": error}}
                self.conn.execute(
                    "INSERT INTO verdicts VALUES (?, 0, ?, 0, 0)", (session_id, json.dumps([reason], default=str))
                )
        return status

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def sessions(self, run_id: str | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT s.*, v.accepted, v.reasons, v.subgoals_total, v.subgoals_completed FROM sessions s"
            " LEFT JOIN verdicts v USING (session_id)"
        )
        params: tuple[Any, ...] = ()
        if run_id is not None:
            sql += " WHERE s.run_id = ?"
            params = (run_id,)
        cursor = self.conn.execute(sql + " ORDER BY s.idx, s.session_id", params)
        names = [d[0] for d in cursor.description]
        out = []
        for row in cursor.fetchall():
            item = dict(zip(names, row, strict=True))
            item["reasons"] = json.loads(item["reasons"]) if item["reasons"] else []
            out.append(item)
        return out

    def events(self, session_id: str) -> Iterator[BaseEvent]:
        for (payload,) in self.conn.execute(
            "SELECT payload FROM events WHERE session_id=? ORDER BY seq", (session_id,)
        ):
            yield event_from_json(payload)

    # --- the read API: replay, logs, stats, fork, resume, benchmarks and tests read only through it ---
    def runs(self) -> list[dict[str, Any]]:
        """Every run in this store, oldest first, with its scenario."""
        cursor = self.conn.execute("SELECT run_id, scenario_json, seed, status FROM runs ORDER BY created_at")
        return [{"run_id": r, "scenario": json.loads(j), "seed": s, "status": st} for r, j, s, st in cursor]

    def scenario(self, run_id: str) -> dict[str, Any]:
        row = self.conn.execute("SELECT scenario_json FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(run_id)
        data: dict[str, Any] = json.loads(row[0])
        return data

    def delete_sessions(self, session_ids: Sequence[str]) -> None:
        """Forget sessions entirely (their events, verdicts and usage) so they can be run again."""
        with self._transaction():
            for table in ("events", "verdicts", "usage", "sessions"):
                self.conn.executemany(f"DELETE FROM {table} WHERE session_id = ?", [(s,) for s in session_ids])

    def save_call_ids(self, mapping: Sequence[tuple[str, str, str]]) -> None:
        """(session id, recorded call id, exported call id): how an export renamed tool calls."""
        with self._transaction():
            self.conn.executemany("INSERT OR REPLACE INTO tool_call_ids VALUES (?, ?, ?)", mapping)

    def call_ids(self, session_id: str) -> dict[str, str]:
        rows = self.conn.execute("SELECT call_id, export_id FROM tool_call_ids WHERE session_id=?", (session_id,))
        return dict(rows.fetchall())

    def mark_running(self, run_id: str) -> None:
        self.conn.execute("UPDATE runs SET status='running' WHERE run_id=?", (run_id,))

    def time_span(self) -> float:
        """Seconds from the first session's start to the last one's end (0 for an empty store)."""
        first, last = self.conn.execute("SELECT min(started_at), max(ended_at) FROM sessions").fetchone()
        return float(last - first) if first is not None else 0.0

    def durations_and_calls(self) -> list[tuple[float, int]]:
        """(wall seconds, LLM calls) per session: what throughput benchmarks need."""
        rows = self.conn.execute(
            "SELECT s.ended_at - s.started_at, coalesce(sum(u.calls), 0) FROM sessions s"
            " LEFT JOIN usage u USING (session_id) GROUP BY s.session_id"
        )
        return [(float(d), int(c)) for d, c in rows]

    def usage(self) -> dict[str, dict[str, Usage]]:
        """session id -> role -> usage."""
        cursor = self.conn.execute("SELECT * FROM usage")
        names = [d[0] for d in cursor.description]
        out: dict[str, dict[str, Usage]] = {}
        for values in cursor:
            row = dict(zip(names, values, strict=True))
            row["cost_unknown_calls"] = 0 if row["cost_usd"] is not None else max(1, row["calls"])
            row["cost_usd"] = row["cost_usd"] or 0.0
            out.setdefault(row["session_id"], {})[row["role"]] = Usage.from_record(row)
        return out

    def query_events(
        self,
        session: str | None = None,
        agent: str | None = None,
        event_type: str | None = None,
        grep: str | None = None,
    ) -> list[dict[str, Any]]:
        """Events matching every given filter, in (session, bus) order, with their session's lineage."""
        sql = (
            "SELECT e.session_id, e.seq, e.turn, e.type, e.sender, e.recipient, e.ts, e.payload,"
            " s.parent_session_id, s.fork_turn, s.task_id, s.status"
            " FROM events e JOIN sessions s USING (session_id) WHERE 1=1"
        )
        params: list[Any] = []
        if session:
            sql += " AND (e.session_id = ? OR e.session_id LIKE ? OR s.parent_session_id = ?)"
            params += [session, session + "%", session]
        if agent:
            sql += " AND (e.sender = ? OR e.recipient = ?)"
            params += [agent, agent]
        if event_type:
            sql += " AND e.type = ?"
            params.append(event_type)
        if grep:
            sql += " AND instr(lower(e.payload), lower(?)) > 0"
            params.append(grep)
        cursor = self.conn.execute(sql + " ORDER BY s.idx, e.session_id, e.seq", params)
        names = [d[0] for d in cursor.description]
        rows = []
        for values in cursor:
            row = dict(zip(names, values, strict=True))
            row["payload"] = json.loads(row["payload"])
            rows.append(row)
        return rows

    def close(self) -> None:
        self.conn.close()


def count_sessions(path: str | Path) -> int:
    """Sessions committed so far in the store at `path`, read while a run may be writing it
    (0 when the file or its tables do not exist yet): what progress watchers poll."""
    path = Path(path)
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM sessions").fetchone()[0])
    except sqlite3.Error:
        return 0
