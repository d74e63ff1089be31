"""300 sessions of each example and of a punctuation-heavy domain, audited from outside.

The audit (tests/audit.py) reads only the run folder and the domain, so it catches what a user
fine-tuning on `dataset.jsonl` would trip over, whatever the agents believe they did.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from audit import audit_run
from punct_domain import build_punct_domain

from convosim.environments.domain import load_domain
from convosim.environments.tasks import load_tasks

from conftest import EXAMPLES
from support import run, scenario_for


@pytest.mark.parametrize("name", ["retail", "telecom", "punct"])
def test_three_hundred_sessions_carry_no_cut_value_placeholder_or_wrong_readback(name: str, tmp_path: Path) -> None:
    scenario_path = build_punct_domain(tmp_path / "domain") if name == "punct" else EXAMPLES / name / "scenario.yaml"
    scenario = scenario_for(scenario_path, sessions=300)
    result = run(scenario, tmp_path / "out")
    domain = load_domain(scenario.domain)
    _, rubrics = load_tasks(scenario.tasks, domain)
    audit = audit_run(tmp_path / "out", domain, rubrics)
    print(f"{name}: {audit.summary()}")
    assert audit.sessions == 300
    assert audit.accepted == result.stats["accepted"] == audit.rows
    assert audit.accepted >= 285, audit.summary()  # the offline pair completes nearly every task
    assert audit.truncated == []
    assert audit.placeholders == []
    assert audit.wrong_readbacks == []
    assert audit.rows_without_system == 0
    if name != "retail":
        assert audit.readbacks > 50  # the read-back check was exercised, not vacuously passed
