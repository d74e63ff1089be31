"""A domain the tests build themselves, whose free-text values are full of punctuation.

Names like "Dr. Ines Tanaka", addresses like "Suite 4, Floor 2", cities like "St. Louis": every
one must survive being said by the user, parsed by the assistant, read back and corrected.
"""

from __future__ import annotations

from pathlib import Path

import yaml

PEOPLE = [
    (1, "Dr. Ines Tanaka", "ines.tanaka@example.com", "Suite 4, Floor 2", "St. Louis"),
    (2, "J.R.R. Tolkien", "a.b@c.com", "20 Northmoor Rd., Oxford", "Oxford"),
    (3, "Mary-Jane O'Neil", "mj.oneil@example.org", "Apt. 5B, 12 Elm St.", "Washington, D.C."),
    (4, "Prof. A. N. Other", "other.an@example.net", "1 Main St., Unit 3; rear", "Ft. Myers"),
    (5, "Ana Lucía Pérez, Jr.", "alp@example.com", "P.O. Box 17, Stn. A", "Sault Ste. Marie"),
    (6, "Li Wei", "li.wei@example.cn", "Rm. 1.5, Bldg. 2", "St. John's"),
]
NEW_NAMES = ["Dr. Ines Tanaka-Berg", "Sr. Paolo R. Rossi", "Mrs. E. Smith, MBE", "K. O'Hara, Esq."]
NEW_ADDRESSES = ["12 Rue St.-Denis, Apt. 3", "Flat 2, 7 High St.", "Suite 4, Floor 2.", "1.5 Mile Rd., No. 9"]
PLANS = [("P1", "1.5 GB, unlimited calls"), ("P2", "10 GB; roaming: EU only"), ("P3", "Basic: 500 MB.")]

SCHEMA = """
CREATE TABLE members (
    member_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    address TEXT NOT NULL,
    city TEXT NOT NULL,
    plan_id TEXT NOT NULL REFERENCES plans(plan_id)
);
CREATE TABLE plans (plan_id TEXT PRIMARY KEY, summary TEXT NOT NULL);
"""

TOOLS = [
    {
        "name": "find_member_by_email",
        "description": "Find a member by email address.",
        "kind": "read",
        "parameters": {
            "type": "object",
            "properties": {"email": {"type": "string", "format": "email", "description": "the email"}},
            "required": ["email"],
        },
        "sql": "SELECT member_id, name, city FROM members WHERE email = :email",
        "phrasings": ["My email is {email}, can you find me?", "Please look up the member with email {email}."],
    },
    {
        "name": "get_member",
        "description": "Get a member's details.",
        "kind": "read",
        "parameters": {
            "type": "object",
            "properties": {"member_id": {"type": "integer", "description": "the member number"}},
            "required": ["member_id"],
        },
        "sql": "SELECT m.member_id, m.name, m.address, m.city, p.summary AS plan_summary "
        "FROM members m JOIN plans p ON p.plan_id = m.plan_id WHERE m.member_id = :member_id",
        "phrasings": ["What do you have on file for member {member_id}?", "Can you show me member {member_id}?"],
    },
    {
        "name": "update_member_name",
        "description": "Change a member's full name.",
        "kind": "write",
        "parameters": {
            "type": "object",
            "properties": {
                "member_id": {"type": "integer", "description": "the member number"},
                "name": {"type": "string", "minLength": 2, "description": "the new full name"},
            },
            "required": ["member_id", "name"],
        },
        "sql": "UPDATE members SET name = :name WHERE member_id = :member_id RETURNING member_id, name",
        "phrasings": [
            "Please change the name on member {member_id} to {name}.",
            "I'd like the name of member {member_id} to be {name} from now on.",
            "Can you update the name on member {member_id}?",
        ],
    },
    {
        "name": "update_member_address",
        "description": "Change a member's postal address and city.",
        "kind": "write",
        "parameters": {
            "type": "object",
            "properties": {
                "member_id": {"type": "integer", "description": "the member number"},
                "address": {"type": "string", "minLength": 3, "description": "the new street address"},
                "city": {"type": "string", "minLength": 2, "description": "the new city"},
            },
            "required": ["member_id", "address", "city"],
        },
        "sql": "UPDATE members SET address = :address, city = :city WHERE member_id = :member_id "
        "RETURNING member_id, address, city",
        "phrasings": [
            "Please move member {member_id} to {address} in {city}.",
            "Member {member_id} has a new address: {address}, city {city}.",
            "Can you change the address of member {member_id}?",
        ],
    },
    {
        "name": "get_plan",
        "description": "Describe a plan.",
        "kind": "read",
        "parameters": {
            "type": "object",
            "properties": {
                "plan_id": {"type": "string", "pattern": "^P\\d$", "examples": ["P1"], "description": "the plan code"}
            },
            "required": ["plan_id"],
        },
        "sql": "SELECT plan_id, summary FROM plans WHERE plan_id = :plan_id",
        "phrasings": ["What does plan {plan_id} include?", "Tell me about plan {plan_id}."],
    },
]


