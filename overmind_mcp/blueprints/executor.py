"""Running a blueprint: every node a child mission of the run, started the moment its inputs are ready.

Each node is a task that waits for its dependencies' events (no polling), decides whether
it runs (its dependencies' outcomes, its `when`), renders its templates, and spawns its
mission through the supervisor's public API with the run as parent, so admission control,
privileges, budgets and kills apply to it as to any child. Independent nodes run at once,
up to the blueprint's `max_parallel` (and a foreach's own). A step is journaled before it
is acted on (journal.py), so a run taken over after a crash goes on where it was.

The run ends when every node has an outcome, or when it is halted: a node failed under
`on_failure = "fail"`, a budget was spent, or the run was asked to stop. A halted run stops
its running nodes and skips those that never started.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, TypeVar

import anyio

from overmind_mcp.blueprints import template
from overmind_mcp.blueprints.journal import JOIN, Journal, Outcome, Step, StepState, Verdict
from overmind_mcp.blueprints.plan import layers
from overmind_mcp.blueprints.spec import Blueprint, FailureKind, Node
from overmind_mcp.blueprints.validate import MAX_FOREACH_ITEMS
from overmind_mcp.blueprints.when import WhenError, compile_condition
from overmind_mcp.core.status import Status
from overmind_mcp.errors import Conflict, OvermindError
from overmind_mcp.identity import Caller
from overmind_mcp.models import MissionResult, SpawnRequest
from overmind_mcp.providers.blueprint import log_line, result_line
from overmind_mcp.storage.missions import MissionRow
from overmind_mcp.supervision.supervisor import Supervisor

logger = logging.getLogger("overmind_mcp")

T = TypeVar("T")

_WAIT_S = 3600.0
_RESULT_CHARS = 4000
"""How much of each node's final text the run's own result repeats (the node's result has all of it)."""
_FAILURES: dict[Status, FailureKind] = {
    Status.FAILED: "failed",
    Status.TIMED_OUT: "timed_out",
    Status.LOST: "lost",
    Status.STOPPED: "stopped",
    Status.KILLED: "killed",
}


class Executor:
    def __init__(
        self, supervisor: Supervisor, journal: Journal, run: MissionRow, blueprint: Blueprint, output: Path
    ) -> None:
        self._supervisor = supervisor
        self._journal = journal
        self._run = run
        self._blueprint = blueprint
        self._output = output
        self._nodes = blueprint.nodes
        self._limit = anyio.CapacityLimiter(blueprint.max_parallel) if blueprint.max_parallel else None
        self._outcomes: dict[str, Outcome] = {}
        self._settled = {name: anyio.Event() for name in self._nodes}
        self._steps: dict[tuple[str, int], Step] = {}
        # Missions of this run that may still be running (what a halt stops), and their steps.
        self._live: dict[str, tuple[str, int]] = {}
        self._scope = anyio.CancelScope()
        self._halted: str | None = None
        self._force = False
        self._cost = 0.0
        self._turns = 0
        self._started = time.monotonic()

    # -- from outside ---------------------------------------------------------------------------

    def stop(self, reason: str, *, force: bool) -> None:
        """Halt the run (its handle was signalled): running nodes are stopped, the rest never start."""
        self._force = self._force or force
        self._halt(reason)

    # -- the run --------------------------------------------------------------------------------

    async def run(self) -> Verdict:
        """Run (or go on with) the blueprint until every node has an outcome or the run is halted."""
        earlier = await self._journal.verdict()
        if earlier is not None:
            return earlier  # it had ended; the server died before the mission was told
        self._steps = await self._journal.steps()
        done = sum(1 for (_node, item), step in self._steps.items() if item == JOIN and step.outcome is not None)
        order = layers({name: node.depends_on for name, node in self._nodes.items()})
        if done:
            self._log(f"resuming: {done} of {len(self._nodes)} agents had finished")
            self._resume_halt()
        else:
            shape = " → ".join(", ".join(layer) for layer in order)
            self._log(f"{len(self._nodes)} agents in {len(order)} layers: {shape}")
        try:
            with self._scope:
                async with anyio.create_task_group() as nodes:
                    for layer in order:
                        for name in layer:
                            nodes.start_soon(self._node, name)
        except Exception as exc:
            # A fault of ours: whatever it started must not outlive the run.
            self._halted = f"the run failed ({type(exc).__name__}: {exc})"
            await self._stop_live()
            raise
        stopped = {node for node, _item in self._live.values()}
        if self._halted is not None:
            await self._stop_live()
        for name in self._nodes:
            if name not in self._outcomes:
                status = "stopped" if name in stopped else "skipped"
                await self._finish(self._nodes[name], Outcome(status=status, error=self._halted))
        verdict = self._verdict()
        await self._journaled(self._journal.ended(verdict))
        self._write(
            result_line(
                ok=verdict.ok,
                text=verdict.text,
                errors=verdict.errors,
                nodes={name: self._summary(outcome) for name, outcome in self._outcomes.items()},
                turns=self._turns,
                duration_ms=int((time.monotonic() - self._started) * 1000),
            )
        )
        return verdict

    def _resume_halt(self) -> None:
        """A run taken over after a crash goes on halting if an agent had failed it: nothing new starts,
        and what still runs of it is stopped."""
        for (name, item), step in self._steps.items():
            outcome = step.outcome
            failed = item == JOIN and outcome is not None and outcome.status == "failed"
            if failed and outcome is not None and self._nodes[name].on_failure == "fail":
                for (node, index), other in self._steps.items():
                    if other.state == StepState.RUNNING and other.mission_id is not None:
                        self._live[other.mission_id] = (node, index)
                self._halt(f"{name}: {outcome.error}")
                return

    def _verdict(self) -> Verdict:
        counts: dict[str, int] = {}
        for outcome in self._outcomes.values():
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        tally = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
        if self._halted is not None:
            return Verdict(ok=False, text=f"halted: {self._halted} ({tally})", errors=[self._halted])
        failed = [
            f"{name}: {outcome.error}"
            for name, outcome in self._outcomes.items()
            if outcome.status == "failed" and self._nodes[name].on_failure == "fail"
        ]
        if failed:
            return Verdict(ok=False, text=f"failed ({tally})", errors=failed)
        return Verdict(ok=True, text=f"done ({tally})", errors=[])

    def _halt(self, reason: str) -> None:
        if self._halted is None:
            self._halted = reason
            self._log(f"halting: {reason}")
            self._scope.cancel()

    async def _stop_live(self) -> None:
        """Stop whatever of this run still runs, and wait for it to end."""
        live = sorted(self._live)
        if not live:
            return
        with anyio.CancelScope(shield=True):
            await self._supervisor.kill(live, cascade=True, force=self._force)

    # -- one node -------------------------------------------------------------------------------

    async def _node(self, name: str) -> None:
        node = self._nodes[name]
        step = self._steps.get((name, JOIN))
        if step is not None and step.outcome is not None:
            self._count(step.outcome)
            self._settle(name, step.outcome)
            return
        for dep in node.depends_on:
            await self._settled[dep].wait()
        outcome = self._hold_back(node)
        if outcome is None:
            outcome = await (self._foreach(node) if node.foreach is not None else self._attempts(node, JOIN, None))
        await self._finish(node, outcome)

    def _hold_back(self, node: Node) -> Outcome | None:
        """The node's outcome without running it (skipped), or None if it is to run."""
        for dep in node.depends_on:
            outcome = self._outcomes[dep]
            if outcome.status == "failed" and self._nodes[dep].on_failure != "continue":
                return Outcome(status="skipped", error=f"{dep} failed")
            if outcome.status == "skipped" and node.when is None:
                return Outcome(status="skipped", error=f"{dep} was skipped")
        if node.when is not None:
            try:
                holds = compile_condition(node.when).holds(self._scope_for(node, attempt=1))
            except WhenError as exc:
                return Outcome(status="failed", error=str(exc), failure="failed")
            if not holds:
                return Outcome(status="skipped", error=f"when {node.when!r} is false")
        return None

    async def _finish(self, node: Node, outcome: Outcome) -> None:
        # Journaled before anything acts on it: after a crash it is never run again.
        await self._journaled(self._journal.finished(node.name, JOIN, outcome))
        self._settle(node.name, outcome)
        detail = f": {outcome.error}" if outcome.error else ""
        self._log(f"{node.name} {outcome.status}{detail}", node=node.name, status=outcome.status)
        if outcome.status == "failed" and node.on_failure == "fail" and self._halted is None:
            self._halt(f"{node.name}: {outcome.error}")

    def _count(self, outcome: Outcome) -> None:
        """Add what a step finished before a takeover spent to the run's budgets."""
        self._cost += outcome.cost_usd
        self._turns += outcome.turns

    def _settle(self, name: str, outcome: Outcome) -> None:
        self._outcomes[name] = outcome
        self._settled[name].set()

    async def _foreach(self, node: Node) -> Outcome:
        try:
            items = self._items(node)
        except OvermindError as exc:
            return Outcome(status="failed", error=str(exc), failure="failed")
        limit = anyio.CapacityLimiter(node.max_parallel) if node.max_parallel else None
        results: list[Outcome | None] = [None] * len(items)

        async def one(index: int) -> None:
            step = self._steps.get((node.name, index))
            if step is not None and step.outcome is not None:
                self._count(step.outcome)
                results[index] = step.outcome
                return
            async with _held(limit):
                outcome = await self._attempts(node, index, items[index])
            await self._journaled(self._journal.finished(node.name, index, outcome))
            results[index] = outcome

        async with anyio.create_task_group() as group:
            for index in range(len(items)):
                group.start_soon(one, index)
        done = [outcome for outcome in results if outcome is not None]
        failed = [(index, o) for index, o in enumerate(done) if not o.succeeded]
        return Outcome(
            status="failed" if failed else "succeeded",
            result=[outcome.result for outcome in done],
            output=[outcome.output for outcome in done],
            error="; ".join(f"item {index}: {o.error}" for index, o in failed[:5]) or None,
            attempts=sum(outcome.attempts for outcome in done),
            cost_usd=round(sum(outcome.cost_usd for outcome in done), 6),
            turns=sum(outcome.turns for outcome in done),
            failure=failed[0][1].failure if failed else None,
        )

    def _items(self, node: Node) -> list[Any]:
        if isinstance(node.foreach, list):
            items = node.foreach
        else:
            assert isinstance(node.foreach, str)
            ref = template.only_ref(node.foreach)
            assert ref is not None
            items = template.resolve(ref, self._scope_for(node, attempt=1))
            if not isinstance(items, list):
                raise template.TemplateError(f"foreach {node.foreach}: {template.as_text(items)[:80]!r} is not a list")
        if len(items) > MAX_FOREACH_ITEMS:
            raise template.TemplateError(f"foreach: {len(items)} items, more than {MAX_FOREACH_ITEMS}")
        return items

    # -- attempts -------------------------------------------------------------------------------

    async def _attempts(self, node: Node, item: int, value: Any) -> Outcome:
        """Run one step (a node, or one foreach item) until it succeeds or its retry policy gives up."""
        policy = node.retry_policy()
        step = self._steps.get((node.name, item))
        attempt = step.attempt if step is not None and step.state != StepState.FINISHED else 1
        while True:
            outcome = await self._attempt(node, item, value, attempt, step)
            step = None  # only the first attempt after a takeover has a mission to find
            if outcome.succeeded or attempt >= policy.attempts or outcome.failure not in policy.on:
                return outcome
            attempt += 1
            delay = policy.delay(attempt)
            self._log(f"{_label(node, item)}: {outcome.error}; attempt {attempt} of {policy.attempts} in {delay:g}s")
            await anyio.sleep(delay)

    async def _attempt(self, node: Node, item: int, value: Any, attempt: int, step: Step | None) -> Outcome:
        label = _label(node, item)
        name = f"{self._run.name}.{node.name}" + (f".{item}" if item != JOIN else "")
        async with _held(self._limit):
            mission_id = await self._taken_over(node, item, step) if step is not None else None
            if mission_id is None:
                spent = self._spent()
                if spent is not None:
                    self._halt(spent)
                    return Outcome(status="skipped", error=spent, attempts=attempt)
                scope = self._scope_for(node, attempt=attempt, item=value, index=item)
                try:
                    request = self._request(node, name, scope)
                except OvermindError as exc:
                    return Outcome(status="failed", error=str(exc), attempts=attempt)
                try:
                    mission_id = await self._spawn(node, item, attempt, request)
                except OvermindError as exc:
                    # Refused (a limit, a privilege): trying again would be refused again.
                    return Outcome(status="failed", error=str(exc), attempts=attempt)
                if mission_id is None:
                    return Outcome(status="skipped", error="the run is being stopped", attempts=attempt)
            self._log(f"{label} started (attempt {attempt}, mission {name})", node=node.name, mission=mission_id)
            result = await self._result_of(mission_id)
        self._live.pop(mission_id, None)
        return self._judge(node, result, attempt)

    async def _spawn(self, node: Node, item: int, attempt: int, request: SpawnRequest) -> str | None:
        """Spawn the step's mission, journaled on both sides; None if the run is being stopped."""
        assert request.name is not None
        # Shielded: a mission that was spawned is journaled, whatever is cancelled meanwhile.
        with anyio.CancelScope(shield=True):
            await self._journal.starting(node.name, item, attempt, request.name)
            try:
                # As the run itself: the run's children are its own spawns, held to what the mission
                # above it may do (a blueprint is no way round a mission's own permissions).
                spawned = await self._supervisor.spawn(request, caller=Caller(self._run.id))
            except Conflict as exc:
                if "being stopped" in str(exc):
                    return None
                raise
            self._live[spawned.id] = (node.name, item)
            await self._journal.running(node.name, item, attempt, spawned.id, spawned.name)
        return spawned.id

    async def _taken_over(self, node: Node, item: int, step: Step) -> str | None:
        """The mission an earlier server started for this step, if it did (None: start one)."""
        if step.mission_id is not None:
            self._live[step.mission_id] = (node.name, item)
            return step.mission_id
        if step.mission_name is None:
            return None
        with contextlib.suppress(OvermindError):
            row = await self._supervisor.mission(step.mission_name)
            # Spawned after the step was journaled, under this run: the crash came before its id was.
            if row.parent_id == self._run.id and row.created_at >= step.updated_at:
                self._live[row.id] = (node.name, item)
                return row.id
        return None

    async def _result_of(self, mission_id: str) -> MissionResult:
        while True:
            answer = await self._supervisor.wait([mission_id], timeout_s=_WAIT_S)
            if answer.done:
                return answer.done[0]

    def _judge(self, node: Node, result: MissionResult, attempt: int) -> Outcome:
        self._cost += result.cost_usd or 0.0
        self._turns += result.num_turns or 0
        outcome = Outcome(
            status="succeeded",
            result=result.text,
            mission=result.id,
            mission_name=result.name,
            attempts=attempt,
            cost_usd=result.cost_usd or 0.0,
            turns=result.num_turns or 0,
        )
        if result.status != Status.SUCCEEDED:
            reason = result.end_reason or "; ".join(result.errors) or str(result.status)
            return outcome.model_copy(
                update={"status": "failed", "error": f"{result.status}: {reason}", "failure": _FAILURES[result.status]}
            )
        output = result.output if result.output is not None else _json_of(result.text)
        outcome.output = output
        if node.output_schema is not None:
            problem = _schema_problem(node.output_schema, output, truncated=result.text_truncated)
            if problem is not None:
                return outcome.model_copy(update={"status": "failed", "error": problem, "failure": "invalid_output"})
        return outcome

    def _spent(self) -> str | None:
        """Which of the run's budgets is spent, if one is."""
        budget = self._blueprint.budget
        if budget.usd is not None and self._cost >= budget.usd:
            return f"the budget is spent: ${self._cost:.4f} of ${budget.usd:g}"
        if budget.turns is not None and self._turns >= budget.turns:
            return f"the budget is spent: {self._turns} turns of {budget.turns}"
        return None

    # -- what a node's mission is asked -----------------------------------------------------------

    def _request(self, node: Node, name: str, scope: dict[str, Any]) -> SpawnRequest:
        options = dict(node.options)
        for key in ("cwd", "append_system_prompt"):
            if isinstance(options.get(key), str):
                options[key] = template.render(options[key], scope)
        if options.get("env"):
            options["env"] = {key: template.render(str(value), scope) for key, value in options["env"].items()}
        self._cap(options)
        if node.prompt is not None:
            task: dict[str, Any] = {"prompt": template.render(node.prompt, scope), "json_schema": node.output_schema}
        elif node.command is not None:
            task = {"command": [template.render(part, scope) for part in node.command]}
        else:
            assert node.shell is not None
            # Exactly as written; values reach it as $1, $2… ($0 names the step).
            args = [template.render(part, scope) for part in node.args]
            task = {"command": ["sh", "-c", node.shell, name, *args]}
        options.setdefault("detach", self._run.spec.detach)
        return SpawnRequest.model_validate({**options, **task, "name": name, "parent": self._run.id})

    def _cap(self, options: dict[str, Any]) -> None:
        """A node may use at most what is left of the run's budgets."""
        budget = self._blueprint.budget
        if budget.usd is not None:
            left = round(budget.usd - self._cost, 6)
            if options.get("max_budget_usd") is None or options["max_budget_usd"] > left:
                options["max_budget_usd"] = left
        if budget.turns is not None:
            left_turns = budget.turns - self._turns
            if options.get("max_turns") is None or options["max_turns"] > left_turns:
                options["max_turns"] = left_turns
        if budget.time_s is not None and self._run.started_at is not None:
            left_s = max(budget.time_s - (time.time() - self._run.started_at), 0.001)
            if options.get("timeout_s") is None or options["timeout_s"] > left_s:
                options["timeout_s"] = left_s

    def _scope_for(self, node: Node, *, attempt: int, item: Any = None, index: int = JOIN) -> dict[str, Any]:
        scope: dict[str, Any] = {
            "nodes": {name: self._outcomes[name].view() for name in self._outcomes},
            "vars": self._blueprint.vars,
            "run": {"id": self._run.id, "name": self._run.name},
            "attempt": attempt,
        }
        if index != JOIN:
            scope["item"], scope["index"] = item, index
        return scope

    # -- the run's log ---------------------------------------------------------------------------

    def _log(self, text: str, **fields: Any) -> None:
        self._write(log_line(text, **fields))

    def _write(self, line: bytes) -> None:
        with self._output.open("ab") as output:
            output.write(line)

    async def _journaled(self, write: Awaitable[T]) -> T:
        # A journal write is never cut in half by a halt: it lands, or the server died.
        with anyio.CancelScope(shield=True):
            return await write

    def _summary(self, outcome: Outcome) -> dict[str, Any]:
        summary = outcome.model_dump(exclude_none=True, exclude={"failure"})
        if isinstance(outcome.result, str) and len(outcome.result) > _RESULT_CHARS:
            summary["result"] = outcome.result[:_RESULT_CHARS] + "…"
        return summary


def _label(node: Node, item: int) -> str:
    return node.name if item == JOIN else f"{node.name}[{item}]"


@contextlib.asynccontextmanager
async def _held(limiter: anyio.CapacityLimiter | None) -> AsyncIterator[None]:
    if limiter is None:
        yield
        return
    async with limiter:
        yield


def _json_of(text: str | None) -> Any:
    """The answer as JSON, when it is JSON (bare, or in one fenced block); else None."""
    if not text:
        return None
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[-1].rsplit("```", 1)[0]
    try:
        return json.loads(stripped)
    except ValueError:
        return None


def _schema_problem(schema: dict[str, Any], output: Any, *, truncated: bool) -> str | None:
    if output is None:
        cut = " (it was too long and was cut)" if truncated else ""
        return f"the answer is not JSON{cut}, and output_schema asks for JSON"
    import jsonschema  # on first use: a server that runs no blueprint with an output schema never loads it

    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(output))
    if error is None:
        return None
    path = "/".join(str(part) for part in error.absolute_path)
    return f"the answer does not match output_schema{f' at {path}' if path else ''}: {error.message}"
