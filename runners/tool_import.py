"""`convosim tools import`: the tools people already have, as a domain's tools.

From an MCP server (its tool list, read with the official SDK's client over stdio or streamable
HTTP) or an OpenAPI 3 document (one tool per operation), each tool becomes a domain tool: its
parameters from its JSON schema ($refs inlined, nullable options and OpenAPI's dialect turned into
plain JSON Schema), its output schema where the source gives one, read or write from the source's
own hints (MCP's `readOnlyHint`, the HTTP method) or its name, and phrasings made from its name and
parameters. Such tools have no SQL: they are simulated (`environments/simulation.py`) and checked
at load like any hand-written tool. What cannot be imported is reported with the reason, and
nothing already in the domain folder is overwritten.
"""

from __future__ import annotations

import asyncio
import copy
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from convosim.environments.domain import load_domain
from convosim.environments.phrasing import PhraseBook, label
from convosim.environments.simulation import DDL
from convosim.errors import ConvosimError
from convosim.models import ToolSpec
from convosim.yamlio import load_data

_WRITE_VERBS = re.compile(
    r"^(?:create|add|update|set|delete|remove|cancel|book|reschedule|pay|send|post|put|patch|submit|change|assign"
    r"|close|open|reset|register|enable|disable|approve|reject|move|transfer|refund|issue|make|schedule|renew)",
    re.IGNORECASE,
)
_READ_VERBS = re.compile(r"^(?:get|list|find|search|lookup|look_up|read|fetch|check|show|query|describe|count)", re.I)
_SCALARS = {"string", "integer", "number", "boolean"}


@dataclass
class ImportReport:
    source: str
    imported: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # tool -> why it was not imported
    notes: dict[str, list[str]] = field(default_factory=dict)  # tool -> what was changed to import it
    existing: list[str] = field(default_factory=list)  # already in the domain folder: left as they were

    def source_name(self, name: str) -> str:
        """What the source called a tool imported as `name`."""
        return next((old for old, new in self.renamed.items() if new == name), name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": "import",
            "source": self.source,
            "imported": self.imported,
            "renamed": self.renamed,
            "skipped": self.skipped,
            "notes": self.notes,
            "existing": self.existing,
        }


@dataclass
class Candidate:
    """A tool as its source describes it, before it is made a domain tool."""

    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    kind: str | None  # "read"/"write" when the source says, else judged by the name


