"""Blueprint runs through a real supervisor: real child processes (commands and the stand-in claude), real SQLite.

Each run is a mission whose children are its agents; these tests read what a caller reads
(`wait` and `result` on the run, `ps`) and, where it proves a point, the mission table.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from overmind_mcp.blueprints.launch import start_run
from overmind_mcp.blueprints.validate import BlueprintInvalid
from overmind_mcp.identity import Caller
from overmind_mcp.models import MissionResult, SpawnRequest
from overmind_mcp.server.hosting import supervising
from overmind_mcp.settings import Settings
from overmind_mcp.storage.missions import MissionRow, Store
from overmind_mcp.supervision.supervisor import Supervisor
from tests.conftest import assert_no_leftovers

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
async def runs(settings: Settings) -> AsyncIterator[Supervisor]:
    async with supervising(settings) as supervisor:
        yield supervisor
    await assert_no_leftovers(settings)


async def run(
    supervisor: Supervisor,
    text: str,
    *,
    run_vars: dict[str, Any] | None = None,
    source: str | None = None,
    within: float = 30,
) -> MissionResult:
    started = await start_run(supervisor, text, run_vars=run_vars, source=source)
    answer = await supervisor.wait([started.id], timeout_s=within)
    assert not answer.timed_out, answer.pending
    return answer.done[0]


def nodes_of(result: MissionResult) -> dict[str, dict[str, Any]]:
    assert isinstance(result.output, dict)
    return result.output["nodes"]


async def children(supervisor: Supervisor, run_id: str) -> list[MissionRow]:
    return await supervisor.ctx.store.missions(parent_id=run_id)


def script(*directives: str) -> str:
    return "\n".join(f"fake: {directive}" for directive in directives)


def toml_string(text: str) -> str:
    return json.dumps(text)


async def test_the_originals_setup_build_deploy_runs_in_order(runs: Supervisor) -> None:
    result = await run(runs, (EXAMPLES / "blueprint.toml").read_text(), source=str(EXAMPLES / "blueprint.toml"))
    assert result.status == "succeeded", result
    nodes = nodes_of(result)
    assert [nodes[name]["result"] for name in ("setup", "build", "deploy")] == [
        "Setting up environment...\nSetup complete",
        "Building project...\nBuild complete",
        "Deploying...\nDeploy complete",
    ]
    rows = {row.name.split(".")[-1]: row for row in await children(runs, result.id)}
    assert rows["setup"].ended_at <= rows["build"].started_at  # type: ignore[operator]
    assert rows["build"].ended_at <= rows["deploy"].started_at  # type: ignore[operator]
    # The run is their parent, and its cwd is the file's directory.
    assert {row.parent_id for row in rows.values()} == {result.id}
    assert result.cwd == str(EXAMPLES)


async def test_the_originals_claude_pipeline_runs_as_it_is(runs: Supervisor) -> None:
    result = await run(runs, (EXAMPLES / "claude_pipeline.toml").read_text())
    assert result.status == "succeeded", result
    nodes = nodes_of(result)
    assert (
        nodes["reviewer"]["result"]
        == "MOCK REPLY to: Review the blog post for clarity and accuracy. Suggest improvements."
    )
    assert (await runs.ps(parent=result.id, tree=True)).missions[0].tree_cost_usd == pytest.approx(3 * 0.0008)


async def test_results_are_passed_on(runs: Supervisor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The stand-in claude answers the reviewer with JSON, as its output_schema asks.
    answers = tmp_path / "script.json"
    answers.write_text(json.dumps({"Review this article": ['answer {"verdict": "publish", "issues": []}']}))
    monkeypatch.setenv("FAKE_CLAUDE_SCRIPT", str(answers))
    text = (EXAMPLES / "research_write_review.toml").read_text()
    result = await run(runs, text, run_vars={"topic": "sqlite WAL"})
    assert result.status == "succeeded", result
    nodes = nodes_of(result)
    research = nodes["research"]["result"]
    assert research.startswith("MOCK REPLY to: Research sqlite WAL")
    # The writer was given the research; the reviewer both, and answered as the schema asks.
    assert research in nodes["write"]["result"]
    assert nodes["review"]["output"] == {"verdict": "publish", "issues": []}
    [review] = [row for row in await children(runs, result.id) if row.name.endswith(".review")]
    assert review.spec.task.json_schema is not None  # type: ignore[union-attr]


async def test_a_diamond_of_sleeps_takes_its_critical_path_not_the_sum(runs: Supervisor) -> None:
    text = """
