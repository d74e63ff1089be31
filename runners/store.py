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
    ) -> None:
        """Persist one finished session atomically."""
        rows = []
        for seq, event in enumerate(events):
            if isinstance(event, SessionEnded):  # its transcript is the events themselves
                event = event.model_copy(update={"transcript": ()})
            rows.append(
                (
                    session_id,
                    seq,
                    event.turn,
                    event.type,
                    event.sender,
                    event.recipient,
                    event.ts,
                    event.model_dump_json(),
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
                d = u.as_dict()
                self.conn.execute(
                    "INSERT INTO usage VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        session_id,
                        role,
                        d["calls"],
                        d["cached_calls"],
                        d["failed_calls"],
                        d["retries"],
                        d["prompt_tokens"],
                        d["completion_tokens"],
                        d["cost_usd"],
                        d["latency_s"],
                    ),
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

    def close(self) -> None:
        self.conn.close()