def _tasks() -> list[dict]:
    tasks = []
    for i, (mid, name, email, _address, _city) in enumerate(PEOPLE):
        for j in range(4):
            new_name = NEW_NAMES[(i + j) % len(NEW_NAMES)]
            new_address = NEW_ADDRESSES[(i + 2 * j) % len(NEW_ADDRESSES)]
            new_city = [c for *_, c in PEOPLE][(i + j + 1) % len(PEOPLE)]
            plan = PLANS[(i + j) % len(PLANS)][0]
            subgoals = [
                {
                    "description": "Find your membership.",
                    "requests": [{"tool": "find_member_by_email", "args": {"email": email}}],
                    "facts": ["member_id"],
                },
                {
                    "description": f"Have your name changed to {new_name}.",
                    "requests": [
                        {"tool": "update_member_name", "args": {"member_id": "${1.member_id}", "name": new_name}}
                    ],
                    "facts": ["name"],
                },
                {
                    "description": f"Move to {new_address} in {new_city}.",
                    "requests": [
                        {
                            "tool": "update_member_address",
                            "args": {"member_id": "${1.member_id}", "address": new_address, "city": new_city},
                        }
                    ],
                    "facts": ["address", "city"],
                },
                {
                    "description": f"Ask what plan {plan} includes.",
                    "requests": [{"tool": "get_plan", "args": {"plan_id": plan}}],
                    "facts": ["summary"],
                },
            ]
            if j % 2:
                subgoals = [subgoals[0], subgoals[3], subgoals[2], subgoals[1]]
            tasks.append(
                {
                    "id": f"punct-{mid}-{j}",
                    "context": f"You are {name} ({email}).",
                    "goal": "Update your membership details.",
                    "subgoals": subgoals,
                }
            )
    return tasks


def build_punct_domain(root: Path, sessions: int = 300) -> Path:
    """Write the domain and a scenario into `root`; returns the scenario path."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "schema.sql").write_text(SCHEMA, encoding="utf-8")
    seed = {
        "plans": [{"plan_id": p, "summary": s} for p, s in PLANS],
        "members": [
            {"member_id": m, "name": n, "email": e, "address": a, "city": c, "plan_id": PLANS[m % 3][0]}
            for m, n, e, a, c in PEOPLE
        ],
    }
    (root / "seed.yaml").write_text(yaml.safe_dump(seed, sort_keys=False, allow_unicode=True), encoding="utf-8")
    (root / "policy.md").write_text("You are the membership desk. Confirm every change before making it.\n")
    (root / "tools.yaml").write_text(yaml.safe_dump(TOOLS, sort_keys=False, allow_unicode=True), encoding="utf-8")
    (root / "tasks.yaml").write_text(yaml.safe_dump(_tasks(), sort_keys=False, allow_unicode=True), encoding="utf-8")
    scenario = {
        "name": "punct",
        "domain": ".",
        "tasks": "tasks.yaml",
        "sessions": sessions,
        "concurrency": 16,
        "seed": 11,
        "rules": {"max_subgoals_per_message": 2, "max_turns": 30},
    }
    (root / "scenario.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
    return root / "scenario.yaml"
