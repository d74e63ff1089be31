"""Pipeline stages: tool expansion, output schemas, task generation, then a run; on two domains."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from convosim.agents.llm_toolsmith import LLMToolsmith
from convosim.environments.domain import load_domain
from convosim.environments.output_schemas import check_schemas, derive_schema
from convosim.environments.tasks import load_tasks
from convosim.errors import ConvosimError
from convosim.llm.client import LLMClient
from convosim.llm.config import ModelConfig
from convosim.llm.usage import UsageMeter
from convosim.runners.pipeline import expand_tools, write_schemas, write_tasks
from convosim.testing import ChatReply, ScriptedChatServer

from conftest import EXAMPLES
from support import run, scenario_for

SEED_TOOLS = ("find_customer_by_email", "get_order", "update_shipping_address")

LIBRARY_SCHEMA = """
CREATE TABLE members (member_id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE,
    plan TEXT NOT NULL CHECK (plan IN ('basic', 'premium')));
CREATE TABLE books (book_id INTEGER PRIMARY KEY, title TEXT NOT NULL, author TEXT NOT NULL,
    shelf TEXT NOT NULL CHECK (shelf IN ('fiction', 'science', 'history')), copies INTEGER NOT NULL);
CREATE TABLE loans (loan_id INTEGER PRIMARY KEY, member_id INTEGER NOT NULL REFERENCES members(member_id),
    book_id INTEGER NOT NULL REFERENCES books(book_id), due_date TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('out', 'returned', 'late')));
