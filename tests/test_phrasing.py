"""Values full of punctuation survive every phrasing round trip: said, parsed, read back, heard."""

from __future__ import annotations

import pytest

from convosim.agents.offline_language import READBACK_RE, heard_values
from convosim.environments.phrasing import PhraseBook, render_value, unquote
from convosim.models import ToolSpec

VALUES = [
    "Dr. Ines Tanaka",
    "25 Chestnut Avenue, Lakeside",
    "St. Louis",
    "J.R.R. Tolkien",
    "1.5 GB",
    "Suite 4, Floor 2",
    "Suite 4, Floor 2.",
    'The "big" one, please.',
    "Washington, D.C.",
    "plain words",
]
EMAILS = ["a.b@c.com", "mj.oneil@example.org"]

TOOL = ToolSpec.model_validate(
    {
        "name": "update_member",
        "description": "Change a member's name and email.",
        "kind": "write",
        "parameters": {
            "type": "object",
            "properties": {
                "member_id": {"type": "integer"},
                "name": {"type": "string"},
                "email": {"type": "string", "format": "email"},
            },
            "required": ["member_id", "name", "email"],
        },
        "sql": "UPDATE members SET name = :name, email = :email WHERE member_id = :member_id RETURNING *",
        "phrasings": [
            "Please change member {member_id} to {name}, email {email}.",
            "Member {member_id} is now {name} with email {email}, thanks.",
        ],
    }
)


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("email", EMAILS)
def test_values_survive_a_request_round_trip(value: str, email: str) -> None:
    book = PhraseBook({TOOL.name: TOOL})
    vague = 0
    for phrasing in book.by_tool[TOOL.name]:  # the domain's, their other openings, and "my member" (no id)
        args = {k: v for k, v in {"member_id": 7, "name": value, "email": email}.items() if k in phrasing.slots}
        vague += "member_id" not in args
        text = "Hello there. " + phrasing.render(args) + " Bye."
        parsed = book.parse(text)
        assert [(p.tool, p.args) for p in parsed] == [(TOOL.name, args)]
    assert vague == 2  # each of the two phrasings names the member by id


@pytest.mark.parametrize("value", VALUES + EMAILS)
def test_values_survive_a_readback_and_a_heard_value(value: str) -> None:
    readback = f"Just to be sure, the name is now {render_value(value)}, right?"
    match = READBACK_RE.search(readback)
    assert match is not None and unquote(match.group("value")) == value
    answer = f"Done, the change is saved: member id: 7, name: {render_value(value)}, city: Oslo."
    assert {k: unquote(v) for k, v in heard_values(answer, ["name"]).items()} == {"name": value}
    last = f"Here is what I found: member id: 7, name: {render_value(value)}."
    assert {k: unquote(v) for k, v in heard_values(last, ["name"]).items()} == {"name": value}
