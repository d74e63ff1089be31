# ruff: noqa: E501  (the catalogue is a table: one case per line)
"""A catalogue of broken domains: each case is one edit of the valid retail example.

Every case goes through the real command line (`convosim check` and `convosim run`): it must exit 2
with one message naming the file, the item and the field at fault, and write nothing: no run folder,
no change in the domain folder. The counts are printed so the catalogue's reach is visible.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from convosim.cli import app

from conftest import EXAMPLES

Edit = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    id: str
    edit: Edit
    names: tuple[str, ...]  # the file, the item and the field the message must name


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _dump(path: Path, data: Any) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def tool(name: str, change: Callable[[dict[str, Any]], None]) -> Edit:
    def edit(root: Path) -> None:
        tools = _yaml(root / "tools.yaml")
        change(next(t for t in tools if t["name"] == name))
        _dump(root / "tools.yaml", tools)

    return edit


def param(name: str, parameter: str, **extra: Any) -> Edit:
    return tool(name, lambda t: t["parameters"]["properties"][parameter].update(extra))


def task(index: int, change: Callable[[dict[str, Any]], None]) -> Edit:
    def edit(root: Path) -> None:
        tasks = _yaml(root / "tasks.yaml")
        change(tasks[index])
        _dump(root / "tasks.yaml", tasks)

    return edit


def args(index: int, subgoal: int, request: int, **values: Any) -> Edit:
    return task(index, lambda t: t["subgoals"][subgoal]["requests"][request]["args"].update(values))


def seed(table: str, index: int, **values: Any) -> Edit:
    def edit(root: Path) -> None:
        data = _yaml(root / "seed.yaml")
        data[table][index].update(values)
        _dump(root / "seed.yaml", data)

    return edit


def text(file: str, old: str, new: str) -> Edit:
    def edit(root: Path) -> None:
        body = (root / file).read_text(encoding="utf-8")
        assert old in body, f"{file} has no {old!r}"
        (root / file).write_text(body.replace(old, new, 1), encoding="utf-8")

    return edit


def write(file: str, body: str) -> Edit:
    return lambda root: (root / file).write_text(body, encoding="utf-8")


def remove(file: str) -> Edit:
    return lambda root: (root / file).unlink()


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: d.update({key: value})


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda d: d.pop(key)


GET_CUSTOMER_SQL = "SELECT customer_id, name, email, phone, tier FROM customers WHERE customer_id = :customer_id"
T = "tools.yaml"
CASES = [
    # tools: SQL
    Case("missing-column", tool("get_customer", _set("sql", GET_CUSTOMER_SQL.replace("tier", "level"))), (T, "get_customer", "sql", "level")),
    Case("missing-table", tool("get_customer", _set("sql", "SELECT * FROM clients WHERE customer_id = :customer_id")), (T, "get_customer", "sql", "clients")),
    Case("sql-syntax", tool("get_customer", _set("sql", GET_CUSTOMER_SQL.replace("SELECT", "SELEC"))), (T, "get_customer", "sql")),
    Case("two-statements", tool("get_customer", _set("sql", GET_CUSTOMER_SQL + "; DELETE FROM orders")), (T, "get_customer", "sql")),
    Case("read-that-writes", tool("get_customer", _set("sql", "UPDATE customers SET tier = 'gold' WHERE customer_id = :customer_id")), (T, "get_customer", "sql")),
    Case("write-that-reads", tool("cancel_order", _set("sql", "SELECT order_id FROM orders WHERE order_id = :order_id")), (T, "cancel_order", "sql")),
    Case("drop-table", tool("get_customer", _set("sql", "DROP TABLE customers")), (T, "get_customer", "sql")),
    Case("undeclared-parameter", tool("get_customer", _set("sql", GET_CUSTOMER_SQL + " AND tier = :tier")), (T, "get_customer", "sql", ":tier")),
    Case("positional-parameter", tool("get_customer", _set("sql", GET_CUSTOMER_SQL.replace(":customer_id", "?"))), (T, "get_customer", "sql")),
    Case("returns-one-but-many", tool("list_customer_orders", _drop("returns")), (T, "list_customer_orders", "sql", "returns")),
    Case("wrong-column-in-write", tool("update_customer_phone", lambda t: t.update(sql=t["sql"].replace("SET phone", "SET phon"))), (T, "update_customer_phone", "sql", "phon")),
    # tools: parameter schemas
    Case("misspelt-keyword", param("find_customer_by_email", "email", patern="^.+@.+$"), (T, "find_customer_by_email", "parameters", "patern")),
    Case("stray-key-from-comma", text(T, "{type: integer, description: the customer id}", "{type: integer, description: the customer id, e.g. 5}"), (T, "get_customer", "parameters", "e.g. 5")),
    Case("unknown-type", param("get_customer", "customer_id", type="int"), (T, "get_customer", "parameters", "int")),
    Case("bad-regex", param("find_customer_by_email", "email", pattern="(["), (T, "find_customer_by_email", "parameters", "pattern")),
    Case("example-off-schema", param("get_customer", "customer_id", examples=["C-1"]), (T, "get_customer", "parameters", "examples")),
    Case("required-not-declared", tool("get_customer", lambda t: t["parameters"]["required"].append("tier")), (T, "get_customer", "parameters", "tier")),
    Case("parameter-without-type", tool("get_customer", lambda t: t["parameters"]["properties"]["customer_id"].pop("type")), (T, "get_customer", "parameters", "customer_id")),
    Case("parameters-not-object", tool("get_customer", lambda t: t["parameters"].update(type="array")), (T, "get_customer", "parameters")),
    Case("output-schema-unknown-type", tool("get_customer", _set("output_schema", {"type": "object", "properties": {"name": {"type": "text"}}})), (T, "get_customer", "output_schema", "text")),
    Case("schemas-file-bad-schema", lambda root: _dump(root / "schemas.yaml", {"get_customer": {"type": "object", "required": "name"}}), ("schemas.yaml", "get_customer", "output_schema", "required")),
    # tools: the spec itself
    Case("bad-kind", tool("get_customer", _set("kind", "lookup")), (T, "get_customer", "kind")),
    Case("misspelt-field", tool("get_customer", _set("retruns", "many")), (T, "get_customer", "retruns")),
    Case("no-description", tool("get_customer", _drop("description")), (T, "get_customer", "description")),
    Case("no-phrasings", tool("get_customer", _set("phrasings", [])), (T, "get_customer", "phrasings")),
    Case("slot-not-parameter", tool("get_customer", _set("phrasings", ["Show customer {customer}."])), (T, "get_customer", "phrasings[0]", "{customer}")),
    Case("bad-tool-name", tool("get_customer", _set("name", "get customer")), (T, "get customer", "name")),
    Case("duplicate-tool", tool("get_customer", _set("name", "get_order")), (T, "get_order", "duplicate")),
    Case("ambiguous-phrasing", tool("get_order", _set("phrasings", ["What do you have on file for customer number {order_id}?"])), (T, "phrasings", "get_order")),
    Case("tools-not-a-list", write(T, "find_customer_by_email: {kind: read}\n"), (T, "list of tools")),
    Case("tools-bad-yaml", text(T, "kind: read", "kind: [read"), (T, "line")),
    Case("tools-missing", remove(T), (T, "not found")),
    # policy and manifest
    Case("policy-missing", remove("policy.md"), ("policy.md", "system prompt", "not found")),
    Case("policy-path-wrong", text("domain.yaml", "name: retail", "name: retail\npolicy: rules.md"), ("rules.md", "domain.yaml", "policy")),
    Case("policy-empty", write("policy.md", "\n\n"), ("policy.md", "system prompt", "empty")),
    Case("manifest-unknown-key", text("domain.yaml", "name: retail", "name: retail\npolicies: policy.md"), ("domain.yaml", "policies")),
    Case("schema-file-missing", text("domain.yaml", "name: retail", "name: retail\nschema_file: db.sql"), ("db.sql", "not found")),
    # schema and seed
    Case("schema-syntax", text("schema.sql", "CREATE TABLE products", "CREATE TABEL products"), ("schema.sql", "line 9", "TABEL")),
    Case("schema-attach", text("schema.sql", "-- Retail", "ATTACH DATABASE 'other.db' AS other;\n-- Retail"), ("schema.sql", "line 1", "not authorized")),
    Case("seed-unknown-table", text("seed.yaml", "customers:", "clients:\n- {id: 1}\ncustomers:"), ("seed.yaml", "clients", "not in the schema")),
    Case("seed-unknown-column", seed("customers", 2, level="gold"), ("seed.yaml", "customers[2]", "level")),
    Case("seed-check-violation", seed("customers", 1, tier="platinum"), ("seed.yaml", "customers[1]", "tier")),
    Case("seed-duplicate-key", seed("customers", 3, customer_id=1), ("seed.yaml", "customers[3]", "customer_id")),
    Case("seed-null-required", seed("customers", 0, phone=None), ("seed.yaml", "customers[0]", "phone")),
    Case("seed-not-a-mapping", write("seed.yaml", "- customers\n"), ("seed.yaml", "must map table names")),
    # tasks
    Case("malformed-reference", args(21, 3, 0, return_id="${three.return_id}"), ("tasks.yaml", "retail-022", "return_id", "${three.return_id}")),
    Case("placeholder-in-free-text", args(21, 2, 0, reason="${3.reason"), ("tasks.yaml", "retail-022", "reason")),
    # tools: the policy's preconditions
    Case("precondition-on-a-read", tool("get_order", _set("precondition", {"field": "status", "allowed": ["pending"], "reason": "only pending ones"})), (T, "get_order", "precondition", "only a write")),
    Case("precondition-read-missing", tool("cancel_order", lambda t: t["precondition"].update(read="fetch_order")), (T, "cancel_order", "precondition", "fetch_order")),
    Case("precondition-read-is-a-write", tool("cancel_order", lambda t: t["precondition"].update(read="update_customer_phone")), (T, "cancel_order", "precondition", "not a read tool")),
    Case("precondition-read-needs-more", tool("cancel_order", lambda t: t["precondition"].update(read="list_order_items", field="quantity") or t["precondition"].update(read="get_customer")), (T, "cancel_order", "precondition", "customer_id")),
    Case("precondition-field-not-shown", tool("cancel_order", lambda t: t["precondition"].update(field="colour")), (T, "cancel_order", "precondition", "colour")),
    Case("precondition-without-reason", tool("cancel_order", lambda t: t["precondition"].pop("reason")), (T, "cancel_order", "precondition", "reason")),
    Case("reference-to-missing-field", args(21, 3, 0, return_id="${3.ticket_id}"), ("tasks.yaml", "retail-022", "return_id", "ticket_id")),
    Case("placeholder-in-description", task(0, lambda t: t["subgoals"][0].update(description="Check order {order_id}.")), ("tasks.yaml", "retail-001", "subgoals[0].description")),
    Case("unknown-tool-in-task", task(0, lambda t: t["subgoals"][0]["requests"][0].update(tool="find_me")), ("tasks.yaml", "retail-001", "find_me")),
    Case("wrong-argument-type", args(0, 0, 1, order_id="one thousand and one"), ("tasks.yaml", "retail-001", "order_id")),
    Case("unknown-argument", args(0, 0, 1, colour="red"), ("tasks.yaml", "retail-001", "colour")),
    Case("fact-not-an-output", task(0, lambda t: t["subgoals"][0]["facts"].append("colour")), ("tasks.yaml", "retail-001", "colour")),
    Case("gold-call-fails", args(0, 1, 0, order_id=1003), ("tasks.yaml", "retail-001", "update_shipping_address")),
    Case("duplicate-task-id", task(1, _set("id", "retail-001")), ("tasks.yaml", "tasks[1].id", "retail-001")),
    Case("task-without-goal", task(0, _drop("goal")), ("tasks.yaml", "tasks[0]", "goal")),
]  # fmt: skip


def _fingerprint(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_broken_domain_exits_2_naming_file_item_and_field(case: Case, tmp_path: Path, runner: CliRunner) -> None:
    root = tmp_path / "shop"
    shutil.copytree(EXAMPLES / "retail", root)
    case.edit(root)
    before = _fingerprint(root)
    for command in (["check", str(root)], ["run", str(root / "scenario.yaml"), "--out", str(tmp_path / "out"), "-q"]):
        result = runner.invoke(app, command)
        message = " ".join(result.output.split())  # rich may wrap a long line
        assert result.exit_code == 2, f"{command[0]}: exit {result.exit_code}: {result.output}"
        assert message.startswith("error: "), result.output
        missing = [name for name in case.names if name not in message]
        assert not missing, f"{command[0]}: {missing} not named in: {message}"
    assert not (tmp_path / "out").exists()
    assert _fingerprint(root) == before


def test_catalogue_reach(capsys: pytest.CaptureFixture[str]) -> None:
    files: dict[str, int] = {}
    for case in CASES:
        files[case.names[0]] = files.get(case.names[0], 0) + 1
    with capsys.disabled():
        print(f"\nbroken-domain catalogue: {len(CASES)} cases; by file: {files}")
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


def test_the_unedited_domain_passes(tmp_path: Path, runner: CliRunner) -> None:
    root = tmp_path / "shop"
    shutil.copytree(EXAMPLES / "retail", root)
    result = runner.invoke(app, ["check", str(root)])
    assert result.exit_code == 0, result.output
    assert "46 tasks verified" in result.output


def test_more_input_cases_are_one_line_errors_or_work(tmp_path: Path, runner: CliRunner) -> None:
    """Item by item: a non-UTF-8 file, a WITH name hiding a table, REPLACE INTO (valid SQLite),
    a domain with 120 tables (its schema is read without tripping the query timeout)."""
    root = tmp_path / "shop"
    shutil.copytree(EXAMPLES / "retail", root)
    (root / "policy.md").write_bytes("Caf\xe9 policy".encode("latin-1"))
    result = runner.invoke(app, ["check", str(root)])
    assert result.exit_code == 2 and "policy.md" in result.output and "not UTF-8" in result.output
    (root / "policy.md").write_text("A policy.\n")
    (root / "tasks.yaml").write_bytes((root / "tasks.yaml").read_bytes() + b"\n# \xff\n")
    result = runner.invoke(app, ["check", str(root)])
    assert result.exit_code == 2 and "tasks.yaml: line" in " ".join(result.output.split())
    shutil.copy(EXAMPLES / "retail" / "tasks.yaml", root / "tasks.yaml")
    tool("get_customer", _set("sql", "WITH sqlite_master AS (SELECT 1 AS customer_id) " + GET_CUSTOMER_SQL))(root)
    result = runner.invoke(app, ["check", str(root)])
    assert result.exit_code == 2 and "may not hide a table" in " ".join(result.output.split())
    tool("get_customer", _set("sql", GET_CUSTOMER_SQL))(root)
    replace = "REPLACE INTO customers (customer_id, name, email, phone, tier) VALUES (:customer_id, :name, :email, :phone, 'standard') RETURNING customer_id, name"
    tool(
        "update_customer_phone",
        lambda t: t.update(
            sql=replace,
            parameters={
                **t["parameters"],
                "properties": {
                    **t["parameters"]["properties"],
                    "name": {"type": "string"},
                    "email": {"type": "string", "format": "email"},
                },
                "required": ["customer_id", "name", "email", "phone"],
            },
            phrasings=["Please store customer {customer_id} as {name}, {email}, phone {phone}."],
        ),
    )(root)
    (root / "tasks.yaml").write_text("[]\n")
    result = runner.invoke(app, ["check", str(root), "--tasks", str(tmp_path / "none.yaml")])
    assert result.exit_code == 0, result.output
    wide = tmp_path / "wide"
    shutil.copytree(EXAMPLES / "retail", wide)
    extra = "".join(f"CREATE TABLE extra_{i} (id INTEGER PRIMARY KEY, note TEXT);\n" for i in range(120))
    (wide / "schema.sql").write_text((wide / "schema.sql").read_text() + extra)
    result = runner.invoke(app, ["check", str(wide)])
    assert result.exit_code == 0 and "125 tables" in result.output, result.output