[agents.a]
command = ["sleep", "0.2"]
[agents.b]
command = ["sleep", "1.5"]
depends_on = ["a"]
[agents.c]
command = ["sleep", "1.5"]
depends_on = ["a"]
[agents.d]
command = ["sleep", "0.2"]
depends_on = ["b", "c"]
"""
    started = time.monotonic()
    result = await run(runs, text)
    elapsed = time.monotonic() - started
    assert result.status == "succeeded", result
    critical, total = 1.9, 3.4
    assert critical <= elapsed < total - 0.8, f"{elapsed:.2f}s for a critical path of {critical}s (sum {total}s)"
    rows = {row.name.split(".")[-1]: row for row in await children(runs, result.id)}
    assert abs(rows["b"].started_at - rows["c"].started_at) < 0.5  # type: ignore[operator]
    # d starts the moment its last input is ready.
    ready = max(rows["b"].ended_at, rows["c"].ended_at)  # type: ignore[type-var]
    assert rows["d"].created_at - ready < 0.5


async def test_a_string_command_runs_as_written_and_values_arrive_as_arguments(
    runs: Supervisor, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    hostile = "x; touch pwned; $(touch pwned2) `touch pwned3`"
    text = f"""
[vars]
value = {toml_string(hostile)}
[agents.echo]
command = 'printf "%s|%s" "$1" "$GREETING"'
args = ["{{{{ vars.value }}}}"]
env = {{ GREETING = "{{{{ vars.value }}}}" }}
cwd = {toml_string(str(workdir))}
"""
    result = await run(runs, text)
    assert nodes_of(result)["echo"]["result"] == f"{hostile}|{hostile}"
    assert not [path.name async for path in anyio.Path(workdir).iterdir()]


async def test_output_schema_is_validated_and_retried(runs: Supervisor) -> None:
    text = """
[agents.count]
prompt = "Count.\\nfake: answer {\\"n\\": {{ attempt }}}"
output_schema = { type = "object", required = ["n"], properties = { n = { type = "integer", minimum = 3 } } }
"""
    result = await run(runs, text)
    assert result.status == "succeeded", result
    count = nodes_of(result)["count"]
    assert (count["output"], count["attempts"]) == ({"n": 3}, 3)
    assert len(await children(runs, result.id)) == 3
    # Never satisfied: failed once the attempts are spent, saying why.
    failed = await run(runs, text.replace("minimum = 3", "minimum = 9"))
    assert failed.status == "failed"
    count = nodes_of(failed)["count"]
    assert count["attempts"] == 3
    assert "does not match output_schema at n: 3 is less than the minimum of 9" in count["error"]
    # A command's answer is its output, parsed as JSON.
    command = await run(runs, '[agents.c]\ncommand = ["echo", "[1, 2]"]\noutput_schema = { type = "object" }\n')
    assert "[1, 2] is not of type 'object'" in nodes_of(command)["c"]["error"]


async def test_retry_with_backoff_until_it_succeeds(runs: Supervisor, tmp_path: Path) -> None:
    counter = tmp_path / "tries"
    text = f"""
