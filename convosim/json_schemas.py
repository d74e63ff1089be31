"""Checks of the JSON schemas a domain writes for its tools' parameters.

A schema is exported in every dataset row's `tools` and shown to every LLM assistant, so a typo
must not pass: `patern:` would silently drop the constraint, and a stray key from an unquoted YAML
comma would be taught to the model. Draft 2020-12 is the dialect (what jsonschema checks against).
"""

from __future__ import annotations

import difflib
from typing import Any

import jsonschema

_CORE = "$schema $id $ref $anchor $dynamicRef $dynamicAnchor $vocabulary $comment $defs"
_APPLICATORS = (
    "prefixItems items contains additionalProperties properties patternProperties dependentSchemas propertyNames "
    "if then else allOf anyOf oneOf not unevaluatedItems unevaluatedProperties"
)
_VALIDATION = (
    "type const enum multipleOf maximum exclusiveMaximum minimum exclusiveMinimum maxLength minLength pattern "
    "maxItems minItems uniqueItems maxContains minContains maxProperties minProperties required dependentRequired"
)
_ANNOTATIONS = "title description default deprecated readOnly writeOnly examples format"
_CONTENT = "contentEncoding contentMediaType contentSchema"
KEYWORDS = frozenset(" ".join((_CORE, _APPLICATORS, _VALIDATION, _ANNOTATIONS, _CONTENT)).split())
_ONE: tuple[str, ...] = ("items", "contains", "additionalProperties", "propertyNames", "if", "then", "else", "not")
_ONE += ("unevaluatedItems", "unevaluatedProperties", "contentSchema")
_MANY = ("allOf", "anyOf", "oneOf", "prefixItems")
_NAMED = ("properties", "patternProperties", "dependentSchemas", "$defs")


def schema_problems(schema: Any, where: str = "") -> list[str]:
    """Every problem of a parameter schema: not valid under the metaschema, unknown keywords,
    examples or defaults that the schema itself refuses. Each names its place (`a.b.c`)."""
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        path = ".".join(str(p) for p in exc.path)
        return [f"{_join(where, path)}: not a valid JSON schema: {exc.message}"]
    return list(_walk(schema, where))


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where and key else where or key or "(root)"


def _walk(schema: Any, where: str) -> list[str]:
    if not isinstance(schema, dict):
        return []
    problems = []
    for key in schema:
        if key not in KEYWORDS:
            near = difflib.get_close_matches(str(key), KEYWORDS, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            problems.append(f"{_join(where, str(key))}: unknown JSON Schema keyword {key!r}{hint}")
    for key in _ONE:
        if key in schema:
            problems += _walk(schema[key], _join(where, key))
    for key in _MANY:
        for i, sub in enumerate(schema.get(key) or []):
            problems += _walk(sub, f"{_join(where, key)}[{i}]")
    for key in _NAMED:
        for name, sub in (schema.get(key) or {}).items():
            problems += _walk(sub, _join(_join(where, key), str(name)))
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    samples = [("default", schema["default"])] if "default" in schema else []
    samples += [(f"examples[{i}]", v) for i, v in enumerate(schema.get("examples") or [])]
    for name, value in samples:
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is not None:
            problems.append(f"{_join(where, name)}: {value!r} does not fit the schema: {error.message}")
    return problems
