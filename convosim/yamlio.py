"""YAML/JSON file loading with errors that name the file (and line) instead of a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from convosim.errors import ConvosimError


def load_data(path: Path) -> Any:
    """Parse a .yaml/.yml/.json file; a missing or malformed file raises ConvosimError."""
    if not path.is_file():
        raise ConvosimError(path, None, "file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConvosimError(path, f"line {line}", f"not UTF-8 text (byte {exc.start}): save the file as UTF-8") from exc
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConvosimError(path, f"line {exc.lineno}", f"invalid JSON: {exc.msg}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConvosimError(path, where, f"invalid YAML: {problem}") from exc
