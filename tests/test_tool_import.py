"""`convosim tools import`: an MCP server (started by the test, read with the SDK's own client over
stdio, and over HTTP) and an OpenAPI document shipped here become domains that load, get verified
tasks and run to accepted dialogues, with their tools simulated from their schemas; what cannot be
imported is reported with the reason, bad sources are clear errors, and nothing is overwritten."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_mcp_serve import http_server  # noqa: F401  (the fixture: `convosim serve` over HTTP)

from convosim.environments.domain import load_domain
from convosim.messages import ToolCallRequest, ToolResult
from convosim.runners.tool_import import import_tools

from conftest import EXAMPLES
from support import run, scenario_for, transcripts

CONVOSIM = str(Path(sys.executable).parent / "convosim")
HERE = Path(__file__).resolve().parent
CLINIC_SERVER = f"{sys.executable} {HERE / 'mcp_clinic_server.py'}"
OPENAPI = HERE / "data" / "bike_rental_openapi.yaml"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CONVOSIM, *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def _run_generated(root: Path, tmp_path: Path, sessions: int) -> dict[str, tuple[dict, list]]:
    generated = _cli("tasks", "generate", str(root), "-n", str(sessions), "--seed", "3")
    assert generated.returncode == 0, generated.stderr
    assert json.loads(generated.stdout)["write_tools_unused"] == []
    (root / "scenario.yaml").write_text(
        f"name: {root.name}\ndomain: .\ntasks: tasks.generated.yaml\nsessions: {sessions}\nconcurrency: 8\n"
    )
    result = run(scenario_for(root / "scenario.yaml"), tmp_path / "run")
    assert result.stats["accepted"] == sessions, result.stats
    return transcripts(tmp_path / "run")


def _changes_are_seen_later(sessions: dict[str, tuple[dict, list]], write: str, field: str) -> int:
    """Sessions where a later output about the changed record shows the value the write set."""
    seen = 0
    for _, events in sessions.values():
        calls = {c.id: c for e in events if isinstance(e, ToolCallRequest) for c in e.calls}
        outputs = [(calls[r.call_id], r.output) for e in events if isinstance(e, ToolResult) for r in e.results]
        for i, (call, _) in enumerate(outputs):
            if call.name != write:
                continue
            ids = {k: v for k, v in call.arguments.items() if k.endswith("_id")}  # the record it changed
            later = [
                o
                for c, o in outputs[i + 1 :]
                if c.name != write and isinstance(o, dict) and field in o and ids.items() <= o.items()
            ]
            if later:
                assert all(o[field] == call.arguments[field] for o in later), (call, later)
                seen += 1
    return seen


def test_an_mcp_server_over_stdio_becomes_a_domain_that_runs(tmp_path: Path) -> None:
    root = tmp_path / "clinic"
    done = _cli("tools", "import", str(root), "--mcp", CLINIC_SERVER)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["imported"] == [
        "get_patient",
        "get_appointment",
        "reschedule_appointment",
        "update_patient_email",
        "clinic_opening_hours",
    ]
    assert report["renamed"] == {"clinic.opening-hours": "clinic_opening_hours"}
    assert "a user cannot say it" in report["skipped"]["search_records"]  # an object-valued filter
    domain = load_domain(root)
    assert {n: t.kind for n, t in domain.tools.items()} == {
        "get_patient": "read",
        "get_appointment": "read",
        "reschedule_appointment": "write",
        "update_patient_email": "write",
        "clinic_opening_hours": "read",
    }  # from the server's readOnlyHint
    assert domain.tools["get_patient"].output_schema["properties"]["email"] == {"title": "Email", "type": "string"}
    hours = domain.tools["clinic_opening_hours"]
    assert hours.required == ("branch",) and "note" in hours.properties  # Optional[str] -> not required
    sessions = _run_generated(root, tmp_path, 16)
    seen = _changes_are_seen_later(sessions, "update_patient_email", "email")
    seen += _changes_are_seen_later(sessions, "reschedule_appointment", "date")
    assert seen >= 3  # the simulated state carried a change to a later turn
    session = next(iter(sessions))
    verified = _cli("replay", str(tmp_path / "run"), session, "--verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_an_openapi_document_becomes_a_domain_that_runs(tmp_path: Path) -> None:
    root = tmp_path / "bikes"
    report = import_tools(root, openapi=OPENAPI)
    assert report["imported"] == ["get_station", "get_rental", "extend_rental", "end_rental", "get_station_by_code"]
    assert report["skipped"] == {
        "uploadRiderPhoto": "its request body is image/png: only JSON bodies are imported",
        "adminReport": "required header parameter 'X-Staff-Token': only path, query and JSON body are imported",
    }
    domain = load_domain(root)
    extend = domain.tools["extend_rental"]
    assert extend.kind == "write" and extend.required == ("rental_id", "extra_hours")  # path + JSON body
    assert extend.properties["extra_hours"] == {"type": "integer", "minimum": 1, "maximum": 12}
    end = domain.tools["end_rental"]
    assert end.required == ("rental_id", "station_id")  # path + required query
    station = domain.tools["get_station"].output_schema
    assert station["properties"]["note"] == {"type": "string"}  # $ref inlined, OpenAPI's nullable made plain
    assert domain.tools["get_rental"].output_schema["properties"]["status"]["enum"] == ["active", "ended"]
    sessions = _run_generated(root, tmp_path, 12)
    assert _changes_are_seen_later(sessions, "extend_rental", "extra_hours") == 0  # not an output field
    codes = [  # a parameter with a pattern (and no example) gets values the pattern matches
        c.arguments["code"]
        for _, events in sessions.values()
        for e in events
        if isinstance(e, ToolCallRequest)
        for c in e.calls
        if c.name == "get_station_by_code"
    ]
    assert codes and all(re.fullmatch(r"[A-Z]{3}[0-9]{2}", code) for code in codes)
    rows = [json.loads(line) for line in (tmp_path / "run" / "dataset.jsonl").read_text().splitlines()]
    called = {c["function"]["name"] for r in rows for m in r["messages"] for c in m.get("tool_calls") or []}
    assert {"extend_rental", "end_rental"} <= called


def test_an_mcp_server_over_http_is_imported(tmp_path: Path, http_server: str) -> None:  # noqa: F811
    """`convosim serve` is itself an MCP server: importing it over streamable HTTP gives back the
    retail example's tools, each a read or a write as the example says (the readOnlyHint)."""
    report = import_tools(tmp_path / "shop", mcp=http_server)
    retail = load_domain(EXAMPLES / "retail")
    assert set(report["imported"]) | set(report["skipped"]) == set(retail.tools)
    assert len(report["imported"]) >= len(retail.tools) - 2
    imported = load_domain(tmp_path / "shop")
    assert all(imported.tools[n].kind == retail.tools[n].kind for n in imported.tools)
    assert all(imported.tools[n].parameters == retail.tools[n].parameters for n in imported.tools)


