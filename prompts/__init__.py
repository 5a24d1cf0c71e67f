"""Prompt templates and the Claude Code skill that overmind-mcp ships.

In the installed package this directory is `overmind_mcp.prompts`, so the server finds
its templates wherever it was installed from.
"""

from __future__ import annotations

from importlib import resources
from string import Template


def template(name: str) -> Template:
    """A prompt template (`$placeholders`) from this directory, e.g. `template("orchestrate")`."""
    return Template(resources.files(__name__).joinpath(f"{name}.md").read_text(encoding="utf-8"))


def skill_text(name: str = "overmind") -> str:
    """The SKILL.md of a Claude Code skill shipped here."""
    return resources.files(__name__).joinpath("skills", name, "SKILL.md").read_text(encoding="utf-8")