# --- schemas ---------------------------------------------------------------------------------
def inline_refs(schema: Any, root: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """`schema` with every local `$ref` ("#/components/schemas/X", "#/$defs/X") replaced by its target."""
    if isinstance(schema, list):
        return [inline_refs(s, root, seen) for s in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith("#/") or ref in seen:
            return {"type": "object"}  # remote or recursive: an open object
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return inline_refs({**target, **rest}, root, (*seen, ref))
    return {k: inline_refs(v, root, seen) for k, v in schema.items() if k not in ("$defs", "definitions")}


def plain_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(the schema in plain JSON Schema, whether it allowed null): OpenAPI's `nullable` and
    `example`, and `anyOf [X, null]` as pydantic writes an optional value, made plain."""
    schema = dict(schema)
    nullable = bool(schema.pop("nullable", False))
    if "example" in schema:
        schema.setdefault("examples", [schema.pop("example")])
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and any(isinstance(o, dict) and o.get("type") == "null" for o in options):
            rest = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            nullable = True
            if len(rest) == 1 and isinstance(rest[0], dict):
                schema.pop(key)
                schema = {**rest[0], **schema}
            else:
                schema[key] = rest
    kind = schema.get("type")
    if isinstance(kind, list) and "null" in kind:
        nullable = True
        left = [k for k in kind if k != "null"]
        schema["type"] = left[0] if len(left) == 1 else left
    for key in [k for k in schema if k.startswith("x-") or k in ("xml", "discriminator", "readOnly", "writeOnly")]:
        schema.pop(key)
    if isinstance(schema.get("properties"), dict):
        schema["properties"] = {k: plain_schema(v)[0] for k, v in schema["properties"].items() if isinstance(v, dict)}
    if isinstance(schema.get("items"), dict):
        schema["items"] = plain_schema(schema["items"])[0]
    if schema.get("default") is None:
        schema.pop("default", None)
    return schema, nullable


def spoken_name(name: str) -> str:
    """A tool's name as words: `get_patient`, `getPatient` and `get-patient` are "get patient"."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ").replace("-", " ").replace(".", " ")
    return re.sub(r"\s+", " ", words).strip().lower()


def phrasings(name: str, params: dict[str, Any], required: list[str], kind: str) -> list[str]:
    """How a user asks for the tool: its name as words, then its parameters by name; one with the
    required ones only, one with them all."""

    def say(names: list[str]) -> str:
        head = "Could you " if kind == "read" else "Please "
        words = spoken_name(name)
        if kind == "read" and not _READ_VERBS.search(name) and not _WRITE_VERBS.search(name):
            words = f"tell me the {words}"  # "opening hours" is a thing to ask about, not a verb
        if not names:
            return f"{head}{words}" + ("?" if kind == "read" else ".")
        parts = [f"the {label(n)} {{{n}}}" for n in names]
        listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        return f"{head}{words} for {listed}" + ("?" if kind == "read" else ".")

    out = [say(required)]
    if set(params) != set(required):
        out.append(say([*required, *(n for n in params if n not in required)]))
    return out


def build_tool(candidate: Candidate, notes: list[str]) -> dict[str, Any]:
    """The domain tool's YAML mapping, or a ValueError saying why it cannot be one."""
    params_schema, _ = plain_schema(candidate.input_schema or {"type": "object"})
    if params_schema.get("type", "object") != "object":
        raise ValueError(f"its input is a {params_schema.get('type')}, not an object of named parameters")
    required = list(params_schema.get("required", []))
    properties: dict[str, Any] = {}
    for pname, pschema in (params_schema.get("properties") or {}).items():
        cleaned, nullable = plain_schema(pschema)
        cleaned.pop("title", None)
        if nullable and pname in required:
            required.remove(pname)
        kind = cleaned.get("type", "string" if "enum" not in cleaned else None)
        if kind is None and "enum" in cleaned:
            kind = "string" if all(isinstance(v, str) for v in cleaned["enum"]) else "integer"
        if kind not in _SCALARS:
            if pname in required:
                raise ValueError(f"parameter {pname!r} is {kind or 'untyped'}: a user cannot say it in a sentence")
            notes.append(f"optional parameter {pname!r} ({kind or 'untyped'}) left out: a user cannot say it")
            continue
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", pname):
            raise ValueError(f"parameter name {pname!r} is not an identifier")
        properties[pname] = {**cleaned, "type": kind}
    required = [r for r in required if r in properties]
    kind = candidate.kind or ("write" if _WRITE_VERBS.search(candidate.name) else "read")
    if candidate.kind is None and not _READ_VERBS.search(candidate.name) and not _WRITE_VERBS.search(candidate.name):
        notes.append("neither its source nor its name says whether it changes anything: imported as a read")
    tool: dict[str, Any] = {
        "name": candidate.name,
        "description": candidate.description,
        "kind": kind,
        "parameters": {"type": "object", "properties": properties, "required": required},
        "phrasings": phrasings(candidate.name, properties, required, kind),
    }
    if candidate.output_schema:
        output, _ = plain_schema(candidate.output_schema)
        tool["output_schema"] = output
        if output.get("type") == "array":
            tool["returns"] = "many"
    ToolSpec.model_validate(tool)  # the same checks as a hand-written tool
    return tool


def _identifier(name: str) -> str:
    """A tool name as the domain writes them: snake_case (`getRental` -> `get_rental`), because the
    name is also how the assistant says the action ("I'll end rental with ...")."""
    snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    cleaned = re.sub(r"[^a-z0-9_]+", "_", snake).strip("_") or "tool"
    return cleaned if re.match(r"[A-Za-z_]", cleaned) else f"t_{cleaned}"


def convert(candidates: list[Candidate], report: ImportReport) -> list[dict[str, Any]]:
    """Domain tools for the candidates that can be ones (the others are in the report)."""
    tools: list[dict[str, Any]] = []
    for candidate in candidates:
        original = candidate.name
        candidate.name = _identifier(original)
        if candidate.name != original:
            report.renamed[original] = candidate.name
        if any(t["name"] == candidate.name for t in tools):
            report.skipped[original] = f"another tool is already named {candidate.name!r}"
            continue
        notes: list[str] = []
        try:
            tool = build_tool(candidate, notes)
        except (ValueError, ValidationError) as exc:
            report.skipped[original] = str(exc).splitlines()[0][:300]
            continue
        if notes:
            report.notes[candidate.name] = notes
        tools.append(tool)
    specs = {t["name"]: ToolSpec.model_validate(t) for t in tools}
    while problems := PhraseBook(specs).ambiguities():  # a tool whose sentence reads as another's is left out
        name = problems[0].split(":", 1)[0]
        report.skipped[report.source_name(name)] = f"its phrasing is ambiguous with another tool's: {problems[0]}"
        specs.pop(name)
    return [t for t in tools if t["name"] in specs]


# --- sources ---------------------------------------------------------------------------------
def from_openapi(path: Path) -> tuple[list[Candidate], dict[str, str], str]:
    """(candidates, operations skipped with why, the API's title) from an OpenAPI 3 document."""
    if not path.is_file():
        raise ConvosimError(path, None, "OpenAPI document not found")
    doc = load_data(path)
    if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3"):
        raise ConvosimError(path, "openapi", "not an OpenAPI 3 document (no `openapi: 3.x` field)")
    paths = doc.get("paths")
    if not isinstance(paths, dict) or not paths:
        raise ConvosimError(path, "paths", "must map paths to operations")
    title = str((doc.get("info") or {}).get("title") or path.stem)
    candidates: list[Candidate] = []
    skipped: dict[str, str] = {}
    for route, item in paths.items():
        if not isinstance(item, dict):
            raise ConvosimError(path, f"paths.{route}", "must map HTTP methods to operations")
        shared = item.get("parameters", [])
        for method in ("get", "post", "put", "patch", "delete"):
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            name = str(op.get("operationId") or f"{method}_{re.sub(r'[^A-Za-z0-9]+', '_', route).strip('_')}")
            try:
                candidates.append(_operation(doc, method, op, [*shared, *op.get("parameters", [])], name))
            except ValueError as exc:
                skipped[name] = str(exc)
    return candidates, skipped, title


def _operation(doc: dict[str, Any], method: str, op: dict[str, Any], params: list[Any], name: str) -> Candidate:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for raw in params:
        param = inline_refs(raw, doc)
        where, pname = param.get("in"), param.get("name")
        if where not in ("path", "query"):
            if param.get("required"):
                raise ValueError(f"required {where} parameter {pname!r}: only path, query and JSON body are imported")
            continue
        properties[pname] = {**inline_refs(param.get("schema", {"type": "string"}), doc)}
        if param.get("description"):
            properties[pname].setdefault("description", param["description"])
        if param.get("required") or where == "path":
            required.append(pname)
    body = op.get("requestBody")
    if isinstance(body, dict):
        body = inline_refs(body, doc)
        content = body.get("content", {})
        if "application/json" not in content:
            raise ValueError(f"its request body is {', '.join(content) or 'empty'}: only JSON bodies are imported")
        schema = inline_refs(content["application/json"].get("schema", {}), doc)
        if schema.get("type", "object") != "object":
            raise ValueError("its JSON body is not an object of named fields")
        properties.update(schema.get("properties", {}))
        required += [r for r in schema.get("required", []) if r not in required]
    output = None
    for status in ("200", "201", "202"):
        response = inline_refs((op.get("responses") or {}).get(status), doc)
        if isinstance(response, dict) and "application/json" in response.get("content", {}):
            output = inline_refs(response["content"]["application/json"].get("schema"), doc)
            break
    description = str(op.get("summary") or op.get("description") or spoken_name(name)).strip()
    return Candidate(
        name=name,
        description=description,
        input_schema={"type": "object", "properties": properties, "required": required},
        output_schema=output if isinstance(output, dict) else None,
        kind="read" if method == "get" else "write",
    )


async def _list_mcp_tools(target: str) -> tuple[list[Any], str]:
    import mcp_types as types
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client
    from mcp.client.streamable_http import streamable_http_client

    async def listed(session: ClientSession) -> tuple[list[Any], str]:
        init = await session.initialize()
        tools: list[Any] = []
        cursor: str | None = None
        while True:
            page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
            tools += page.tools
            cursor = page.next_cursor
            if not cursor:
                return tools, str(getattr(init.server_info, "name", "") or target)

    if re.match(r"https?://", target):
        async with streamable_http_client(target) as streams, ClientSession(streams[0], streams[1]) as session:
            return await listed(session)
    argv = shlex.split(target)
    params = StdioServerParameters(command=argv[0], args=argv[1:])
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        return await listed(session)


def from_mcp(target: str, timeout_s: float = 60.0) -> tuple[list[Candidate], str]:
    """(candidates, the server's name) from an MCP server: a command to start (stdio) or a URL."""
    try:
        tools, server = asyncio.run(asyncio.wait_for(_list_mcp_tools(target), timeout_s))
    except Exception as exc:  # the SDK raises many kinds; each is one bad input for the user
        cause: BaseException = exc
        while isinstance(cause, BaseExceptionGroup) and cause.exceptions:  # the SDK's task groups wrap it
            cause = cause.exceptions[0]
        detail = f"{type(cause).__name__}: {cause}".strip()
        raise ConvosimError(None, "--mcp", f"could not list the tools of {target!r}: {detail[:300]}") from exc
    candidates = []
    for tool in tools:
        hints = tool.annotations
        read_only = getattr(hints, "read_only_hint", None) if hints is not None else None
        kind = None if read_only is None else "read" if read_only else "write"
        schema = inline_refs(tool.input_schema or {"type": "object"}, tool.input_schema or {})
        output = inline_refs(tool.output_schema, tool.output_schema) if tool.output_schema else None
        description = (tool.description or getattr(tool, "title", None) or spoken_name(tool.name)).strip()
        candidates.append(Candidate(tool.name, description.splitlines()[0][:500], schema, output, kind))
    return candidates, server


# --- writing ---------------------------------------------------------------------------------
def import_tools(root: Path, *, mcp: str | None = None, openapi: Path | None = None) -> dict[str, Any]:
    """Import into domain folder `root` (made if missing); returns the report."""
    if (mcp is None) == (openapi is None):
        raise ConvosimError(None, "--mcp/--openapi", "give exactly one source")
    if openapi is not None:
        candidates, skipped, title = from_openapi(openapi)
        report = ImportReport(source=str(openapi), skipped=dict(skipped))
    else:
        assert mcp is not None
        candidates, title = from_mcp(mcp)
        report = ImportReport(source=mcp)
    tools = convert(copy.deepcopy(candidates), report)
    if not tools:
        raise ConvosimError(openapi, None, f"nothing could be imported: {report.skipped or 'no tools listed'}")
    folder = root / "tools"
    folder.mkdir(parents=True, exist_ok=True)
    created: list[Path] = []
    for tool in tools:
        path = folder / f"{tool['name']}.yaml"
        if path.exists():
            report.existing.append(tool["name"])
            continue
        _write_once(path, yaml.safe_dump(tool, sort_keys=False, allow_unicode=True), created)
        report.imported.append(tool["name"])
    ddl = f"-- The state of simulated (imported) tools: see environments/simulation.py\n{DDL}\n"
    _write_once(root / "schema.sql", ddl, created)
    policy = (
        f"You are the assistant of {title}. Use the tools to answer and act on the user's requests; confirm "
        "every change before you make it, and never make up a result a tool did not give.\n"
    )
    _write_once(root / "policy.md", policy, created)
    name = _identifier(title)
    _write_once(root / "domain.yaml", yaml.safe_dump({"name": name, "description": title}), created)
    scenario = {"name": name, "domain": ".", "tasks": "tasks.generated.yaml", "sessions": 20}
    header = "# Every role offline; tasks from `convosim tasks generate`.\n"
    _write_once(root / "scenario.yaml", header + yaml.safe_dump(scenario, sort_keys=False), created)
    while True:  # the same load-time checks as a hand-written domain; a tool that fails them is left out
        try:
            load_domain(root)
            break
        except ConvosimError as exc:
            failed = next((p for p in created if p.parent == folder and str(p) == exc.path), None)
            if failed is None:
                for path in created:  # not one tool's fault: leave the folder as it was
                    path.unlink()
                raise
            failed.unlink()
            created.remove(failed)
            report.imported.remove(failed.stem)
            report.skipped[report.source_name(failed.stem)] = f"fails the load checks: {exc.field}: {exc.message}"
    return report.as_dict()


def _write_once(path: Path, text: str, created: list[Path]) -> None:
    if not path.exists():
        path.write_text(text, encoding="utf-8")
        created.append(path)