[agents.flaky]
command = 'echo x >> "$1"; [ "$(wc -l < "$1")" -ge 3 ]'
args = [{toml_string(str(counter))}]
retry = {{ attempts = 5, backoff_s = 0.1 }}
"""
    started = time.monotonic()
    result = await run(runs, text)
    assert result.status == "succeeded", result
    assert nodes_of(result)["flaky"]["attempts"] == 3
    assert counter.read_text().count("x") == 3
    assert time.monotonic() - started >= 0.1 + 0.2  # the backoff doubles
    # A failure not named in `on` is not retried.
    counter.unlink()
    result = await run(runs, text.replace("backoff_s = 0.1", 'backoff_s = 0, on = ["timed_out"]'))
    assert (result.status, nodes_of(result)["flaky"]["attempts"]) == ("failed", 1)


ON_FAILURE = """
[agents.bad]
command = ["sh", "-c", "echo broken; exit 3"]
on_failure = "{policy}"
[agents.after]
command = ["echo", "{{{{ nodes.bad.status }}}}"]
depends_on = ["bad"]
[agents.slow]
command = ["sleep", "{slow}"]
"""


async def test_on_failure_fail_stops_the_run(runs: Supervisor) -> None:
    result = await run(runs, ON_FAILURE.format(policy="fail", slow=30))
    assert result.status == "failed"
    assert result.end_reason == "bad: failed: exited with code 3"
    nodes = nodes_of(result)
    assert nodes["bad"]["status"] == "failed"
    assert nodes["after"]["status"] == "skipped"
    assert nodes["slow"]["status"] == "stopped"  # it was running: stopped, not left behind
    [slow] = [row for row in await children(runs, result.id) if row.name.endswith(".slow")]
    assert slow.status == "stopped"


async def test_on_failure_skip_skips_its_dependents_only(runs: Supervisor) -> None:
    result = await run(runs, ON_FAILURE.format(policy="skip", slow=0.1))
    assert result.status == "succeeded"
    nodes = nodes_of(result)
    assert (nodes["bad"]["status"], nodes["after"]["status"], nodes["slow"]["status"]) == (
        "failed",
        "skipped",
        "succeeded",
    )
    assert nodes["after"]["error"] == "bad failed"


async def test_on_failure_continue_runs_its_dependents(runs: Supervisor) -> None:
    result = await run(runs, ON_FAILURE.format(policy="continue", slow=0.1))
    assert result.status == "succeeded"
    assert nodes_of(result)["after"]["result"] == "failed"


async def test_foreach_fans_out_with_max_parallel_and_joins(runs: Supervisor) -> None:
    text = """
[vars]
words = ["alpha", "beta", "gamma", "delta", "epsilon"]
[agents.split]
command = ["echo", "{{ vars.words }}"]
[agents.each]
foreach = "{{ nodes.split.output }}"
max_parallel = 2
command = ["sh", "-c", "sleep 0.3; echo \\"$0-$1\\"", "{{ item }}", "{{ index }}"]
depends_on = ["split"]
[agents.join]
prompt = "Join: {{ nodes.each.result }}"
depends_on = ["each"]
"""
    result = await run(runs, text)
    assert result.status == "succeeded", result
    nodes = nodes_of(result)
    assert nodes["each"]["result"] == ["alpha-0", "beta-1", "gamma-2", "delta-3", "epsilon-4"]
    assert nodes["join"]["result"] == 'MOCK REPLY to: Join: ["alpha-0","beta-1","gamma-2","delta-3","epsilon-4"]'
    items = [row for row in await children(runs, result.id) if ".each." in row.name]
    assert sorted(row.name.rsplit(".", 1)[1] for row in items) == ["0", "1", "2", "3", "4"]
    # At most two at once, and two at once indeed.
    moments = sorted([(row.started_at, 1) for row in items] + [(row.ended_at, -1) for row in items])  # type: ignore[misc]
    running, most = 0, 0
    for _at, change in moments:
        running += change
        most = max(most, running)
    assert most == 2


async def test_when_decides_whether_an_agent_runs(runs: Supervisor) -> None:
    text = """
