"""Each mission is a fault domain: whatever goes wrong while one is followed stays with that mission.

A fault is injected at each step of a mission's life; a bystander running at the same time
must finish untouched, and the server must keep answering and starting missions.
"""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from overmind_mcp.models import SpawnRequest
from overmind_mcp.settings import Settings
from overmind_mcp.supervision.supervisor import Supervisor
from tests.conftest import assert_no_leftovers

pytestmark = pytest.mark.anyio

VICTIM = "victim"


class Injected(RuntimeError):
    pass


def failing_for_victim(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def wrapper(mission: Any, *args: Any, **kwargs: Any) -> Any:
        if mission.name == VICTIM:
            raise Injected(f"injected into {original.__name__}")
        return await original(mission, *args, **kwargs)

    return wrapper


def inject(step: str, supervisor: Supervisor, monkeypatch: pytest.MonkeyPatch) -> None:
    if step == "parse":
        provider = supervisor.ctx.providers["command"]
        parse = provider.parse_line

        def parse_line(line: bytes) -> Any:
            if b"victim speaks" in line:
                raise Injected("injected into parse_line")
            return parse(line)

        monkeypatch.setattr(provider, "parse_line", parse_line)
    elif step == "store write":
        update = supervisor.ctx.store.update
        victims: set[str] = set()

        async def store_update(mission_id: str, **fields: Any) -> None:
            if fields.get("status") == "restarting" or mission_id in victims:
                victims.add(mission_id)
                raise Injected("injected into Store.update")
            await update(mission_id, **fields)

        monkeypatch.setattr(supervisor.ctx.store, "update", store_update)
    else:
        method = {
            "launch": "launch",
            "follow": "_follow",
            "notify": "_on_progress",
            "note": "note",
            "restart": "_maybe_restart",
            "finish": "finish",
            "record": "_record_run",
        }[step]
        monkeypatch.setattr(supervisor.life, method, failing_for_victim(getattr(supervisor.life, method)))


STEPS = ["launch", "follow", "parse", "notify", "note", "restart", "finish", "record", "store write"]


@pytest.mark.parametrize("step", STEPS)
async def test_a_fault_in_one_mission_leaves_the_others_and_the_server_alone(
    step: str, supervisor: Supervisor, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    bystander = await supervisor.spawn(SpawnRequest(command=["sh", "-c", "sleep 1; echo alive"], name="bystander"))
    inject(step, supervisor, monkeypatch)
    # Fails once, so that a restart (and its note) is part of its life too.
    victim_spawn = supervisor.spawn(
        SpawnRequest(
            command=["sh", "-c", "echo victim speaks; exit 1"],
            name=VICTIM,
            restart="on-failure",
            max_restarts=1,
        )
    )
    if step == "launch":
        # Its first launch fails: the spawn itself says so, and nothing else is touched.
        with pytest.raises(Injected):
            await victim_spawn
    else:
        await victim_spawn
    answer = await supervisor.wait([VICTIM], timeout_s=15)
    assert not answer.timed_out
    [victim] = answer.done
    assert victim.status == "failed"

    answer = await supervisor.wait([bystander.id], timeout_s=15)
    [survivor] = answer.done
    assert (survivor.status, survivor.text) == ("succeeded", "alive")
    # The server still answers and still starts missions.
    assert (await supervisor.status()).children_running == 0
    after = await supervisor.spawn(SpawnRequest(command=["echo", "after"]))
    [later] = (await supervisor.wait([after.id], timeout_s=15)).done
    assert later.status == "succeeded"
    await assert_no_leftovers(settings)


async def test_a_child_dying_by_a_real_time_signal_is_recorded(supervisor: Supervisor) -> None:
    bystander = await supervisor.spawn(SpawnRequest(command=["sh", "-c", "sleep 1; echo alive"]))
    rt = await supervisor.spawn(SpawnRequest(command=["sh", "-c", "kill -35 $$"]))
    [result] = (await supervisor.wait([rt.id], timeout_s=15)).done
    assert result.status == "failed"
    assert result.exit_code == -35
    assert result.end_reason == "killed by SIGRTMIN+1"
    [survivor] = (await supervisor.wait([bystander.id], timeout_s=15)).done
    assert survivor.status == "succeeded"


async def test_a_restart_whose_mission_directory_is_gone_fails_that_mission_only(
    supervisor: Supervisor, settings: Settings
) -> None:
    bystander = await supervisor.spawn(SpawnRequest(command=["sh", "-c", "sleep 1; echo alive"]))
    doomed = await supervisor.spawn(
        SpawnRequest(command=["sh", "-c", "sleep 0.3; exit 1"], restart="on-failure", max_restarts=2)
    )
    shutil.rmtree(Path(settings.missions_dir) / doomed.id)
    [result] = (await supervisor.wait([doomed.id], timeout_s=15)).done
    assert result.status == "failed"
    [survivor] = (await supervisor.wait([bystander.id], timeout_s=15)).done
    assert survivor.status == "succeeded"
    assert (await supervisor.status()).children_running == 0
