"""100 sessions of each example and of a punctuation-heavy domain, audited from outside.

The audit (tests/audit.py) reads only the run folder and the domain, so it catches what a user
fine-tuning on `dataset.jsonl` would trip over, whatever the agents believe they did.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from audit import audit_run
from punct_domain import build_punct_domain

from convosim.agents.offline_language import CONFIRM_RE, CORRECTION_RE, confirmed_values
from convosim.environments.domain import load_domain
from convosim.environments.phrasing import label, unquote
from convosim.environments.tasks import load_tasks
from convosim.messages import AssistantMessage, UserMessage

from conftest import EXAMPLES
from support import run, scenario_for, transcripts


@pytest.mark.parametrize("name", ["retail", "telecom", "punct"])
def test_a_hundred_sessions_carry_no_cut_value_placeholder_or_wrong_readback(name: str, tmp_path: Path) -> None:
    # 100 sessions prove the point (every defect class is zero, read-backs exercised); the 300-session
    # figures live in benchmarks/dialogue_quality.py, outside the suite's time budget.
    scenario_path = build_punct_domain(tmp_path / "domain") if name == "punct" else EXAMPLES / name / "scenario.yaml"
    scenario = scenario_for(scenario_path, sessions=100)
    result = run(scenario, tmp_path / "out")
    domain = load_domain(scenario.domain)
    _, rubrics = load_tasks(scenario.tasks, domain)
    audit = audit_run(tmp_path / "out", domain, rubrics)
    print(f"{name}: {audit.summary()}")
    assert audit.sessions == 100
    assert audit.accepted == result.stats["accepted"] == audit.rows
    assert audit.accepted >= 95, audit.summary()  # the offline pair completes nearly every task
    assert audit.truncated == []
    assert audit.placeholders == []
    assert audit.wrong_readbacks == []
    assert audit.rows_without_system == 0
    if name != "retail":
        assert audit.readbacks > 15  # the read-back check was exercised, not vacuously passed


@pytest.mark.parametrize("name", ["telecom", "punct"])
def test_a_user_who_slips_often_corrects_itself_and_never_repeats_the_slip(name: str, tmp_path: Path) -> None:
    scenario_path = build_punct_domain(tmp_path / "domain") if name == "punct" else EXAMPLES / name / "scenario.yaml"
    scenario = scenario_for(scenario_path, sessions=100, persona={"slip_rate": 0.6})
    result = run(scenario, tmp_path / "out")
    sessions = transcripts(tmp_path / "out")
    labels = sorted({label(n) for t in load_domain(scenario.domain).tools.values() for n in t.properties})
    corrections = 0
    for row, events in sessions.values():
        assert row["end_reason"] == "completed", row
        slipped: set[str] = set()
        for event in events:
            if isinstance(event, AssistantMessage) and (m := CONFIRM_RE.search(event.content)):
                said = confirmed_values(m.group("pairs"), labels)
                last_confirmed = {k: unquote(v) for k, v in said.items()}
            if isinstance(event, UserMessage):
                for fix in CORRECTION_RE.finditer(event.content):
                    corrections += 1
                    wrong = last_confirmed[fix.group("label")]
                    if len(wrong) >= 4 or any(c.isdigit() for c in wrong):  # "on" is also just a word
                        slipped.add(wrong)
                if not CORRECTION_RE.search(event.content):
                    assert not any(re.search(rf"(?<!\w){re.escape(s)}(?!\w)", event.content) for s in slipped), event
    print(f"{name}: {corrections} corrections in 100 sessions, all completed")
    assert corrections > 7
    assert result.stats["accepted"] == 100
