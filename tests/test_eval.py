"""`convosim eval`: an assistant served over HTTP by the test server, whose failures are scripted,
gets exactly the pass^k (tau2-bench's definition) those failures imply; `eval compare` sets two
evaluations side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from convosim.cli import app
from convosim.environments.domain import load_domain
from convosim.environments.tasks import load_tasks
from convosim.runners.evaluation import pass_hat_k
from convosim.testing import ScriptedChatServer
from convosim.testing.scripted import OfflineResponders
from convosim.testing.server import ChatReply

from conftest import EXAMPLES
from support import scenario_for


def test_pass_hat_k_is_tau2_benchs() -> None:
    assert pass_hat_k(4, 4, 4) == 1.0 and pass_hat_k(4, 3, 4) == 0.0
    assert pass_hat_k(3, 2, 1) == pytest.approx(2 / 3) and pass_hat_k(3, 2, 2) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        pass_hat_k(2, 2, 3)


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    """The retail example cut to its first four tasks, run one session at a time (session i plays
    task i mod 4, trial i div 4, in that order)."""
    tasks = yaml.safe_load((EXAMPLES / "retail" / "tasks.yaml").read_text())[:4]
    (tmp_path / "tasks.yaml").write_text(yaml.safe_dump(tasks, sort_keys=False))
    data = yaml.safe_load((EXAMPLES / "retail" / "scenario.yaml").read_text())
    data.update(domain=str(EXAMPLES / "retail"), tasks="tasks.yaml", concurrency=1)
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(data))
    return tmp_path / "scenario.yaml"


def _serve(scenario: Path, failing: set[int]) -> ScriptedChatServer:
    base = scenario_for(scenario)
    domain = load_domain(base.domain)
    tasks, _ = load_tasks(base.tasks, domain)
    offline = OfflineResponders(domain.tools, tasks, base.rules, base.persona)
    order: dict[str, int] = {}

    async def assistant(body: dict) -> ChatReply:
        if body["messages"][0]["role"] != "system":  # the pre-flight check, not a session
            return await offline.assistant(body)
        first = next(m["content"] for m in body["messages"] if m["role"] == "user")
        if order.setdefault(first, len(order)) in failing:
            return ChatReply(content="Sorry, I can't help with that.")
        return await offline.assistant(body)

    server = ScriptedChatServer({"assistant": assistant})
    server.order = order  # type: ignore[attr-defined]
    return server


def test_eval_reports_the_pass_hat_k_its_failures_imply(scenario: Path, tmp_path: Path) -> None:
    # 4 tasks x 3 trials; sessions that fail: task 0 trial 0; task 1 trials 1, 2; task 2 always; task 3 never
    failing = {0, 5, 9, 2, 6, 10}
    runner = CliRunner()
    outs = {}
    for name, fails in (("flaky", failing), ("steady", set())):
        with _serve(scenario, fails) as server:
            args = ["eval", str(scenario), "--assistant-model", "openai/assistant", "--api-base", server.base_url]
            result = runner.invoke(app, [*args, "-k", "3", "--out", str(tmp_path / name), "-q"])
            assert result.exit_code == 0, result.output
            assert len(server.order) == 12  # every session was told apart  # type: ignore[attr-defined]
        outs[name] = json.loads((tmp_path / name / "eval.json").read_text())
    flaky = outs["flaky"]
    assert flaky["k"] == 3 and flaky["model"] == "openai/assistant"
    assert [t["successes"] for t in flaky["tasks"].values()] == [2, 1, 0, 3]
    assert flaky["overall"]["pass^k"] == {"1": 0.5, "2": round((1 / 3 + 1) / 4, 4), "3": 0.25}
    assert flaky["tasks"]["retail-001"]["pass^k"] == {"1": round(2 / 3, 4), "2": round(1 / 3, 4), "3": 0.0}
    assert flaky["overall"]["db_success"] < 1 and "not_completed" in flaky["overall"]["rejection_reasons"]
    assert flaky["overall"]["assistant_tokens"] > 0 and flaky["overall"]["assistant_cost_usd"] is None
    assert outs["steady"]["overall"]["pass^k"] == {"1": 1.0, "2": 1.0, "3": 1.0}
    compared = runner.invoke(app, ["eval", "compare", str(tmp_path / "flaky"), str(tmp_path / "steady")])
    assert compared.exit_code == 0, compared.output
    assert "pass^3" in compared.output and "0.250" in compared.output and "1.000" in compared.output
    bad = runner.invoke(app, ["eval", "compare", str(tmp_path / "flaky")])
    assert bad.exit_code == 2