[vars]
mode = "fast"
[agents.probe]
command = ["echo", "{\\"failures\\": 2}"]
[agents.fix]
command = ["echo", "fixing"]
depends_on = ["probe"]
when = "nodes.probe.output.failures > 0 and vars.mode == 'fast'"
[agents.celebrate]
command = ["echo", "all green"]
depends_on = ["probe"]
when = "nodes.probe.output.failures == 0"
[agents.after-celebrate]
command = ["echo", "never"]
depends_on = ["celebrate"]
[agents.report]
command = ["echo", "{{ nodes.celebrate.status }}"]
depends_on = ["celebrate"]
when = "nodes.celebrate.status == 'skipped'"
"""
    result = await run(runs, text)
    assert result.status == "succeeded", result
    nodes = nodes_of(result)
    assert nodes["fix"]["status"] == "succeeded"
    assert nodes["celebrate"] == {
        **nodes["celebrate"],
        "status": "skipped",
        "error": "when 'nodes.probe.output.failures == 0' is false",
    }
    assert nodes["after-celebrate"]["status"] == "skipped"  # a skip carries on down…
    assert nodes["report"]["result"] == "skipped"  # …unless a when of its own decides


async def test_the_runs_budget_caps_its_agents(runs: Supervisor) -> None:
    text = f"""
[budget]
turns = 6
[agents.first]
prompt = {toml_string(script("turns 3", "answer one"))}
[agents.second]
prompt = {toml_string(script("turns 3", "answer two"))}
depends_on = ["first"]
on_failure = "continue"
[agents.third]
prompt = "never"
depends_on = ["second"]
"""
    result = await run(runs, text)
    assert result.status == "failed"
    nodes = nodes_of(result)
    assert nodes["first"]["status"] == "succeeded"
    # The first took 4 turns (3 tools and its answer): the second may use only the 2 left, and fails at them.
    assert nodes["second"]["status"] == "failed"
    assert "max_turns" in nodes["second"]["error"] or "turns" in nodes["second"]["error"]
    assert nodes["third"]["status"] == "skipped"
    [second] = [row for row in await children(runs, result.id) if row.name.endswith(".second")]
    assert second.spec.max_turns == 2
    assert result.end_reason is not None and "the budget is spent" in result.end_reason


async def test_killing_the_run_ends_its_agents_and_the_rest_never_start(runs: Supervisor) -> None:
    text = """
[agents.long]
command = ["sleep", "60"]
[agents.later]
command = ["echo", "never"]
depends_on = ["long"]
"""
    started = await start_run(runs, text)
    with anyio.fail_after(20):
        while not await children(runs, started.id):
            await runs.wait([started.id], timeout_s=0.1)
    killed = await runs.kill([started.id])
    assert {outcome.name: outcome.status for outcome in killed.ended} == {
        started.name: "stopped",
        f"{started.name}.long": "stopped",
    }
    result = await runs.result(started.id)
    assert result.status == "stopped"
    assert [row.name for row in await children(runs, started.id)] == [f"{started.name}.long"]


async def test_a_run_holds_no_slot_of_max_concurrent(settings: Settings) -> None:
    async with supervising(settings.model_copy(update={"max_concurrent": 1})) as supervisor:
        text = '[agents.a]\ncommand = ["echo", "a"]\n[agents.b]\ncommand = ["echo", "b"]\n'
        first = await start_run(supervisor, text)
        second = await start_run(supervisor, text)
        answer = await supervisor.wait([first.id, second.id], timeout_s=30)
        assert [result.status for result in answer.done] == ["succeeded", "succeeded"]
    await assert_no_leftovers(settings)


async def test_agents_inherit_what_the_runs_own_parent_may_do(runs: Supervisor) -> None:
    parent = await runs.spawn(SpawnRequest(prompt=script("hang"), allowed_tools=["Read"]))
    text = """
