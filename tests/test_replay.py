"""Replay: the viewer (driven headlessly), strict verification, forks, and log queries."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from convosim.environments.domain import load_domain
from convosim.environments.tasks import load_tasks
from convosim.messages import event_from_json
from convosim.runners.fork import fork_session
from convosim.runners.queries import query_events, run_stats
from convosim.runners.replay import load_recording, replay_steps, verify
from convosim.runners.store import RunStore
from convosim.runners.viewer import ReplayApp
from convosim.testing import ScriptedChatServer
from convosim.testing.scripted import OfflineResponders

from support import run, scenario_for

CLI = str(Path(sys.executable).parent / "convosim")


@pytest.fixture
def small_run(tmp_path, retail_dir) -> Path:
    out = tmp_path / "run"
    run(scenario_for(retail_dir / "scenario.yaml", sessions=4, concurrency=4), out)
    return out


def session_ids(out: Path) -> list[str]:
    store = RunStore(out / "run.sqlite")
    try:
        return [r["session_id"] for r in store.sessions()]
    finally:
        store.close()


def test_viewer_steps_forward_back_and_filters(small_run) -> None:
    recording = load_recording(small_run, session_ids(small_run)[0])  # retail-001: an address change
    steps = replay_steps(recording)
    write_turn = next(s.event.turn for s in steps if s.diffs)

    async def drive() -> None:
        app = ReplayApp(recording, steps)
        async with app.run_test() as pilot:
            body = app.query_one("#body")
            status = app.query_one("#status")
            assert "session started" in str(body.content) and str(status.content).startswith("turn 0")
            await pilot.press("n")
            assert str(status.content).startswith("turn 1") and "[user -> assistant] " in str(body.content)
            for _ in range(write_turn - 1):
                await pilot.press("right")
            text = str(body.content)
            assert f"turn {write_turn}" in str(status.content)
            assert "call update_shipping_address" in text and "SQL: UPDATE orders" in text
            assert "DB ~ orders [1001] shipping_address:" in text  # the row diff caused by this step
            await pilot.press("p")
            assert str(status.content).startswith(f"turn {write_turn - 1}")
            await pilot.press("n", "a")  # agent filter: user
            text = str(body.content)
            assert "agent: user" in str(status.content)
            assert "call update_shipping_address" not in text and "[user -> assistant]" in text
            await pilot.press("t")  # type filter on top
            assert "type: " in str(status.content) and "type: all" not in str(status.content)

    asyncio.run(drive())


def test_plain_replay_prints_every_turn(small_run) -> None:
    sid = session_ids(small_run)[0]
    result = subprocess.run(
        [CLI, "replay", str(small_run), sid[:8], "--plain"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "-- turn 1 --" in result.stdout and "verdict ACCEPTED" in result.stdout
    assert "DB ~ orders [1001]" in result.stdout
    only = subprocess.run(
        [CLI, "replay", str(small_run), sid, "--plain", "--type", "tool_call_request"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "call " in only and "[user -> assistant]" not in only


def test_verify_passes_on_a_fresh_run_and_catches_tampering(small_run) -> None:
    for sid in session_ids(small_run):
        assert verify(load_recording(small_run, sid)) == []
    sid = session_ids(small_run)[0]
    db = sqlite3.connect(small_run / "run.sqlite")
    seq, turn, payload = db.execute(
        "SELECT seq, turn, payload FROM events WHERE session_id=? AND type='tool_result' ORDER BY seq LIMIT 1 OFFSET 1",
        (sid,),
    ).fetchone()
    event = event_from_json(payload)
    forged = event.model_copy(
        update={
            "results": tuple(
                r.model_copy(update={"output": {**r.output, "status": "delivered"}}) for r in event.results
            )
        }
    )
    db.execute("UPDATE events SET payload=? WHERE session_id=? AND seq=?", (forged.model_dump_json(), sid, seq))
    db.commit()
    db.close()
    problems = verify(load_recording(small_run, sid))
    assert problems and problems[0][0] == turn and "recorded" in problems[0][1]
    result = subprocess.run(
        [CLI, "replay", str(small_run), sid, "--verify"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1 and result.stdout.startswith(f"turn {turn}:")


def _visible(events, before: int) -> list[tuple]:
    return [
        (e.type, e.sender, e.recipient, e.model_dump(exclude={"id", "ts", "session_id"}))
        for e in events
        if e.turn < before and e.type not in ("session_started",)
    ]


def test_fork_keeps_the_past_and_reaches_a_verdict(small_run) -> None:
    parent = session_ids(small_run)[0]
    result = fork_session(small_run, parent, 4, {"user"})
    assert result.status == "accepted"
    a, b = load_recording(small_run, parent), load_recording(small_run, result.session_id)
    assert _visible(a.events, 4) == _visible(b.events, 4)
    # The database before turn 4 is the same: every step's diff up to then matches.
    diffs_a = [s.diffs for s in replay_steps(a) if s.event.turn < 4]
    diffs_b = [s.diffs for s in replay_steps(b) if s.event.turn < 4]
    assert diffs_a == diffs_b
    assert b.events[-1].type == "verdict"
    assert b.session["parent_session_id"] == parent and b.session["fork_turn"] == 4
    second = fork_session(small_run, parent, 2, {"user"})
    assert second.session_id != result.session_id
    children = {r["session_id"] for r in query_events(small_run, session=parent) if r["parent_session_id"] == parent}
    assert children == {result.session_id, second.session_id}
    logs = subprocess.run(
        [CLI, "logs", str(small_run), "--session", parent, "--type", "verdict", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [json.loads(x) for x in logs.stdout.splitlines()]
    assert {x["session_id"] for x in lines} == {parent, result.session_id, second.session_id}
    assert run_stats(small_run)["forks"] == 2


def test_an_exact_replay_fork_is_not_exported_twice(small_run) -> None:
    """An offline fork replays its parent word for word: the dataset keeps one copy, and the
    repeat is in rejected.jsonl as a duplicate of its parent."""
    before = (small_run / "dataset.jsonl").read_text().splitlines()
    parent = session_ids(small_run)[0]
    forks = [fork_session(small_run, parent, turn, {"user"}) for turn in (2, 3, 4)]
    assert [f.status for f in forks] == ["accepted"] * 3
    after = (small_run / "dataset.jsonl").read_text().splitlines()
    assert after == before  # nothing new: every fork is the parent's dialogue again
    rejected = [json.loads(line) for line in (small_run / "rejected.jsonl").read_text().splitlines()]
    repeats = {r["session_id"]: r["reasons"] for r in rejected if r["status"] == "rejected_at_export"}
    assert set(repeats) == {f.session_id for f in forks}
    for reasons in repeats.values():
        assert [r["code"] for r in reasons] == ["duplicate"] and reasons[0]["detail"]["of"] == parent


def test_fork_with_an_llm_assistant_from_turn_k(small_run, retail_dir) -> None:
    domain = load_domain(retail_dir)
    tasks, _ = load_tasks(retail_dir / "tasks.yaml", domain)
    base = scenario_for(retail_dir / "scenario.yaml")
    parent = session_ids(small_run)[1]
    with ScriptedChatServer(OfflineResponders(domain.tools, tasks, base.rules, base.persona).responders()) as server:
        result = fork_session(
            small_run,
            parent,
            3,
            {"assistant"},
            {"assistant": {"policy": "llm", "model": "openai/assistant", "api_base": server.base_url}},
        )
        assert server.request_count > 0
    child = load_recording(small_run, result.session_id)
    assert _visible(load_recording(small_run, parent).events, 3) == _visible(child.events, 3)
    assert child.events[-1].type == "verdict" and result.status in {"accepted", "rejected"}


def test_logs_filters_return_exactly_the_matching_events(small_run) -> None:
    store = RunStore(small_run / "run.sqlite")
    everything = [(sid, list(store.events(sid))) for sid in session_ids(small_run)]
    store.close()
    all_rows = query_events(small_run)
    assert len(all_rows) == sum(len(ev) for _, ev in everything)
    expected = [
        (sid, e.id)
        for sid, ev in everything
        for e in ev
        if "assistant" in (e.sender, e.recipient) and e.type == "tool_call_request"
    ]
    got = [
        (r["session_id"], r["payload"]["id"])
        for r in query_events(small_run, agent="assistant", event_type="tool_call_request")
    ]
    assert got == expected and got
    needle = "chestnut avenue"
    expected = [(sid, e.id) for sid, ev in everything for e in ev if needle in e.model_dump_json().lower()]
    got = [(r["session_id"], r["payload"]["id"]) for r in query_events(small_run, grep=needle)]
    assert got == expected and got
    one = session_ids(small_run)[2]
    assert {r["session_id"] for r in query_events(small_run, session=one)} == {one}


def test_stats_command(small_run) -> None:
    result = subprocess.run([CLI, "stats", str(small_run), "--json"], capture_output=True, text=True, timeout=60)
    numbers = json.loads(result.stdout)
    assert numbers["sessions"] == 4 and numbers["accepted_pct"] == 100.0
    assert numbers["tools"]["get_order"]["calls"] >= 1 and numbers["tools"]["get_order"]["error_rate"] == 0.0


def test_stats_table_and_the_fork_command(small_run) -> None:
    """The table a person reads (not only --json), and `convosim fork` as its own command."""
    table = subprocess.run([CLI, "stats", str(small_run)], capture_output=True, text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    assert "accepted_pct" in table.stdout and "get_order" in table.stdout
    parent = session_ids(small_run)[0]
    forked = subprocess.run(
        [CLI, "fork", str(small_run), parent, "--from-turn", "3", "--live", "user"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert forked.returncode == 0, forked.stderr
    assert f"of {parent} at turn 3: accepted" in forked.stdout
    bad = subprocess.run([CLI, "fork", str(small_run), "nope", "--from-turn", "3"], capture_output=True, text=True)
    assert bad.returncode == 2 and "no session matching 'nope'" in bad.stderr


def test_unknown_session_is_a_clear_error(small_run) -> None:
    result = subprocess.run(
        [CLI, "replay", str(small_run), "nope", "--plain"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "no session matching 'nope'" in result.stderr
