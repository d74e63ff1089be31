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
    logs = runner.invoke(app, ["logs", str(run_dir), "--type", "tool_result", "--json"])
    assert logs.exit_code == 0 and "cancel_order" in logs.output


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
