"""Tools with no SQL (imported from an MCP server or an OpenAPI document), simulated offline.

Their outputs are made from the tool's output JSON schema, deterministically: a field of a record
(the record named by an identifying argument, `order_id` 5) has one value whichever tool reports
it, so two lookups agree. A write stores what it set on its record in the session's own database
(`simulated_records`), and every later output about that record says so. State, strict replay,
the validator's state check and the gold replay of tasks therefore work as they do for SQL tools,
with no model and no network; an LLM may play the tools instead (`tool_executor: llm`), held to
the same schemas.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from datetime import date, timedelta
from typing import Any

import jsonschema
from faker.providers.geo import Provider as Geo
from faker.providers.person.en_US import Provider as Person

from convosim.environments.database import SessionDatabase
from convosim.environments.phrasing import matching
from convosim.models import ToolSpec

TABLE = "simulated_records"
DDL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (entity TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, "
    "PRIMARY KEY (entity, key));"
)
# What names a record: a key (`order_id`, `sku`), else a handle (`email`) when there is no key.
_KEY = re.compile(r"(?:^|_)(?:id|number|code|sku|reference|ref)$", re.IGNORECASE)
_HANDLE = re.compile(r"(?:^|_)(?:email|username|slug)$", re.IGNORECASE)
_IDENTIFIER = re.compile(f"{_KEY.pattern}|{_HANDLE.pattern}", re.IGNORECASE)
_WORDS = ["amber", "birch", "cedar", "delta", "ember", "fable", "grove", "harbor", "indigo", "juniper", "kestrel"]
_STATUSES = ["active", "pending", "confirmed", "open", "scheduled", "in progress", "on hold"]
_FIRST_NAMES = sorted(Person.first_names)
_LAST_NAMES = sorted(Person.last_names)


def output_schema(tool: ToolSpec) -> dict[str, Any]:
    """The schema outputs are held to: the tool's own, else any object (or list of objects)."""
    if tool.output_schema:
        return tool.output_schema
    return {"type": "array", "items": {"type": "object"}} if tool.returns == "many" else {"type": "object"}


def is_identifier(name: str) -> bool:
    """Whether a field's name says it names a record (a key or a handle)."""
    return _IDENTIFIER.search(name) is not None


def naming(names: list[str]) -> list[str]:
    """Of these field names, the ones that name a record: its keys, else one handle. `email` names
    the patient in a lookup by email, but is the new value in a change of a patient's email."""
    keys = [n for n in names if _KEY.search(n)]
    return keys or [n for n in names if _HANDLE.search(n)][:1]


def identifying(tool: ToolSpec) -> list[str]:
    """The parameters that name the record a call is about: required ones whose names say so."""
    return naming(list(tool.required))


def _seed(*parts: Any) -> int:
    text = json.dumps(parts, sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _first(schema: dict[str, Any]) -> dict[str, Any]:
    """One concrete alternative of a schema (the first non-null of anyOf/oneOf)."""
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if isinstance(s, dict) and s.get("type") != "null"]
            return _first(options[0]) if options else {"type": "null"}
    kind = schema.get("type")
    if isinstance(kind, list):
        return {**schema, "type": next((k for k in kind if k != "null"), "null")}
    return schema


