"""A domain is a folder a user writes: schema, seed data, policy, tools (and tasks beside them).

`load_domain` checks everything once at load (tool specs, SQL, seed rows) and raises a
ConvosimError naming the file and field at fault; `Domain.new_session()` hands out isolated
per-session environments cloned from the template.
"""

from __future__ import annotations

import csv
import string
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from convosim.environments.database import SchemaError, SeedError, SessionDatabase, TemplateDatabase
from convosim.environments.introspect import introspect
from convosim.environments.ownership import ownership
from convosim.environments.phrasing import PhraseBook
from convosim.environments.record_owners import OwnerError, RecordOwners
from convosim.environments.simulation import DDL as SIMULATED_DDL
from convosim.environments.simulation import TABLE as SIMULATED_TABLE
from convosim.environments.sql_checks import SqlCheckError, check_tool_sql, output_columns
from convosim.environments.state import Snapshot, diff, state_hash
from convosim.environments.tool_trial import trial_call
from convosim.environments.tools import ToolError, run_tool
from convosim.errors import ConvosimError, from_validation_error
from convosim.messages import ToolOutput
from convosim.models import ToolSpec
from convosim.yamlio import load_data


class DomainManifest(BaseModel):
    """Optional `domain.yaml`: names the domain and where its parts live (defaults shown)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str = ""
    schema_file: str = "schema.sql"
    seed: str | None = None  # seed.yaml | seed.json | seed/ (one <table>.json/.yaml/.csv each)
    policy: str = "policy.md"
    tools: str | None = None  # tools.yaml (a list) | tools/ (one tool per file)
    # The table of the people the assistant serves (customers, patients): whose records are whose.
    # Default: the schema's one customer table, if it has one (environments/ownership.py).
    owner: str | None = None


@dataclass
class Domain:
    name: str
    root: Path
    description: str
    policy: str
    tools: dict[str, ToolSpec]
    template: TemplateDatabase
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    snapshot: Snapshot = field(default_factory=dict)
    template_hash: str = ""
    owner: str | None = None  # the owner table (declared or found), for the privacy check

    @cached_property
    def record_owners(self) -> RecordOwners | None:
        """Traces records to their owner on the pristine database (built on first use)."""
        if self.owner is None:
            return None
        return RecordOwners.build(self.template.image, self.template.tables, self.owner)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "record_owners"}  # a live connection

    def __post_init__(self) -> None:
        probe = self.template.clone()
        try:
            self.keys = probe.primary_keys()
            self.snapshot = probe.snapshot()
        finally:
            probe.close()
        self.template_hash = state_hash(self.snapshot, self.keys)

    def new_session(self, query_timeout_s: float = 2.0, max_output_bytes: int = 1_000_000) -> SessionEnvironment:
        return SessionEnvironment(
            self, self.template.clone(timeout_s=query_timeout_s, max_output_bytes=max_output_bytes)
        )

    def openai_tools(self) -> list[dict[str, Any]]:
        return [t.openai() for t in self.tools.values()]


class SessionEnvironment:
    """One session's mutable state plus the domain's tools bound to it. Knows nothing of agents."""

    def __init__(self, domain: Domain, db: SessionDatabase) -> None:
        self.domain = domain
        self.db = db

    def call(self, call_id: str, name: str, args: Any) -> ToolOutput:
        tool = self.domain.tools.get(name)
        if tool is None:
            return ToolOutput(call_id=call_id, name=name, output={"error": f"unknown tool {name!r}"}, is_error=True)
        try:
            output, changed = run_tool(self.db, tool, args)
        except ToolError as exc:
            return ToolOutput(call_id=call_id, name=name, output={"error": str(exc)}, is_error=True, sql=tool.sql)
        return ToolOutput(call_id=call_id, name=name, output=output, sql=tool.sql, rows_changed=changed)

    def state_hash(self) -> str:
        return state_hash(self.db.snapshot(), self.domain.keys)

    def diff_from_template(self) -> dict[str, Any]:
        return diff(self.domain.snapshot, self.db.snapshot(), self.domain.keys)

    def final_state(self) -> tuple[str, dict[str, Any]]:
        """(state hash, row diff from the template) from a single snapshot of the database."""
        snapshot = self.db.snapshot()
        return state_hash(snapshot, self.domain.keys), diff(self.domain.snapshot, snapshot, self.domain.keys)

    def close(self) -> None:
        self.db.close()


def _find(root: Path, given: str | None, candidates: tuple[str, ...]) -> Path | None:
    if given is not None:
        return root / given
    for name in candidates:
        if (root / name).exists():
            return root / name
    return None


def _load_seed(path: Path | None) -> dict[str, list[dict[str, Any]]]:
    if path is None:
        return {}
    if path.is_dir():
        seed: dict[str, list[dict[str, Any]]] = {}
        for file in sorted(path.iterdir()):
            if file.suffix == ".csv":
                with file.open(newline="", encoding="utf-8") as fh:
                    seed[file.stem] = list(csv.DictReader(fh))
            elif file.suffix in (".json", ".yaml", ".yml"):
                rows = load_data(file)
                if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                    raise ConvosimError(file, None, "must be a list of rows (mappings)")
                seed[file.stem] = rows
        return seed
    data = load_data(path)
    if not isinstance(data, dict):
        raise ConvosimError(path, None, "must map table names to lists of rows")
    for table, rows in data.items():
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ConvosimError(path, str(table), "must be a list of rows (mappings)")
    return data


def _tool_entries(path: Path) -> list[tuple[Path, str, Any]]:
    """(file, field prefix, raw spec) for every tool in tools.yaml or tools/*.yaml."""
    if path.is_dir():
        return [(f, "", load_data(f)) for f in sorted(path.iterdir()) if f.suffix in (".yaml", ".yml", ".json")]
    data = load_data(path)
    if isinstance(data, dict) and "tools" in data:
        data = data["tools"]
    if not isinstance(data, list):
        raise ConvosimError(path, None, "must be a list of tools")
    return [(path, f"tools[{i}]", raw) for i, raw in enumerate(data)]


def load_tools(paths: list[Path], tables: set[str]) -> tuple[dict[str, ToolSpec], dict[str, tuple[Path, str]]]:
    """The tools, and where each was written (file, `tool 'name' (tools[i])`) for later errors."""
    tools: dict[str, ToolSpec] = {}
    origins: dict[str, tuple[Path, str]] = {}
    entries = [entry for path in paths for entry in _tool_entries(path)]
    for file, prefix, raw in entries:
        if not isinstance(raw, dict):
            raise ConvosimError(file, prefix or None, "a tool must be a mapping")
        label = f"tool {raw.get('name', '?')!r}" + (f" ({prefix})" if prefix else "")
        try:
            tool = ToolSpec.model_validate(raw)
        except ValidationError as exc:
            raise from_validation_error(file, exc, prefix=label) from exc
        if tool.name in tools:
            raise ConvosimError(file, label, "duplicate tool name")
        try:
            check_tool_sql(tool, tables)
        except SqlCheckError as exc:
            raise ConvosimError(file, f"{label}.sql", str(exc)) from exc
        for i, phrasing in enumerate(tool.phrasings):
            _check_phrasing(file, f"{label}.phrasings[{i}]", tool, phrasing)
        tools[tool.name] = tool
        origins[tool.name] = (file, label)
    if not tools:
        raise ConvosimError(paths[0], None, "defines no tools")
    for name, tool in tools.items():
        problem = precondition_problem(tool, tools)
        if problem is not None:
            file, label = origins[name]
            raise ConvosimError(file, f"{label}.precondition", problem)
    return tools, origins


def _fields_of(tool: ToolSpec) -> frozenset[str]:
    schema = tool.output_schema or {}
    items = schema.get("items", {}) if schema.get("type") == "array" else schema
    return output_columns(tool) | frozenset(items.get("properties", {}) if isinstance(items, dict) else ())


def precondition_problem(tool: ToolSpec, tools: dict[str, ToolSpec]) -> str | None:
    """Why a declared precondition cannot be acted on (None when it can): the rule must name a
    field the assistant can read, through a read tool its own arguments can call."""
    rule = tool.precondition
    if rule is None:
        return None
    if tool.kind != "write":
        return "only a write has a precondition"
    if rule.read is None:
        return None
    reader = tools.get(rule.read)
    if reader is None:
        return f"read: no tool named {rule.read!r}"
    if reader.kind != "read":
        return f"read: {rule.read!r} is not a read tool"
    missing = [p for p in reader.required if p not in tool.properties]
    if missing:
        return f"read: {rule.read!r} needs {missing}, which {tool.name!r} does not take"
    fields = _fields_of(reader)
    if fields and rule.field not in fields:
        return f"field: {rule.read!r} does not show {rule.field!r} (it shows {sorted(fields)})"
    return None


def tool_sources(root: Path, given: str | None) -> list[Path]:
    """`tools.yaml` (hand-written list) and `tools/` (one tool per file, e.g. generated ones)."""
    if given is not None:
        return [root / given]
    files = [root / n for n in ("tools.yaml", "tools.yml", "tools.json") if (root / n).is_file()][:1]
    return files + ([root / "tools"] if (root / "tools").is_dir() else [])


def apply_output_schemas(root: Path, tools: dict[str, ToolSpec]) -> dict[str, ToolSpec]:
    """Merge `schemas.yaml` (tool -> output JSON schema) into tools that have none inline."""
    path = root / "schemas.yaml"
    if not path.is_file():
        return tools
    data = load_data(path) or {}
    if not isinstance(data, dict):
        raise ConvosimError(path, None, "must map tool names to JSON schemas")
    out = dict(tools)
    for name, schema in data.items():
        if name not in tools:
            raise ConvosimError(path, str(name), "no such tool")
        if not isinstance(schema, dict):
            raise ConvosimError(path, str(name), "must be a JSON schema (a mapping)")
        if tools[name].output_schema is None:
            try:  # validated like an inline one
                out[name] = ToolSpec.model_validate({**tools[name].model_dump(), "output_schema": schema})
            except ValidationError as exc:
                raise from_validation_error(path, exc, prefix=str(name)) from exc
    return out


def _check_phrasing(file: Path, where: str, tool: ToolSpec, phrasing: str) -> None:
    for _, slot, _, _ in string.Formatter().parse(phrasing):
        if slot is not None and slot not in tool.properties:
            raise ConvosimError(file, where, f"slot {{{slot}}} is not a parameter of the tool")


def load_domain(root: str | Path) -> Domain:
    root = Path(root)
    if not root.is_dir():
        raise ConvosimError(root, None, "domain folder not found")
    manifest = DomainManifest()
    manifest_path = root / "domain.yaml"
    if manifest_path.exists():
        try:
            manifest = DomainManifest.model_validate(load_data(manifest_path) or {})
        except ValidationError as exc:
            raise from_validation_error(manifest_path, exc) from exc
    schema_path = root / manifest.schema_file
    if not schema_path.is_file():
        raise ConvosimError(schema_path, None, "schema file not found")
    seed_path = _find(root, manifest.seed, ("seed.yaml", "seed.yml", "seed.json", "seed"))
    seed = _load_seed(seed_path)
    try:
        template = TemplateDatabase(schema_path.read_text(encoding="utf-8"), seed)
    except SchemaError as exc:
        raise ConvosimError(schema_path, f"line {exc.line}", str(exc)) from exc
    except SeedError as exc:
        item = exc.table if exc.row is None else f"{exc.table}[{exc.row}]"
        raise ConvosimError(seed_path, item, str(exc)) from exc
    sources = tool_sources(root, manifest.tools)
    if not sources:
        raise ConvosimError(root / "tools.yaml", None, "file not found")
    tools, origins = load_tools(sources, set(template.tables))
    if any(t.sql is None for t in tools.values()) and SIMULATED_TABLE not in template.tables:
        # tools without SQL keep their simulated state beside the domain's own tables
        template = TemplateDatabase(schema_path.read_text(encoding="utf-8") + "\n" + SIMULATED_DDL, seed)
    tools = apply_output_schemas(root, tools)
    owner = manifest.owner or _found_owner(template)
    if owner is not None:
        try:
            RecordOwners.build(template.image, template.tables, owner).conn.close()
        except OwnerError as exc:
            raise ConvosimError(manifest_path, "owner", str(exc)) from exc
    ambiguous = PhraseBook(tools).ambiguities()
    if ambiguous:
        raise ConvosimError(sources[0], "phrasings", f"ambiguous phrasing: {ambiguous[0]}")
    domain = Domain(
        name=manifest.name or root.resolve().name,
        root=root,
        description=manifest.description,
        policy=_load_policy(root, manifest, manifest_path),
        tools=tools,
        template=template,
        owner=owner,
    )
    for name, tool in tools.items():
        env = domain.new_session()
        try:
            problem = trial_call(env.db, tool, domain.snapshot)
        finally:
            env.close()
        if problem is not None:
            file, label = origins[name]
            raise ConvosimError(file, f"{label}.{'sql' if tool.sql else 'parameters'}", problem)
    return domain


def _found_owner(template: TemplateDatabase) -> str | None:
    """The schema's one customer table (a contact column, no reference to another such table)."""
    db = template.clone()
    try:
        customers = ownership(introspect(db)).customers
    finally:
        db.close()
    return next(iter(customers)) if len(customers) == 1 else None


def _load_policy(root: Path, manifest: DomainManifest, manifest_path: Path) -> str:
    """The system prompt every dataset row starts with: a domain without one is refused, not
    exported with rows that silently lack it."""
    path = root / manifest.policy
    where = f"{manifest_path}: policy" if "policy" in manifest.model_fields_set else None
    if not path.is_file():
        raise ConvosimError(path, where, "policy file (the assistant's system prompt) not found")
    try:
        policy = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError as exc:
        raise ConvosimError(path, None, f"not UTF-8 text: {exc}") from exc
    if not policy:
        raise ConvosimError(path, None, "policy file (the assistant's system prompt) is empty")
    return policy
