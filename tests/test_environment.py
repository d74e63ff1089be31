import sqlite3

import pytest

from convosim.environments.database import SessionDatabase
from convosim.environments.domain import load_domain
from convosim.environments.state import diff, state_hash


@pytest.fixture(scope="module")
def retail(retail_dir):
    return load_domain(retail_dir)


def test_sessions_are_isolated_clones(retail) -> None:
    a, b = retail.new_session(), retail.new_session()
    try:
        out = a.call("c1", "cancel_order", {"order_id": 1001})
        assert not out.is_error and out.output["status"] == "cancelled"
        assert a.call("c2", "get_order", {"order_id": 1001}).output["status"] == "cancelled"
        assert b.call("c3", "get_order", {"order_id": 1001}).output["status"] == "pending"
        assert b.state_hash() == retail.template_hash != a.state_hash()
    finally:
        a.close()
        b.close()


def test_row_level_diff_names_the_changed_row(retail) -> None:
    env = retail.new_session()
    try:
        env.call("c1", "update_shipping_address", {"order_id": 1001, "shipping_address": "1 New Road, Lakeside"})
        changes = env.diff_from_template()
        assert list(changes) == ["orders"]
        [change] = changes["orders"]["changed"]
        assert change["key"] == [1001]
        assert change["changes"]["shipping_address"][1] == "1 New Road, Lakeside"
    finally:
        env.close()


def test_trigger_updates_are_visible_to_later_calls(retail) -> None:
    env = retail.new_session()
    try:
        before = env.call("c1", "get_order", {"order_id": 1001}).output["total"]
        item = env.call("c2", "list_order_items", {"order_id": 1001}).output[0]
        env.call(
            "c3",
            "update_item_quantity",
            {"order_id": 1001, "product_id": item["product_id"], "quantity": item["quantity"] + 1},
        )
        after = env.call("c4", "get_order", {"order_id": 1001}).output["total"]
        assert after == pytest.approx(before + item["unit_price"])
    finally:
        env.close()


def test_sql_injection_argument_changes_nothing(retail) -> None:
    env = retail.new_session()
    try:
        evil = "1; DROP TABLE orders; --"
        out = env.call("c1", "update_shipping_address", {"order_id": 1001, "shipping_address": evil})
        # The text is stored as data (it is a valid address string), never executed as SQL.
        assert env.call("c2", "get_order", {"order_id": 1001}).output["shipping_address"] == evil
        assert not out.is_error
        probe = env.call("c3", "get_order", {"order_id": evil})
        assert probe.is_error and "invalid arguments" in probe.output["error"]
        tables = {r[0] for r in env.db.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "orders" in tables
        assert len(env.db.snapshot()["orders"]) == len(retail.snapshot["orders"])
    finally:
        env.close()


def test_injection_in_a_lookup_changes_no_state(retail) -> None:
    env = retail.new_session()
    try:
        out = env.call("c1", "find_customer_by_email", {"email": "x@example.com' OR '1'='1"})
        assert out.is_error
        assert env.state_hash() == retail.template_hash
    finally:
        env.close()


@pytest.mark.parametrize(
    "sql",
    [
        "ATTACH DATABASE '/tmp/x.db' AS other",
        "PRAGMA foreign_keys = OFF",
        "SELECT load_extension('x')",
    ],
)
def test_session_connection_refuses_dangerous_statements(retail, sql) -> None:
    env = retail.new_session()
    try:
        with pytest.raises(sqlite3.DatabaseError):
            env.db.execute(sql, {}, write=False)
    finally:
        env.close()


def test_runaway_query_is_interrupted(retail) -> None:
    db = SessionDatabase(retail.template.image, timeout_s=0.05)
    try:
        from convosim.environments.database import QueryTimeout

        with pytest.raises(QueryTimeout):
            db.execute(
                "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r",
                {},
                write=False,
            )
    finally:
        db.close()


def test_state_hash_is_order_independent() -> None:
    keys = {"t": ("id",)}
    a = {"t": [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]}
    b = {"t": [{"id": 2, "v": "b"}, {"id": 1, "v": "a"}]}
    assert state_hash(a, keys) == state_hash(b, keys)
    changed = {"t": [{"id": 1, "v": "a"}, {"id": 2, "v": "c"}, {"id": 3, "v": "d"}]}
    d = diff(a, changed, keys)
    assert d["t"]["added"] == [{"id": 3, "v": "d"}]
    assert d["t"]["changed"] == [{"key": [2], "changes": {"v": ["b", "c"]}}]


@pytest.mark.parametrize(
    ("tool", "args", "problem"),
    [
        ("find_customer_by_email", {"email": "not-an-email"}, "is not a 'email'"),
        ("get_customer", {"customer_id": 2**63}, "64-bit integer range"),
        ("get_customer", {"customer_id": -(2**70)}, "64-bit integer range"),
    ],
)
def test_arguments_are_checked_for_format_and_range(retail, tool, args, problem) -> None:
    """A value the schema or SQLite cannot take is a tool error for the assistant, never a crash."""
    env = retail.new_session()
    try:
        result = env.call("c", tool, args)
    finally:
        env.close()
    assert result.is_error and problem in result.output["error"]


def test_a_pattern_does_not_accept_a_trailing_newline() -> None:
    from convosim.environments.tools import argument_errors
    from convosim.models import ToolSpec

    tool = ToolSpec.model_validate(
        {
            "name": "t",
            "description": "d",
            "kind": "read",
            "parameters": {"type": "object", "properties": {"code": {"type": "string", "pattern": "^P\\d$"}}},
            "phrasings": ["Plan {code}."],
        }
    )
    assert argument_errors(tool, {"code": "P1"}) == []
    assert argument_errors(tool, {"code": "P1\n"})


def test_a_huge_tool_result_is_a_tool_error_not_a_memory_spike(retail) -> None:
    from convosim.environments.tools import run_tool
    from convosim.models import ToolSpec

    flood = ToolSpec.model_validate(
        {
            "name": "flood",
            "description": "Every row many times over.",
            "kind": "read",
            "returns": "many",
            "sql": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)"
            " SELECT i, printf('%0100d', i) AS pad FROM n",
            "phrasings": ["Flood me."],
        }
    )
    env = retail.new_session(max_output_bytes=100_000)
    try:
        with pytest.raises(Exception, match="larger than 100000 bytes"):
            run_tool(env.db, flood, {})
    finally:
        env.close()


def test_a_memory_bomb_in_sql_is_a_quick_tool_error(retail) -> None:
    """A value larger than the output cap is refused by SQLite itself, not allocated first."""
    import resource

    from convosim.environments.tools import ToolError, run_tool
    from convosim.models import ToolSpec

    bomb = ToolSpec.model_validate(
        {
            "name": "bomb",
            "description": "A huge value.",
            "kind": "read",
            "sql": "SELECT length(randomblob(800000000)) AS n",
            "phrasings": ["Bomb."],
        }
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    env = retail.new_session()
    try:
        with pytest.raises(ToolError, match="too big"):
            run_tool(env.db, bomb, {})
    finally:
        env.close()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: nothing like 800 MB