[agents.within]
prompt = "read"
allowed_tools = ["Read"]
[agents.beyond]
prompt = "shell"
allowed_tools = ["Bash"]
on_failure = "continue"
"""
    started = await start_run(runs, text, caller=Caller(mission_id=parent.id))
    result = (await runs.wait([started.id], timeout_s=30)).done[0]
    nodes = nodes_of(result)
    assert nodes["within"]["status"] == "succeeded"
    assert "go beyond the parent's ['Read']" in nodes["beyond"]["error"]
    assert result.status == "succeeded"
    await runs.kill([parent.id], force=True)


async def test_bad_blueprints_and_variables_are_refused_before_anything_starts(runs: Supervisor) -> None:
    with pytest.raises(BlueprintInvalid, match=r"agents\.a\.depends_on: unknown agent 'b'"):
        await start_run(runs, '[agents.a]\ncommand = ["true"]\ndepends_on = ["b"]\n')
    with pytest.raises(BlueprintInvalid, match=r"vars\.nope: not declared"):
        await start_run(runs, '[agents.a]\ncommand = ["true"]\n', run_vars={"nope": 1})
    assert not await runs.ctx.store.missions()


async def test_the_runs_log_and_ps_show_its_agents(runs: Supervisor) -> None:
    result = await run(
        runs, '[agents.a]\ncommand = ["echo", "A"]\n[agents.b]\ncommand = ["echo", "B"]\ndepends_on = ["a"]\n'
    )
    lines = (await runs.logs(result.id)).lines
    assert lines[0] == "2 agents in 2 layers: a → b"
    assert any(line.startswith("a started (attempt 1") for line in lines)
    assert "b succeeded" in lines
    listing = (await runs.ps(tree=True)).missions
    assert [(entry.name, entry.depth) for entry in listing] == [
        (result.name, 0),
        (f"{result.name}.a", 1),
        (f"{result.name}.b", 1),
    ]
    store = await Store.open(runs.settings.database_path)
    try:
        row = await store.get(result.id)
        assert row is not None and row.provider == "blueprint" and row.spec.runner == "blueprint"
    finally:
        await store.close()


async def test_the_fan_out_example_runs(runs: Supervisor) -> None:
    path = EXAMPLES / "fan_out.toml"
    result = await run(runs, path.read_text(), source=str(path))
    assert result.status == "succeeded", result
    nodes = nodes_of(result)
    summaries = nodes["summarize"]["result"]
    assert [summary.split(" and ")[0] for summary in summaries] == [
        "MOCK REPLY to: Read overmind_mcp/blueprints/validate.py",
        "MOCK REPLY to: Read overmind_mcp/blueprints/executor.py",
        "MOCK REPLY to: Read overmind_mcp/blueprints/journal.py",
    ]
    assert all(summary in nodes["overview"]["result"] for summary in summaries)


async def test_the_test_and_fix_example_loops_until_the_tests_pass(
    runs: Supervisor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (project / "test_calc.py").write_text("from calc import add\n\n\ndef test_add():\n    assert add(2, 2) == 4\n")
    blueprint = project / "test_and_fix.toml"
    blueprint.write_text((EXAMPLES / "test_and_fix.toml").read_text())
    # The stand-in fixer: in round 1 it fixes the code but is not sure; in round 2 it says the tests pass.
    fixer = tmp_path / "fixer.json"
    fixer.write_text(
        json.dumps(
            {
                "Round 1 of 3": ["append calc.py def add(a, b): return a + b", 'answer {"passed": false, "why": "?"}'],
                "Round 2 of 3": ['answer {"passed": true}'],
            }
        )
    )
    monkeypatch.setenv("FAKE_CLAUDE_SCRIPT", str(fixer))
    result = await run(runs, blueprint.read_text(), source=str(blueprint), within=60)
    assert result.status == "succeeded", result
    nodes = nodes_of(result)
    assert nodes["test"]["status"] == "failed"
    assert "assert 0 == 4" in nodes["test"]["result"]
    assert (nodes["fix"]["status"], nodes["fix"]["attempts"], nodes["fix"]["output"]) == (
        "succeeded",
        2,
        {"passed": True},
    )
    assert nodes["verify"]["status"] == "succeeded"
    assert "1 passed" in nodes["verify"]["result"]
