"""Task generation reaches a domain's main workflows: inserts, writes whose record needs a lookup
chain first, and changes that span two tables, made whole in one sub-goal."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from convosim.environments.domain import load_domain
from convosim.environments.taskgen import generate_tasks
from convosim.environments.tasks import load_tasks
from convosim.runners.pipeline import tasks_report, write_tasks

from conftest import EXAMPLES
from support import run, scenario_for, transcripts

BOOKING_SCHEMA = """
CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE);
CREATE TABLE slots (slot_id INTEGER PRIMARY KEY, day TEXT NOT NULL, time TEXT NOT NULL, taken INTEGER NOT NULL);
CREATE TABLE appointments (appointment_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(customer_id),
    slot_id INTEGER NOT NULL REFERENCES slots(slot_id),
    status TEXT NOT NULL CHECK (status IN ('booked', 'cancelled')));
"""


def _tool(name: str, kind: str, params: dict, sql: str, phrasings: list[str], description: str) -> dict:
    return {
        "name": name,
        "description": description,
        "kind": kind,
        "parameters": {"type": "object", "properties": params, "required": list(params)},
        "sql": sql,
        "phrasings": phrasings,
    }


def booking_domain(root: Path) -> Path:
    """A clinic's bookings: an appointment is made by inserting it AND taking its slot."""
    root.mkdir(parents=True)
    (root / "schema.sql").write_text(BOOKING_SCHEMA)
    customers = [{"customer_id": i, "name": f"Patient {i}", "email": f"p{i}@clinic.example.org"} for i in range(1, 9)]
    slots = [
        {"slot_id": 100 + i, "day": f"2026-12-{1 + i // 4:02d}", "time": f"{9 + i % 4}:00", "taken": int(i % 3 == 0)}
        for i in range(24)
    ]
    appointments = [
        {"appointment_id": 900 + i, "customer_id": 1 + i, "slot_id": 100 + 3 * i, "status": "booked"} for i in range(8)
    ]
    (root / "seed.yaml").write_text(
        yaml.safe_dump({"customers": customers, "slots": slots, "appointments": appointments})
    )
    (root / "policy.md").write_text("You are a clinic's booking desk. Book only free slots.")
    integer, email = {"type": "integer"}, {"type": "string", "format": "email"}
    tools = [
        _tool(
            "find_customer",
            "read",
            {"email": email},
            "SELECT customer_id, name FROM customers WHERE email = :email",
            ["My email is {email}, can you find me?"],
            "Find a patient by email.",
        ),
        _tool(
            "list_appointments",
            "read",
            {"customer_id": integer},
            "SELECT appointment_id, slot_id, status FROM appointments WHERE customer_id = :customer_id",
            ["Could you list the appointments of patient {customer_id}?"],
            "List a patient's appointments.",
        ),
        _tool(
            "get_slot",
            "read",
            {"slot_id": integer},
            "SELECT slot_id, day, time, taken FROM slots WHERE slot_id = :slot_id",
            ["When is slot {slot_id}?"],
            "Look up a slot's day and time.",
        ),
        _tool(
            "book_appointment",
            "write",
            {"customer_id": integer, "slot_id": integer},
            "INSERT INTO appointments (customer_id, slot_id, status) SELECT :customer_id, slot_id, 'booked' "
            "FROM slots WHERE slot_id = :slot_id AND taken = 0 RETURNING appointment_id, slot_id, status",
            ["Please book slot {slot_id} for patient {customer_id}."],
            "Book an appointment in a free slot.",
        ),
        _tool(
            "take_slot",
            "write",
            {"slot_id": integer},
            "UPDATE slots SET taken = 1 WHERE slot_id = :slot_id AND taken = 0 RETURNING slot_id, day, time, taken",
            ["Please hold slot {slot_id} for me."],
            "Mark a slot as taken.",
        ),
    ]
    free = {"read": "get_slot", "field": "taken", "allowed": [0], "reason": "only a free slot can be booked"}
    for tool in tools:  # the policy's rule, declared so the assistant checks it before offering
        if tool["name"] in ("book_appointment", "take_slot"):
            tool["precondition"] = free
    (root / "tools.yaml").write_text(yaml.safe_dump(tools, sort_keys=False))
    return root


def test_a_change_over_two_tables_is_made_whole_in_one_subgoal(tmp_path: Path) -> None:
    root = booking_domain(tmp_path / "clinic")
    report = write_tasks(root, root / "tasks.yaml", 20, seed=2)
    assert report["tasks"] == 20 and report["write_tools_unused"] == []
    domain = load_domain(root)
    tasks, rubrics = load_tasks(root / "tasks.yaml", domain)
    booked = [
        (t, s)
        for t in tasks
        for s in t.subgoals
        if [r.tool for r in s.requests][:2] == ["book_appointment", "take_slot"]
    ]
    assert len(booked) >= 3, report
    for task, subgoal in booked:
        book, take = subgoal.requests[:2]
        assert take.args["slot_id"] == book.args["slot_id"]  # the slot just booked is the one taken
        diff = rubrics[task.id].expected_diff
        assert diff["appointments"]["added"] and diff["slots"]["changed"], diff
    # A booking never stands alone: every insert of an appointment has its slot taken with it.
    lone = [s for t in tasks for s in t.subgoals if [r.tool for r in s.requests] == ["book_appointment"]]
    assert lone == []
    (root / "scenario.yaml").write_text("name: clinic\ndomain: .\ntasks: tasks.yaml\nsessions: 20\nconcurrency: 8\n")
    result = run(scenario_for(root / "scenario.yaml"), tmp_path / "run")
    assert result.stats["accepted"] == 20, result.stats
    sessions = transcripts(tmp_path / "run")
    both = [row for row, _ in sessions.values() if row["task_id"] in {t.id for t, _ in booked}]
    assert both and all(row["status"] == "accepted" for row in both)


@pytest.mark.parametrize("name", ["retail", "telecom"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_write_tool_is_used_across_a_set(name: str, seed: int) -> None:
    """Inserts (a new return, an item added to an order) and writes whose record needs a lookup
    first (a device's insurance needs the device id of a line) are all reached in 40 tasks."""
    domain = load_domain(EXAMPLES / name)
    tasks, _ = generate_tasks(domain, 40, seed=seed)
    report = tasks_report(tasks, domain)
    assert report["tasks"] == 40
    assert report["write_tools_unused"] == []
