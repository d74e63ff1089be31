"""`convosim test`: a scripted scenario that passes, one that fails on each kind of expectation,
the exit code, the JUnit XML, and the run each test leaves behind for `replay`."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import yaml
from typer.testing import CliRunner

from convosim.cli import app

from conftest import EXAMPLES

PASSING = EXAMPLES / "retail" / "tests" / "cancel_shipped.yaml"


def _variant(tmp_path: Path, name: str, change) -> Path:
    data = yaml.safe_load(PASSING.read_text())
    data["scenario"] = str(EXAMPLES / "retail" / "scenario.yaml")
    data["name"] = name
    change(data)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _real_write(data: dict) -> None:
    """Cancel a pending order (1001, task retail-010 cancels it) while expecting no write."""
    data["task"] = "retail-010"
    data["turns"] = [
        {"say": "Please cancel order 1001."},
        {"say": "Yes, go ahead.", "expect": [{"no_write": True}]},
        {"say": "That's all, thanks."},
    ]
    data["expect"] = []


FAILING = {
    "wrong_call": lambda d: d["turns"][0]["expect"].__setitem__(
        0, {"tool_called": {"name": "get_order", "arguments": {"order_id": 9}}}
    ),
    "a_write": _real_write,
    "not_mentioned": lambda d: d["turns"][0]["expect"].__setitem__(1, {"mentions": "cancelled"}),
    "db_rows": lambda d: d["expect"].__setitem__(
        0, {"db": {"query": "SELECT status FROM orders WHERE order_id = 1016", "rows": [["cancelled"]]}}
    ),
    "verdict": lambda d: d["expect"].__setitem__(1, {"verdict": "rejected"}),
}


def test_a_passing_scenario_exits_0_and_leaves_a_run_to_replay(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["test", str(PASSING), "--out", str(tmp_path / "runs"), "--junit", str(tmp_path / "j.xml")]
    )
    assert result.exit_code == 0, result.output
    assert "PASSED (8 expectations)" in result.output and "1 passed, 0 failed" in result.output
    suite = ET.parse(tmp_path / "j.xml").getroot()
    assert suite.get("tests") == "1" and suite.get("failures") == "0" and suite.find("testcase/failure") is None
    run_dir = tmp_path / "runs" / "cancel_shipped"
    logs = runner.invoke(app, ["logs", str(run_dir), "--type", "tool_call_request", "--json"])
    assert logs.exit_code == 0 and "get_order" in logs.output
    assert "cancel_order" not in logs.output  # the forbidden change was never attempted


def test_each_kind_of_expectation_fails_when_it_does_not_hold(tmp_path: Path) -> None:
    paths = [_variant(tmp_path, name, change) for name, change in FAILING.items()]
    result = CliRunner().invoke(
        app, ["test", *map(str, paths), "--out", str(tmp_path / "runs"), "--junit", str(tmp_path / "j.xml")]
    )
    assert result.exit_code == 1, result.output
    assert "0 passed, 5 failed" in result.output
    assert "no call of get_order with {'order_id': 9}" in result.output
    assert "a write went through: ['cancel_order']" in result.output
    assert "the assistant never said 'cancelled'" in result.output
    assert "rows [['shipped']], expected [['cancelled']]" in result.output
    assert "verdict accepted (no reasons), expected rejected" in result.output
    assert "    | assistant: " in result.output  # the transcript excerpt of the failing turn
    suite = ET.parse(tmp_path / "j.xml").getroot()
    cases = suite.findall("testcase")
    assert suite.get("failures") == "5" and [c.get("name") for c in cases] == list(FAILING)
    assert all(len(c.findall("failure")) == 1 for c in cases)


def test_a_malformed_test_file_is_refused_with_its_field(tmp_path: Path) -> None:
    bad = _variant(tmp_path, "bad", lambda d: d["turns"][0]["expect"].append({"mentions": "x", "verdict": "accepted"}))
    result = CliRunner().invoke(app, ["test", str(bad), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "bad.yaml" in result.output and "exactly one" in result.output


def _scripted(tmp_path: Path, name: str, turns: list[dict], expect: list[dict], task: str = "retail-041") -> Path:
    path = tmp_path / f"{name}.yaml"
    data = {"name": name, "scenario": str(EXAMPLES / "retail" / "scenario.yaml"), "task": task, "turns": turns}
    path.write_text(yaml.safe_dump({**data, "expect": expect}, sort_keys=False))
    return path


def _user_lines(run_dir: Path) -> list[str]:
    from convosim.messages import UserMessage
    from convosim.runners.store import RunStore

    store = RunStore(run_dir / "run.sqlite")
    try:
        events = store.events(store.sessions()[0]["session_id"])
        return [e.content for e in events if isinstance(e, UserMessage)]
    finally:
        store.close()


def test_intents_are_worded_by_the_user_policy_and_assistant_turns_can_be_scripted(tmp_path: Path) -> None:
    from convosim.environments.domain import load_domain
    from convosim.environments.phrasing import PhraseBook

    turns = [
        {
            "intent": {"tool": "get_order", "args": {"order_id": 1016}},
            "expect": [
                {"tool_called": {"name": "get_order", "arguments": {"order_id": 1016}}},
                {"mentions": "shipped"},
            ],
        },
        {
            "intent": {"tool": "cancel_order", "args": {"order_id": 1016}},
            "expect": [{"no_write": True}, {"mentions": "pending"}],
        },
        {
            "say": "Which items are in it?",
            "assistant": {
                "calls": [{"name": "list_order_items", "arguments": {"order_id": 1016}}],
                "say": "Order 1016 holds the items I just looked up.",
            },
            "expect": [
                {"tool_called": {"name": "list_order_items", "arguments": {"order_id": 1016}}},
                {"mentions": "items I just looked up"},
            ],
        },
        {"intent": {"move": "goodbye"}},
    ]
    path = _scripted(
        tmp_path,
        "worded",
        turns,
        [{"db": {"query": "SELECT status FROM orders WHERE order_id = 1016", "rows": [["shipped"]]}}],
    )
    result = CliRunner().invoke(app, ["test", str(path), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert "PASSED (7 expectations)" in result.output
    lines = _user_lines(tmp_path / "runs" / "worded")
    book = PhraseBook(load_domain(EXAMPLES / "retail").tools)
    assert [(p.tool, p.args) for p in book.parse(lines[0])] == [("get_order", {"order_id": 1016})]
    assert [(p.tool, p.args) for p in book.parse(lines[1])] == [("cancel_order", {"order_id": 1016})]
    assert lines[2] == "Which items are in it?"  # said verbatim
    # a scripted assistant's calls run for real: a change it makes is a real write, and caught
    writes = [
        {
            "say": "Cancel order 1001.",
            "assistant": {"calls": [{"name": "cancel_order", "arguments": {"order_id": 1001}}], "say": "Done."},
            "expect": [{"no_write": True}],
        },
        {"intent": {"move": "goodbye"}},
    ]
    failing = _scripted(tmp_path, "scripted_write", writes, [], task="retail-010")
    result = CliRunner().invoke(app, ["test", str(failing), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 1 and "a write went through: ['cancel_order']" in result.output


def test_an_intent_is_worded_by_an_llm_user_over_http(tmp_path: Path) -> None:
    from convosim.testing import ScriptedChatServer
    from convosim.testing.server import ChatReply

    asked: list[str] = []

    async def user(body: dict) -> ChatReply:
        system = body["messages"][0]["content"] if body["messages"][0]["role"] == "system" else ""
        asked.append(system)
        if "Write your next message" in system and "order_id 1016" in system:
            return ChatReply(content='{"message": "Hey, could you check order 1016 for me?", "task_complete": false}')
        return ChatReply(content='{"message": "Thanks, bye.", "task_complete": true}')

    turns = [
        {
            "intent": {"tool": "get_order", "args": {"order_id": 1016}},
            "expect": [{"tool_called": {"name": "get_order", "arguments": {"order_id": 1016}}}],
        },
        {"say": "That's all, thanks."},
    ]
    path = _scripted(tmp_path, "llm_worded", turns, [])
    with ScriptedChatServer({"user": user}) as server:
        args = [
            "test",
            str(path),
            "--out",
            str(tmp_path / "runs"),
            "--user-model",
            "openai/user",
            "--api-base",
            server.base_url,
        ]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert _user_lines(tmp_path / "runs" / "llm_worded")[0] == "Hey, could you check order 1016 for me?"
    assert any("Ask the assistant to" in a for a in asked)


def test_a_malformed_turn_names_the_field(tmp_path: Path) -> None:
    path = _scripted(tmp_path, "bad", [{"say": "Hi", "intent": {"move": "confirm"}}], [])
    result = CliRunner().invoke(app, ["test", str(path), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "turns" in result.output and "exactly one of say" in result.output