"""


def retail_from_seed_tools(tmp_path: Path, retail_dir: Path) -> Path:
    root = tmp_path / "shop"
    root.mkdir()
    for name in ("schema.sql", "seed.yaml", "policy.md"):
        shutil.copy(retail_dir / name, root / name)
    tools = [t for t in yaml.safe_load((retail_dir / "tools.yaml").read_text()) if t["name"] in SEED_TOOLS]
    (root / "tools.yaml").write_text(yaml.safe_dump(tools, sort_keys=False))
    return root


def library_domain(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    root.mkdir()
    (root / "schema.sql").write_text(LIBRARY_SCHEMA)
    members = [
        {
            "member_id": i,
            "name": f"Member {i}",
            "email": f"m{i}@lib.example.org",
            "plan": "premium" if i % 3 == 0 else "basic",
        }
        for i in range(1, 13)
    ]
    shelves = ["fiction", "science", "history"]
    books = [
        {
            "book_id": 100 + i,
            "title": f"Volume {i}",
            "author": f"Author {i % 5}",
            "shelf": shelves[i % 3],
            "copies": 1 + i % 4,
        }
        for i in range(1, 16)
    ]
    loans = [
        {
            "loan_id": 500 + i,
            "member_id": 1 + i % 12,
            "book_id": 101 + i % 15,
            "due_date": f"2026-12-{1 + i % 28:02d}",
            "state": ["out", "returned", "late"][i % 3],
        }
        for i in range(24)
    ]
    (root / "seed.yaml").write_text(yaml.safe_dump({"members": members, "books": books, "loans": loans}))
    (root / "policy.md").write_text("You are a library's help desk.")
    (root / "tools.yaml").write_text(
        yaml.safe_dump(
            [
                {
                    "name": "find_member",
                    "description": "Find a member by email.",
                    "kind": "read",
                    "parameters": {
                        "type": "object",
                        "properties": {"email": {"type": "string", "format": "email"}},
                        "required": ["email"],
                    },
                    "sql": "SELECT member_id, name, plan FROM members WHERE email = :email",
                    "phrasings": ["My library email is {email}.", "Find the member with email {email}, please."],
                }
            ],
            sort_keys=False,
        )
    )
    return root


def full_pipeline(root: Path, tmp_path: Path, n_tasks: int, sessions: int) -> tuple[dict, dict, dict, dict]:
    tools_report = expand_tools(root)
    schemas_report = write_schemas(root)
    tasks_report = write_tasks(root, root / "tasks.generated.yaml", n_tasks, seed=1)
    (root / "scenario.yaml").write_text(
        f"name: {root.name}\ndomain: .\ntasks: tasks.generated.yaml\nsessions: {sessions}\nconcurrency: 16\n"
    )
    result = run(scenario_for(root / "scenario.yaml"), tmp_path / "run")
    return tools_report, schemas_report, tasks_report, result.stats


def test_retail_from_three_seed_tools(tmp_path, retail_dir) -> None:
    root = retail_from_seed_tools(tmp_path, retail_dir)
    tools, schemas, tasks, stats = full_pipeline(root, tmp_path, 110, 110)
    domain = load_domain(root)
    assert len(domain.tools) >= 12 and tools["before"] == 3
    assert (root / "tools.yaml").read_text().count("name:") == 3, "seed tools untouched"
    assert schemas["rejected"] == {} and not schemas["without_schema"]
    assert tasks["tasks"] >= 100 and tasks["mean_subgoals"] >= 2.5
    assert tasks["distinct_tool_sequences"] >= 50 and set(tasks["subgoal_histogram"]) == {"2", "3", "4"}
    loaded, rubrics = load_tasks(root / "tasks.generated.yaml", domain)  # verified again on load
    assert len(loaded) == tasks["tasks"]
    assert any(r.expected_diff for r in rubrics.values()), "some tasks change state"
    assert stats["accepted_pct"] >= 90
    # coverage: the writes no chain of reads can reach here (a return's id is never listed; an item's
    # quantity needs a four-step chain through a pending order) are named, and nothing else is missing
    assert set(tasks["write_tools_unused"]) <= {"update_return_reason", "update_order_item_quantity"}
    assert tasks["refused_requests"] > 0 and tasks["multi_call_subgoals"] > 10
    assert stats["behaviour_tags"].get("refusal", 0) > 0


def test_a_domain_built_here_works_end_to_end(tmp_path) -> None:
    root = library_domain(tmp_path)
    tools, _, tasks, stats = full_pipeline(root, tmp_path, 60, 60)
    assert len(load_domain(root).tools) >= 10
    assert tasks["tasks"] >= 50 and tasks["mean_subgoals"] >= 2.5
    assert tasks["write_tools_unused"] == []  # every write tool of the domain is used across the set
    assert stats["accepted_pct"] >= 90
    assert not [r for r in tools["rejected"] if "sql:" in r["reason"]], tools["rejected"]


def test_existing_tool_files_are_never_overwritten(tmp_path) -> None:
    root = library_domain(tmp_path)
    (root / "tools").mkdir()
    mine = root / "tools" / "get_book.yaml"
    mine.write_text(
        yaml.safe_dump(
            {
                "name": "get_book",
                "description": "My own book lookup.",
                "kind": "read",
                "parameters": {
                    "type": "object",
                    "properties": {"book_id": {"type": "integer"}},
                    "required": ["book_id"],
                },
                "sql": "SELECT title FROM books WHERE book_id = :book_id",
                "phrasings": ["Which title has book {book_id}?"],
            }
        )
    )
    before = mine.read_text()
    report = expand_tools(root)
    assert mine.read_text() == before
    assert {"tool": "get_book", "reason": "a tool with this name already exists (kept as written)"} in report[
        "rejected"
    ]


def test_schemas_validate_real_outputs_and_catch_a_wrong_one(retail_dir) -> None:
    domain = load_domain(retail_dir)
    schemas = {name: derive_schema(domain, tool) for name, tool in domain.tools.items()}
    assert check_schemas(domain, schemas) == {}
    assert schemas["list_order_items"]["type"] == "array"
    assert schemas["get_order"]["properties"]["total"] == {"type": "number"}
    wrong = json.loads(json.dumps(schemas["get_order"]))
    wrong["properties"]["order_id"] = {"type": "string"}
    problems = check_schemas(domain, {"get_order": wrong})
    assert "get_order" in problems and "is not of type 'string'" in problems["get_order"][0]


def _llm_toolsmith(server: ScriptedChatServer) -> LLMToolsmith:
    return LLMToolsmith(LLMClient(ModelConfig(model="openai/toolsmith", api_base=server.base_url), UsageMeter()))


GOOD = {
    "name": "search_books_by_author",
    "description": "List the books of an author.",
    "kind": "read",
    "returns": "many",
    "parameters": {"type": "object", "properties": {"author": {"type": "string"}}, "required": ["author"]},
    "sql": "SELECT book_id, title FROM books WHERE author = :author",
    "phrasings": ["Which books do you have by {author}?", "List every book written by {author}, please."],
}
UNSAFE = [
    {**GOOD, "name": "delete_everything", "sql": "DELETE FROM books; DROP TABLE loans"},
    {**GOOD, "name": "get_fines", "sql": "SELECT * FROM fines WHERE author = :author"},
    {**GOOD, "name": "get_sneaky", "sql": "UPDATE books SET copies = 0 WHERE author = :author"},
    {**GOOD, "name": "get_attached", "sql": "ATTACH DATABASE 'x.db' AS x"},
    {"name": "broken", "description": "no kind"},
]


def test_llm_expansion_over_http_rejects_unsafe_sql_and_never_writes_it(tmp_path) -> None:
    root = library_domain(tmp_path)
    calls = []

    def toolsmith(body):
        prompt = body["messages"][-1]["content"]
        calls.append(prompt)
        if 'Reply with a JSON object only: {"questions"' in prompt:
            return ChatReply(content=json.dumps({"questions": ["Which books by Author 2 do you have?"]}))
        tools = [GOOD, *UNSAFE] if "Turn these user questions" in prompt else [UNSAFE[0]]
        return ChatReply(content=json.dumps({"tools": tools}))

    with ScriptedChatServer({"toolsmith": toolsmith}) as server:
        report = expand_tools(root, _llm_toolsmith(server))
    assert len(calls) == 3, "questions, question-to-spec, complementary expansion"
    assert report["added"] == ["search_books_by_author"]
    reasons = {r["tool"]: r["reason"] for r in report["rejected"]}
    assert "exactly one statement" in reasons["delete_everything"]
    assert "undeclared table(s) fines" in reasons["get_fines"]
    assert "declared kind 'read'" in reasons["get_sneaky"]
    assert "not allowed" in reasons["get_attached"]
    assert "invalid spec" in reasons["broken"]
    written = sorted(p.stem for p in (root / "tools").iterdir())
    assert written == ["search_books_by_author"]
    assert "search_books_by_author" in load_domain(root).tools


def test_llm_schema_prediction_for_tools_without_sql_is_type_consistent(tmp_path) -> None:
    root = library_domain(tmp_path)
    (root / "tools").mkdir()
    (root / "tools" / "recommend_books.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "recommend_books",
                "description": "Recommend books for a member.",
                "kind": "read",
                "returns": "many",
                "parameters": {
                    "type": "object",
                    "properties": {"member_id": {"type": "integer"}},
                    "required": ["member_id"],
                },
                "phrasings": ["What would you recommend for member {member_id}?"],
            }
        )
    )

    def predictor(body):
        # The model gets member_id wrong (string) and forgets the array: both are fixed.
        schema = {"type": "object", "properties": {"member_id": {"type": "string"}, "title": {"type": "string"}}}
        return ChatReply(content=json.dumps({"schemas": {"recommend_books": schema}}))

    with ScriptedChatServer({"toolsmith": predictor}) as server:
        report = write_schemas(root, _llm_toolsmith(server))
    schemas = yaml.safe_load((root / "schemas.yaml").read_text())
    predicted = schemas["recommend_books"]
    assert predicted["type"] == "array"
    assert predicted["items"]["properties"]["member_id"]["type"] == "integer"
    assert report["without_schema"] == []
    assert load_domain(root).tools["recommend_books"].output_schema == predicted


def test_pipeline_command_reports_every_stage(tmp_path) -> None:
    root = library_domain(tmp_path)
    cli = Path(sys.executable).parent / "convosim"
    result = subprocess.run(
        [str(cli), "pipeline", str(root), "-n", "30", "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "run" / "pipeline.json").read_text())
    assert [s["stage"] for s in report["stages"]] == ["tools", "schemas", "tasks"]
    assert report["stages"][2]["tasks"] == 30 and "subgoal_histogram" in report["stages"][2]
    assert report["run"]["sessions"] == 30


@pytest.mark.parametrize("bad", ["2-x", "5-2"])
def test_bad_subgoal_range_is_a_clear_error(tmp_path, bad) -> None:
    root = library_domain(tmp_path)
    cli = Path(sys.executable).parent / "convosim"
    result = subprocess.run(
        [str(cli), "tasks", "generate", str(root), "--subgoals", bad], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "subgoals" in result.stderr and "Traceback" not in result.stderr


def test_llm_task_writer_rewrites_texts_and_keeps_the_gold_calls(tmp_path) -> None:
    root = library_domain(tmp_path)
    expand_tools(root)

    def writer(body):
        steps = [ln for ln in body["messages"][-1]["content"].splitlines() if ln[:1].isdigit()]
        return ChatReply(
            content=json.dumps(
                {
                    "goal": "You want your library account sorted out.",
                    "subgoals": [f"Step {i + 1}, in your own words." for i in range(len(steps))],
                }
            )
        )

    from convosim.agents.llm_toolsmith import LLMTaskWriter

    offline = write_tasks(root, tmp_path / "offline.yaml", 10, seed=4)
    with ScriptedChatServer({"toolsmith": writer}) as server:
        report = write_tasks(
            root, tmp_path / "llm.yaml", 10, seed=4, writer=LLMTaskWriter(_llm_toolsmith(server).client)
        )
    assert report["texts_not_rewritten"] == 0 and offline["tasks"] == report["tasks"] == 10
    a = yaml.safe_load((tmp_path / "offline.yaml").read_text())
    b = yaml.safe_load((tmp_path / "llm.yaml").read_text())
    assert all(t["goal"] == "You want your library account sorted out." for t in b)
    assert [[s["requests"] for s in t["subgoals"]] for t in a] == [[s["requests"] for s in t["subgoals"]] for t in b]
    load_tasks(tmp_path / "llm.yaml", load_domain(root))  # still verifies


def test_rerunning_the_schema_stage_keeps_every_schema(tmp_path, retail_dir) -> None:
    root = retail_from_seed_tools(tmp_path, retail_dir)
    expand_tools(root)
    first = write_schemas(root)
    written = yaml.safe_load((root / "schemas.yaml").read_text())
    assert first["added"] and len(written) == first["schemas"]
    edited = {**written, "get_order": {**written["get_order"], "description": "edited by hand"}}
    (root / "schemas.yaml").write_text(yaml.safe_dump(edited))
    second = write_schemas(root)
    assert second["added"] == [] and second["kept"] == sorted(edited)
    assert yaml.safe_load((root / "schemas.yaml").read_text()) == edited  # nothing truncated, edits kept
    assert not second["without_schema"]


def test_rerunning_task_generation_adds_and_never_overwrites(tmp_path, retail_dir) -> None:
    root = retail_from_seed_tools(tmp_path, retail_dir)
    expand_tools(root)
    out = root / "tasks.generated.yaml"
    first = write_tasks(root, out, 6, seed=1)
    tasks = yaml.safe_load(out.read_text())
    assert first["added"] == len(tasks) == 6
    tasks[0]["goal"] = "A goal a person rewrote."
    out.write_text(yaml.safe_dump(tasks, sort_keys=False))
    again = write_tasks(root, out, 6, seed=1)  # the same seed: the same ids, nothing new
    assert again["added"] == 0 and again["kept"] == 6
    assert yaml.safe_load(out.read_text())[0]["goal"] == "A goal a person rewrote."
    more = write_tasks(root, out, 9, seed=1)
    assert more["added"] == 3 and len(yaml.safe_load(out.read_text())) == 9
    (root / "notes.yaml").write_text("just: notes\n")
    with pytest.raises(ConvosimError, match="is not a task list"):
        write_tasks(root, root / "notes.yaml", 3)
    assert (root / "notes.yaml").read_text() == "just: notes\n"


def test_offline_expansion_makes_a_working_create_tool_for_text_ids(tmp_path) -> None:
    root = tmp_path / "fleet"
    root.mkdir()
    (root / "schema.sql").write_text(
        "CREATE TABLE vehicles (plate TEXT PRIMARY KEY, model TEXT NOT NULL, "
        "status TEXT NOT NULL CHECK (status IN ('free', 'rented')));\n"
    )
    vehicles = [{"plate": f"AB-{100 + i}", "model": f"Model {i}", "status": "free"} for i in range(5)]
    (root / "seed.yaml").write_text(yaml.safe_dump({"vehicles": vehicles}))
    (root / "policy.md").write_text("You rent vehicles.")
    (root / "tools.yaml").write_text(
        yaml.safe_dump(
            [
                {
                    "name": "get_vehicle_model",
                    "description": "The model of a vehicle.",
                    "kind": "read",
                    "parameters": {
                        "type": "object",
                        "properties": {"plate": {"type": "string"}},
                        "required": ["plate"],
                    },
                    "sql": "SELECT plate, model FROM vehicles WHERE plate = :plate",
                    "phrasings": ["Which model has plate {plate}?"],
                }
            ]
        )
    )
    report = expand_tools(root)
    assert "create_vehicle" in report["added"], report
    domain = load_domain(root)
    env = domain.new_session()
    try:
        result = env.call("c1", "create_vehicle", {"plate": "ZZ-999", "model": "Model X", "status": "free"})
    finally:
        env.close()
    assert not result.is_error and result.output["plate"] == "ZZ-999"


def _written_columns(tool) -> set[str]:
    import sqlglot
    from sqlglot import exp

    statement = sqlglot.parse_one(tool.sql, read="sqlite")
    if isinstance(statement, exp.Update):
        return {e.left.name for e in statement.expressions}
    if isinstance(statement, exp.Insert):
        return {c.name for c in statement.this.expressions}
    return set()


@pytest.mark.parametrize("name", ["retail", "telecom"])
def test_generated_tools_and_tasks_stay_what_a_customer_may_ask(tmp_path, name) -> None:
    """From the example's schema and three of its tools: no generated tool sets money, a status,
    a timestamp or a column the domain's own tools own; each carries the guards of the hand-written
    writes on its records; every task is a customer's, about their own records or the catalog."""
    source = EXAMPLES / name
    root = tmp_path / name
    root.mkdir()
    for file in ("schema.sql", "seed.yaml", "policy.md"):
        shutil.copy(source / file, root / file)
    seed_tools = {"retail": SEED_TOOLS, "telecom": ("find_account_by_email", "get_line", "change_line_plan")}[name]
    tools = [t for t in yaml.safe_load((source / "tools.yaml").read_text()) if t["name"] in seed_tools]
    assert len(tools) == 3
    (root / "tools.yaml").write_text(yaml.safe_dump(tools, sort_keys=False))
    report = expand_tools(root)
    domain = load_domain(root)
    generated = [domain.tools[n] for n in report["added"]]
    assert any(t.kind == "write" for t in generated)
    forbidden = re.compile(r"price|total|amount|fee|balance|stock|status|state|tier|created_at")
    hand_written = {c for t in tools if t["kind"] == "write" for c in _written_columns(domain.tools[t["name"]])}
    for tool in generated:
        if tool.kind != "write":
            continue
        written = _written_columns(tool)
        assert not {c for c in written if forbidden.search(c)}, (tool.name, written)
        assert not written & hand_written, (tool.name, "sets what a hand-written tool owns")
    if name == "retail":  # orders change only while pending: so do their lines
        item = domain.tools["update_order_item_quantity"]
        assert "status = 'pending'" in item.sql
        env = domain.new_session()
        try:
            shipped = next(r for r in domain.snapshot["orders"] if r["status"] != "pending")["order_id"]
            line = next(r for r in domain.snapshot["order_items"] if r["order_id"] == shipped)
            refused = env.call("c", item.name, {**{k: line[k] for k in ("order_id", "product_id")}, "quantity": 3})
        finally:
            env.close()
        assert refused.is_error
    write_tasks(root, root / "tasks.generated.yaml", 60, seed=3)
    domain = load_domain(root)
    tasks, rubrics = load_tasks(root / "tasks.generated.yaml", domain)
    person, key = {"retail": ("customers", "customer_id"), "telecom": ("accounts", "account_id")}[name]
    people = {r["email"]: r[key] for r in domain.snapshot[person]}
    for task in tasks:
        email = re.search(r"email (\S+?)\)", task.context)
        assert email and email.group(1) in people, task.context  # a customer, never a product
        mine = people[email.group(1)]
        env = domain.new_session()
        try:
            for _, call in rubrics[task.id].gold_calls:
                output = env.call("g", call.tool, call.args).output
                rows = output if isinstance(output, list) else [output]
                assert all(r.get(key, mine) == mine for r in rows), (task.id, call.tool, rows)
        finally:
            env.close()