def test_bad_sources_are_clear_errors_and_nothing_is_overwritten(tmp_path: Path) -> None:
    missing = _cli("tools", "import", str(tmp_path / "d"), "--openapi", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr and "not found" in missing.stderr
    not_openapi = tmp_path / "swagger.yaml"
    not_openapi.write_text(yaml.safe_dump({"swagger": "2.0", "paths": {}}))
    wrong = _cli("tools", "import", str(tmp_path / "d"), "--openapi", str(not_openapi))
    assert wrong.returncode == 2 and "swagger.yaml" in wrong.stderr and "openapi" in wrong.stderr
    dead = _cli("tools", "import", str(tmp_path / "d"), "--mcp", f"{sys.executable} -c 'raise SystemExit(3)'")
    assert dead.returncode == 2 and "--mcp" in dead.stderr
    both = _cli("tools", "import", str(tmp_path / "d"), "--mcp", "x", "--openapi", str(OPENAPI))
    assert both.returncode == 2 and "exactly one" in both.stderr
    assert not (tmp_path / "d" / "tools").exists() or not any((tmp_path / "d" / "tools").iterdir())
    root = tmp_path / "bikes"
    import_tools(root, openapi=OPENAPI)
    edited = root / "tools" / "get_rental.yaml"
    edited.write_text(edited.read_text().replace("Look up a rental.", "Look up a rental (edited)."))
    before = {p.name: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    again = import_tools(root, openapi=OPENAPI)
    assert again["imported"] == [] and set(again["existing"]) == {
        "get_station",
        "get_rental",
        "extend_rental",
        "end_rental",
        "get_station_by_code",
    }
    assert {p.name: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("name", ["getRental", "clinic.opening-hours", "2fa-reset"])
def test_imported_names_become_identifiers(name: str) -> None:
    from convosim.runners.tool_import import _identifier

    assert _identifier(name) in ("get_rental", "clinic_opening_hours", "t_2fa_reset")


def test_a_simulated_record_answers_the_same_whichever_tool_and_keeps_its_changes(tmp_path: Path) -> None:
    root = tmp_path / "clinic"
    import_tools(root, mcp=CLINIC_SERVER)
    domain = load_domain(root)
    env, other = domain.new_session(), domain.new_session()
    try:
        before = env.call("a", "get_patient", {"patient_id": 1701}).output
        assert env.call("b", "get_patient", {"patient_id": 1701}).output == before  # deterministic
        changed = env.call("c", "update_patient_email", {"patient_id": 1701, "email": "new.mail@example.com"})
        assert not changed.is_error and changed.rows_changed == 1
        after = env.call("d", "get_patient", {"patient_id": 1701}).output
        assert after == changed.output == {**before, "email": "new.mail@example.com"}
        assert other.call("e", "get_patient", {"patient_id": 1701}).output == before  # another session's state
        assert env.final_state()[1]["simulated_records"]["added"]  # the change is in the state the validator checks
        assert env.call("f", "get_patient", {"patient_id": "x"}).is_error  # still held to the parameter schema
    finally:
        env.close()
        other.close()


def test_simulated_outputs_hold_to_their_schemas(tmp_path: Path) -> None:
    """Every output the simulation makes validates against the tool's output schema (types,
    enums, bounds, required fields), for many records, before and after changes."""
    import random

    import jsonschema

    from convosim.environments.simulation import value

    import_tools(tmp_path / "clinic", mcp=CLINIC_SERVER)
    import_tools(tmp_path / "bikes", openapi=OPENAPI)
    checked = 0
    for name in ("clinic", "bikes"):
        domain = load_domain(tmp_path / name)
        env = domain.new_session()
        rng = random.Random(7)
        try:
            for i in range(30):
                for tool in domain.tools.values():
                    args = {p: value(s, p, rng) for p, s in tool.properties.items() if p in tool.required}
                    result = env.call(f"c{i}", tool.name, args)
                    assert not result.is_error, (tool.name, args, result.output)
                    if tool.output_schema:
                        jsonschema.validate(result.output, tool.output_schema)
                        checked += 1
        finally:
            env.close()
    assert checked >= 200


def test_the_validator_catches_corrupted_sessions_of_an_imported_domain(tmp_path: Path) -> None:
    """The checks that compare a session with a replay (outputs, facts, final state) now also hold
    for simulated tools: real sessions of the imported clinic, corrupted on purpose, are caught,
    and none of them as recorded is rejected."""
    from collections import Counter

    from test_mutations import Example, _ended, _rerun, drop_fact, tamper_output

    from convosim.environments.simulation import identifying
    from convosim.environments.tasks import load_tasks
    from convosim.rules.checks import judge
    from convosim.runners.roles import validator_checks
    from convosim.runners.store import RunStore

    root = tmp_path / "clinic"
    import_tools(root, mcp=CLINIC_SERVER)
    generated = _cli("tasks", "generate", str(root), "-n", "30", "--seed", "5")
    assert generated.returncode == 0, generated.stderr
    scenario = scenario_for(root / "scenario.yaml", sessions=30)
    run(scenario, tmp_path / "run")
    domain = load_domain(root)
    _, rubrics = load_tasks(scenario.tasks, domain)
    store = RunStore(tmp_path / "run" / "run.sqlite")
    try:
        sessions = [_ended(list(store.events(r["session_id"]))) for r in store.sessions() if r["status"] == "accepted"]
    finally:
        store.close()
    example = Example("clinic", domain, rubrics, validator_checks(scenario, domain), sessions, scenario.tasks)

    def other_record(ended, example, rng):  # a write lands on another record, outputs consistent with it
        for event in ended.transcript:
            for call in event.calls if isinstance(event, ToolCallRequest) else ():
                tool = domain.tools[call.name]
                keys = [k for k in identifying(tool) if isinstance(call.arguments.get(k), int)]
                if tool.kind == "write" and keys:
                    return _rerun(ended, example, call.id, {**call.arguments, keys[0]: call.arguments[keys[0]] + 7919})
        return None

    mutations = {
        "tamper_output": (tamper_output, "tool_output_mismatch"),
        "drop_fact": (drop_fact, "fact_missing"),
        "other_record": (other_record, "state_mismatch"),
    }
    rng = random.Random(11)
    made: Counter[str] = Counter()
    caught: Counter[str] = Counter()
    false_rejections = []
    for ended in sessions:
        if judge(ended, rubrics[ended.task_id], example.checks)[0]:
            false_rejections.append(ended.session_id)
        for kind, (mutate, code) in mutations.items():
            corrupted = mutate(ended, example, rng)
            if corrupted is None:
                continue
            made[kind] += 1
            caught[kind] += code in [r.code for r in judge(corrupted, rubrics[ended.task_id], example.checks)[0]]
    print(f"\nimported clinic: caught {dict(caught)} of {dict(made)}; false rejections {len(false_rejections)}")
    assert len(sessions) == 30 and false_rejections == []
    assert all(made[k] >= 10 for k in mutations), made
    assert caught == made


def test_a_tool_whose_sentence_reads_as_another_tools_is_left_out() -> None:
    from convosim.runners.tool_import import Candidate, ImportReport, convert

    text, number = {"type": "string"}, {"type": "integer"}
    candidates = [
        Candidate("getStatus", "Status of an order.", {"type": "object", "properties": {"order": text}}, None, "read"),
        Candidate(
            "get_status_for_the_order", "Status by id.", {"type": "object", "properties": {"id": number}}, None, "read"
        ),
        Candidate("get_rate", "A rate.", {"type": "object", "properties": {"code": text}}, None, "read"),
    ]
    for c in candidates:
        c.input_schema["required"] = list(c.input_schema["properties"])
    report = ImportReport(source="test")
    kept = convert(candidates, report)
    assert [t["name"] for t in kept] == ["get_status", "get_rate"]
    assert list(report.skipped) == ["get_status_for_the_order"]
    assert "ambiguous" in report.skipped["get_status_for_the_order"]
