"""Starting a run: the blueprint checked with its variables, then a mission of the blueprint runner.

What `blueprint_run` and `blueprint_validate` answer is defined here too.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from overmind_mcp.blueprints.plan import Plan, plan_of
from overmind_mcp.blueprints.runner import NAME as RUNNER
from overmind_mcp.blueprints.validate import Problem, check, load
from overmind_mcp.core.spec import BlueprintTask, MissionSpec
from overmind_mcp.identity import ROOT, Caller
from overmind_mcp.models import Status
from overmind_mcp.supervision.supervisor import Supervisor


class RunStarted(BaseModel):
    id: str
    name: str
    status: Status
    layers: list[list[str]] = Field(description="the agents in the order they can run; each layer at once")


class BlueprintCheck(BaseModel):
    valid: bool
    plan: Plan | None = None
    problems: list[str] = Field(default=[], description="every problem found, each with where it is")


def checked(text: str, source: str | None) -> BlueprintCheck:
    plan, problems = check(text, source=source)
    return BlueprintCheck(valid=plan is not None, plan=plan, problems=[str(problem) for problem in problems])


async def start_run(
    supervisor: Supervisor,
    text: str,
    *,
    source: str | None = None,
    run_vars: dict[str, Any] | None = None,
    caller: Caller = ROOT,
) -> RunStarted:
    """Validate the blueprint (with `run_vars`) and start it as a mission; returns at once."""
    blueprint = load(text, source=source, run_vars=run_vars)
    spec = MissionSpec(
        task=BlueprintTask(
            blueprint=text, source=source, vars=dict(run_vars or {}), max_budget_usd=blueprint.budget.usd
        ),
        timeout_s=blueprint.budget.time_s,
        runner=RUNNER,
    )
    # Relative paths in the blueprint (an agent's cwd) are relative to its file.
    cwd = str(Path(source).parent) if source else None
    name = f"{blueprint.name}-{secrets.token_hex(2)}"
    started = await supervisor.start(spec, name=name, cwd=cwd, caller=caller)
    return RunStarted(id=started.id, name=started.name, status=started.status, layers=plan_of(blueprint).layers)


__all__ = ["BlueprintCheck", "Problem", "RunStarted", "checked", "start_run"]
