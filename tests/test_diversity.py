"""The diversity numbers are counted as defined, and `stats` reports them for a real run."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from convosim.cli import app
from convosim.messages import AssistantMessage, UserMessage
from convosim.runners.diversity import diversity

from conftest import EXAMPLES
from support import run, scenario_for, transcripts


def _user(text: str, n: int) -> UserMessage:
    return UserMessage(id=f"u{n}", session_id="s", turn=n, sender="user", recipient="assistant", content=text)


def _assistant(text: str, n: int) -> AssistantMessage:
    return AssistantMessage(id=f"a{n}", session_id="s", turn=n, sender="assistant", recipient="user", content=text)


def test_the_numbers_are_counted_as_defined() -> None:
    one = [_user("check order one", 1), _assistant("It is shipped. Anything else?", 1)]
    two = [_user("check order two", 2), _assistant("It is pending. Anything else?", 2)]
    three = [_user("check order one", 3), _assistant("It is shipped. Anything else?", 3)]
    numbers = diversity([one, two, three])
    assert numbers["distinct_user_messages"] == round(2 / 3, 3)
    assert numbers["distinct_assistant_messages"] == round(2 / 3, 3)
    # user 2-grams: (check order), (order one|two) -> 3 distinct of 6
    assert numbers["distinct_user_bigrams"] == 0.5
    assert numbers["top_assistant_sentence"] == "Anything else?" and numbers["top_assistant_sentence_share"] == 1.0


def test_stats_reports_the_diversity_of_accepted_sessions(tmp_path: Path) -> None:
    run(scenario_for(EXAMPLES / "telecom" / "scenario.yaml", sessions=30), tmp_path / "run")
    result = CliRunner().invoke(app, ["stats", str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    reported = json.loads(result.output)["diversity"]
    accepted = [events for row, events in transcripts(tmp_path / "run").values() if row["status"] == "accepted"]
    assert reported == diversity(accepted)
    assert reported["distinct_assistant_messages"] >= 0.6 and reported["top_assistant_sentence_share"] <= 0.1
    table = CliRunner().invoke(app, ["stats", str(tmp_path / "run")])
    assert "distinct user bigrams" in table.output
