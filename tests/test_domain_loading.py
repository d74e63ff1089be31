"""A broken domain is refused at load with an error naming the file, the tool and the problem."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from convosim.environments.domain import load_domain
from convosim.environments.tasks import load_tasks
from convosim.errors import ConvosimError

GOOD_TOOL = {
    "name": "peek_orders",
    "description": "Look at orders.",
    "kind": "read",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "integer"}}, "required": ["order_id"]},
    "sql": "SELECT order_id, status FROM orders WHERE order_id = :order_id",
    "phrasings": ["Peek at order {order_id} please."],
}


def domain_with_tool(tmp_path: Path, retail_dir: Path, **changes) -> Path:
    target = tmp_path / "shop"
    shutil.copytree(retail_dir, target)
    tools = yaml.safe_load((target / "tools.yaml").read_text())
    tools.append({**GOOD_TOOL, **changes})
    (target / "tools.yaml").write_text(yaml.safe_dump(tools, sort_keys=False))
    return target


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sql": "SELECT * FROM payments WHERE order_id = :order_id"}, "undeclared table(s) payments"),
        ({"sql": "SELECT * FROM orders WHERE order_id = :order_id; DELETE FROM orders"}, "exactly one statement"),
        ({"sql": "UPDATE orders SET status = 'cancelled' WHERE order_id = :order_id"}, "declared kind 'read'"),
        ({"sql": "DROP TABLE orders"}, "not allowed"),
        ({"sql": "SELECT * FROM orders WHERE order_id = :order_id AND status = :status"}, ":status not declared"),
        ({"sql": "SELECT * FROM orders WHERE order_id = ?"}, "positional"),
        ({"phrasings": ["Peek at {order_number}."]}, "slot {order_number} is not a parameter"),
        ({"kind": "maybe"}, "kind"),
    ],
)
def test_bad_tool_is_refused_naming_file_and_tool(tmp_path, retail_dir, changes, message) -> None:
    folder = domain_with_tool(tmp_path, retail_dir, **changes)
    with pytest.raises(ConvosimError) as err:
        load_domain(folder)
    text = str(err.value)
    assert text.startswith(str(folder / "tools.yaml"))
    assert "peek_orders" in text
    assert message in text


def test_declared_write_in_a_cte_is_still_a_write(tmp_path, retail_dir) -> None:
    sql = "WITH x AS (SELECT 1) UPDATE orders SET status = 'cancelled' WHERE order_id = :order_id"
    folder = domain_with_tool(tmp_path, retail_dir, sql=sql)
    with pytest.raises(ConvosimError, match="declared kind 'read' but the statement is a write"):
        load_domain(folder)


def test_ambiguous_phrasings_are_refused(tmp_path, retail_dir) -> None:
    folder = domain_with_tool(tmp_path, retail_dir, phrasings=["What's the status of order {order_id}?"])
    with pytest.raises(ConvosimError, match="ambiguous phrasing"):
        load_domain(folder)


def test_malformed_yaml_names_file_and_line(tmp_path, retail_dir) -> None:
    target = tmp_path / "shop"
    shutil.copytree(retail_dir, target)
    (target / "tools.yaml").write_text("- name: x\n  description: [unclosed\n")
    with pytest.raises(ConvosimError) as err:
        load_domain(target)
    assert str(err.value).startswith(f"{target / 'tools.yaml'}: line ")


def test_seed_rows_for_unknown_table(tmp_path, retail_dir) -> None:
    target = tmp_path / "shop"
    shutil.copytree(retail_dir, target)
    seed = yaml.safe_load((target / "seed.yaml").read_text())
    seed["coupons"] = [{"code": "X"}]
    (target / "seed.yaml").write_text(yaml.safe_dump(seed))
    with pytest.raises(ConvosimError, match=r"seed.yaml: coupons: table is not in the schema"):
        load_domain(target)


def test_task_with_failing_gold_call_is_refused(tmp_path, retail_dir) -> None:
    domain = load_domain(retail_dir)
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(
        yaml.safe_dump(
            [
                {
                    "id": "bad",
                    "goal": "cancel a shipped order",
                    "subgoals": [
                        {"description": "cancel", "requests": [{"tool": "cancel_order", "args": {"order_id": 1003}}]}
                    ],
                }
            ]
        )
    )
    with pytest.raises(ConvosimError) as err:
        load_tasks(tasks, domain)
    assert str(err.value).startswith(f"{tasks}: task 'bad' (tasks[0]): subgoals[0].requests[0]: gold call cancel_order")


def test_task_fact_must_be_an_output_field(tmp_path, retail_dir) -> None:
    domain = load_domain(retail_dir)
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(
        yaml.safe_dump(
            [
                {
                    "id": "t",
                    "goal": "g",
                    "subgoals": [
                        {
                            "description": "d",
                            "requests": [{"tool": "get_order", "args": {"order_id": 1001}}],
                            "facts": ["colour"],
                        }
                    ],
                }
            ]
        )
    )
    with pytest.raises(ConvosimError, match="'colour' is not an output field"):
        load_tasks(tasks, domain)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "convosim", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("scenario_text", "field"),
    [
        ("name: x\ndomain: .\ntasks: tasks.yaml\nsessions: many\n", "sessions"),
        (
            "name: x\ndomain: .\ntasks: tasks.yaml\nrules: {max_subgoals_per_message: 0}\n",
            "rules.max_subgoals_per_message",
        ),
        ("name: x\ndomain: .\ntasks: tasks.yaml\ncolour: blue\n", "colour"),
        ("name: x\ntasks: tasks.yaml\n", "domain"),
        ("name: x\ndomain: .\ntasks: tasks.yaml\nroles: {user: {policy: telepathy}}\n", "roles.user.policy"),
    ],
)
def test_malformed_scenario_gives_one_line_error(tmp_path, retail_dir, scenario_text, field) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(scenario_text)
    result = _cli("run", str(scenario), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode != 0
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert str(scenario) in lines[0] and field in lines[0]
    assert not (tmp_path / "out").exists()


def test_broken_domain_through_cli_is_one_line(tmp_path, retail_dir) -> None:
    folder = domain_with_tool(tmp_path, retail_dir, sql="SELECT * FROM payments WHERE order_id = :order_id")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"name: x\ndomain: {folder}\ntasks: {folder / 'tasks.yaml'}\n")
    result = _cli("run", str(scenario), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "tools.yaml" in lines[0] and "peek_orders" in lines[0] and "payments" in lines[0]