def value(schema: dict[str, Any], name: str, rng: random.Random) -> Any:
    """A plausible value of `schema` for a field called `name`."""
    schema = _first(schema)
    if "const" in schema:
        return schema["const"]
    if schema.get("examples"):
        return rng.choice(schema["examples"])
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: value(v, k, random.Random(_seed(rng.random(), k))) for k, v in props.items()}
    if kind == "array":
        item = schema.get("items", {})
        count = max(schema.get("minItems", 1), min(schema.get("maxItems", 3), rng.randint(1, 3)))
        return [value(item if isinstance(item, dict) else {}, name, rng) for _ in range(count)]
    if kind == "integer":
        low = int(schema.get("minimum", 1000 if _IDENTIFIER.search(name) else 0))
        return rng.randint(low, int(schema.get("maximum", low + (8999 if _IDENTIFIER.search(name) else 100))))
    if kind == "number":
        floor = float(schema.get("minimum", 1.0))
        return round(rng.uniform(floor, float(schema.get("maximum", floor + 499.0))), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return _text(schema, name, rng)


def _text(schema: dict[str, Any], name: str, rng: random.Random) -> str:
    fmt, lowered = schema.get("format", ""), name.lower()
    if "pattern" in schema and (made := matching(schema["pattern"], rng)) is not None:
        return made
    if fmt == "email" or "email" in lowered:
        return f"{rng.choice(_WORDS)}.{rng.choice(_WORDS)}@example.com"
    if fmt in ("date", "date-time") or lowered.endswith(("date", "_on", "_day")):
        day = date(2026, 1, 1) + timedelta(days=rng.randint(0, 364))
        return day.isoformat() + ("T10:00:00Z" if fmt == "date-time" else "")
    if fmt in ("uri", "url") or lowered.endswith(("url", "uri")):
        return f"https://example.com/{rng.choice(_WORDS)}"
    if "status" in lowered or "state" in lowered:
        return rng.choice(_STATUSES)
    text = _plausible(lowered, rng)
    if text is None:
        text = f"{rng.choice(_WORDS)}-{rng.randint(100, 999)}" if _IDENTIFIER.search(name) else rng.choice(_WORDS)
    return text[: schema["maxLength"]] if "maxLength" in schema else text


_PERSON = re.compile(r"(?:^|_)(?:name|doctor|author|owner|holder|agent|contact|driver|manager|customer|patient)$")
_PLACE = re.compile(r"(?:^|_)(?:city|town|place|location|branch|station|destination|origin|venue|site)(?:_name)?$")
_PROSE = re.compile(r"(?:^|_)(?:note|notes|comment|description|message|reason|summary|remarks?)$")
_REMARKS = [
    "Requested by phone.",
    "Customer prefers mornings.",
    "Follow up next week.",
    "Confirmed by email.",
    "No issues reported.",
    "Handle with care.",
]


def _plausible(name: str, rng: random.Random) -> str | None:
    """A value that reads like what the field holds: a person's name, a real place, a short remark
    (Faker's word lists, drawn with the call's own generator), or None for anything else."""
    if _PERSON.search(name):
        return f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
    if _PLACE.search(name):
        return str(rng.choice(Geo.land_coords)[2])
    if _PROSE.search(name):
        return rng.choice(_REMARKS)
    if name.endswith("address"):
        return f"{rng.randint(1, 199)} {rng.choice(_LAST_NAMES)} {rng.choice(['Street', 'Road', 'Lane', 'Avenue'])}"
    return None


def _fits(candidate: Any, schema: dict[str, Any]) -> bool:
    """Whether a known value may stand in a field (the schema is the tool's, checked at load:
    `jsonschema.validate` would check it again on every call of every field)."""
    return bool(jsonschema.Draft202012Validator(schema).is_valid(candidate))


class Simulation:
    """One tool call simulated on one session database."""

    def __init__(self, db: SessionDatabase) -> None:
        self.db = db

    def _stored(self, entity: str, key: Any) -> dict[str, Any]:
        rows, _ = self.db.execute(
            f"SELECT data FROM {TABLE} WHERE entity = :e AND key = :k", {"e": entity, "k": json.dumps(key)}, write=False
        )
        stored: dict[str, Any] = json.loads(rows[0]["data"]) if rows else {}
        return stored

    def _store(self, entity: str, key: Any, fields: dict[str, Any]) -> None:
        merged = json.dumps({**self._stored(entity, key), **fields}, sort_keys=True)
        self.db.execute(
            f"INSERT OR REPLACE INTO {TABLE} (entity, key, data) VALUES (:e, :k, :d)",
            {"e": entity, "k": json.dumps(key), "d": merged},
            write=True,
        )

    def record(self, props: dict[str, Any], known: dict[str, Any], seed: int) -> dict[str, Any]:
        """An object of `props`: each field as the record named by `known`'s identifiers has it."""
        ids = sorted((k, known[k]) for k in naming(list(known)))
        stored: dict[str, Any] = {}
        for name, key in ids:
            stored.update(self._stored(name, key))
        out: dict[str, Any] = {}
        for field, schema in props.items():
            for candidate in (known.get(field, ...), stored.get(field, ...)):
                if candidate is not ... and _fits(candidate, schema):
                    out[field] = candidate
                    break
            else:
                out[field] = value(schema, field, random.Random(_seed(ids or seed, field)))
        return out

    def call(self, tool: ToolSpec, args: dict[str, Any]) -> tuple[Any, int]:
        """(output, rows changed): what the tool answers, after a write has been stored."""
        keys = {n: args[n] for n in identifying(tool) if n in args}
        changed = 0
        if tool.kind == "write":
            fields = {k: v for k, v in args.items() if k not in keys}
            named = list(keys.items()) or [(tool.name, _seed(args))]  # a new record: keyed by what made it
            for name, key in named:
                self._store(name, key, fields)
            changed = 1
        schema = _first(output_schema(tool))
        seed = _seed(tool.name, args)
        if schema.get("type") == "array":
            item = _first(schema.get("items", {}))
            props = item.get("properties", {})
            count = random.Random(seed).randint(1, 3)
            rows = []
            for i in range(count):  # each listed record has its own id, then its fields as it has them
                ids = {n: value(props[n], n, random.Random(_seed(seed, i, n))) for n in naming(list(props))}
                shared = {k: v for k, v in args.items() if k in props and k not in ids}
                rows.append(self.record(props, {**shared, **ids}, _seed(seed, i)))
            return rows, changed
        props = schema.get("properties", {})
        if not props:  # an open object: say what was asked and done
            return {**args, "ok": True} if tool.kind == "write" else dict(args), changed
        return self.record(props, args, seed), changed
