"""Prompt templates live as readable files in agents/prompts/ ($name placeholders)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from string import Template


@cache
def template(name: str) -> Template:
    return Template(resources.files("convosim.agents").joinpath("prompts", f"{name}.md").read_text(encoding="utf-8"))


def render(name: str, **values: object) -> str:
    return template(name).substitute({k: str(v) for k, v in values.items()})
