"""The supervisor running Claude tasks, with the stand-in claude from tools/ as a real subprocess."""

from __future__ import annotations

import os

import anyio
import psutil
import pytest

from overmind_mcp.models import SpawnRequest
from overmind_mcp.supervision.supervisor import Supervisor
from tests.test_supervisor_raw import until_gone, until_output

pytestmark = pytest.mark.anyio


def task(*directives: str, **options: object) -> SpawnRequest:
    prompt = "\n".join(["Do the thing.", *(f"fake: {directive}" for directive in directives)])
    return SpawnRequest(prompt=prompt, **options)


async def finish(supervisor: Supervisor, request: SpawnRequest):  # type: ignore[no-untyped-def]
    spawned = await supervisor.spawn(request)
    answer = await supervisor.wait([spawned.id], timeout_s=30)
    assert not answer.timed_out
    return answer.done[0]


async def test_a_successful_task(supervisor: Supervisor) -> None:
    result = await finish(supervisor, task("turns 2", "answer All done.", name="worker"))
    assert (result.status, result.exit_code, result.is_error) == ("succeeded", 0, False)
    assert result.text == "All done."
    assert result.num_turns == 3
    assert result.cost_usd and result.cost_usd > 0
    assert result.session_id
    assert result.usage and result.usage.input_tokens > 0
    # The session id was stored while the task ran, so a person could take it over.
    listing = await supervisor.ps()
    assert listing.missions[0].turns == 3


async def test_an_error_result_fails_the_mission_even_with_subtype_success(supervisor: Supervisor) -> None:
    result = await finish(supervisor, task("error Not logged in · Please run /login"))
    assert (result.status, result.is_error, result.exit_code) == ("failed", True, 1)
    assert result.text == "Not logged in · Please run /login"


async def test_an_error_subtype_carries_its_errors(supervisor: Supervisor) -> None:
    result = await finish(supervisor, task("fail something broke"))
    assert result.status == "failed"
    assert result.errors == ["something broke"]
    assert result.text is None


async def test_a_crash_without_a_result(supervisor: Supervisor) -> None:
    result = await finish(supervisor, task("stderr segfault-ish", "exit 7"))
    assert (result.status, result.exit_code) == ("failed", 7)
    assert "segfault-ish" in result.errors[0]


async def test_max_turns(supervisor: Supervisor) -> None:
    result = await finish(supervisor, task("turns 5", max_turns=2))
    assert result.status == "failed"
    assert result.is_error


async def test_malformed_lines_are_kept_as_text(supervisor: Supervisor) -> None:
    result = await finish(supervisor, task("malformed", "answer fine"))
    assert result.status == "succeeded"
    page = await supervisor.logs(result.id, limit=100)
    assert any("{" in line and not line.startswith("[") for line in page.lines)
    events = await supervisor.logs(result.id, limit=100, format="events")
    assert any(event.get("type") == "plain" for event in events.events)
    assert any(event.get("type") == "result" for event in events.events)


async def test_child_environment_is_clean(supervisor: Supervisor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDECODE", "1")
    monkeypatch.setenv("CLAUDE_CODE_ENTRYPOINT", "sdk-cli")
    result = await finish(
        supervisor, task("env CLAUDECODE", "env CLAUDE_CODE_ENTRYPOINT", "env OVERMIND_MISSION_NAME", name="clean")
    )
    assert "CLAUDECODE=<unset>" in result.text
    assert "CLAUDE_CODE_ENTRYPOINT=<unset>" in result.text
    assert "OVERMIND_MISSION_NAME=clean" in result.text


async def test_progress_while_running(supervisor: Supervisor) -> None:
    spawned = await supervisor.spawn(task("turns 2", "api_retry 2", "say halfway", "hang"))
    await until_output(supervisor, spawned.id, "halfway")
    running = await supervisor.result(spawned.id)
    assert running.status == "running"
    assert running.progress is not None
    assert running.progress.tool_calls == 2
    assert running.progress.api_retries == 2
    assert running.progress.last_text == "halfway"
    summary = (await supervisor.ps()).missions[0]
    assert summary.doing and "halfway" in summary.doing
    await supervisor.kill([spawned.id])


async def test_sigint_keeps_the_partial_result(supervisor: Supervisor) -> None:
    spawned = await supervisor.spawn(task("say started", "hang"))
    await until_output(supervisor, spawned.id, "started")
    outcome = await supervisor.kill([spawned.id])
    assert (outcome.ended[0].status, outcome.ended[0].how) == ("stopped", "SIGINT")
    result = await supervisor.result(spawned.id)
    assert result.is_error  # the CLI's own aborted result, kept
    assert result.session_id


async def test_a_grandchild_that_ignores_signals_is_killed_with_the_group(supervisor: Supervisor) -> None:
    spawned = await supervisor.spawn(task("grandchild", "hang"))
    await until_output(supervisor, spawned.id, "grandchild pid")
    page = await supervisor.logs(spawned.id)
    pid = int(next(line for line in page.lines if "grandchild pid" in line).split()[-1])
    assert psutil.pid_exists(pid)
    await supervisor.kill([spawned.id])
    await until_gone(pid)


async def test_flood_keeps_server_memory_flat(supervisor: Supervisor) -> None:
    me = psutil.Process(os.getpid())
    warmup = await finish(supervisor, task("flood 2", "answer warm"))
    assert warmup.status == "succeeded"
    before = me.memory_info().rss
    result = await finish(supervisor, task("flood 60", "answer survived"))
    growth_mb = (me.memory_info().rss - before) / 2**20
    assert result.status == "succeeded"
    assert result.text == "survived"
    assert growth_mb < 30, f"RSS grew {growth_mb:.1f} MB while ingesting 60 MB of output"
    with anyio.fail_after(5):
        assert (await supervisor.logs(result.id, limit=1)).more


async def test_recall_into_prompt_gives_the_child_the_relevant_memories(supervisor: Supervisor) -> None:
    akasha = supervisor.akasha
    project = akasha.scope().project
    await akasha.remember("Deploys to staging need the VPN turned on first.", namespace=project, key="vpn")
    await akasha.remember("The office coffee machine is on the third floor.", namespace=project, key="coffee")
    prompt = "Deploy the app to staging.\nfake: say up\nfake: hang"
    spawned = await supervisor.spawn(SpawnRequest(prompt=prompt, recall_into_prompt=True))
    await until_output(supervisor, spawned.id, "up")
    argv = psutil.Process(spawned.pid).cmdline()
    # The system prompt is read from a file: its text is never in argv.
    path = next(arg for arg in argv if arg.startswith("--append-system-prompt-file=")).partition("=")[2]
    system = await anyio.Path(path).read_text()
    assert "VPN" in system and "VPN" not in " ".join(argv)
    assert "coffee" not in system
    await supervisor.kill([spawned.id])


async def test_remember_result_keeps_the_answer_in_the_runs_memory(supervisor: Supervisor) -> None:
    spawned = await supervisor.spawn(task("answer The flaky test was a race in the cache.", remember_result=True))
    await supervisor.wait([spawned.id], timeout_s=30)
    found = await supervisor.akasha.recall("flaky race", namespaces=[f"run:{spawned.id}"])
    assert [hit.content for hit in found.hits] == ["The flaky test was a race in the cache."]
    assert found.hits[0].mission_id == spawned.id
