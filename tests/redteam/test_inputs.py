"""Odd input: NUL bytes, broken Unicode, over-limit sizes, huge numbers, unknown arguments.

Each is refused up front with a reason, and leaves nothing behind: no mission, no mission
directory. A prompt far beyond what argv can carry reaches the child intact, on stdin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
import pytest

from overmind_mcp.settings import Settings
from overmind_mcp.supervision.inputs import MAX_COMMAND_BYTES, MAX_ENV_BYTES, MAX_PATH_BYTES, MAX_PROMPT_BYTES
from tests.conftest import assert_no_leftovers
from tests.helpers import call, script, stdio_server, until_printed
from tests.redteam.conftest import Tally, looks_internal, text_of

pytestmark = pytest.mark.anyio

BASE = {"prompt": "A task.\nfake: answer done"}
# A lone surrogate (\ud800) cannot even be sent by the SDK's client; test_http.py sends one raw.
BAD_TEXT = {"NUL": "a\x00b"}


def cases() -> list[tuple[str, dict[str, Any], str]]:
    """(what, spawn arguments, what the refusal must say)."""
    found: list[tuple[str, dict[str, Any], str]] = []
    for label, bad in BAD_TEXT.items():
        must = "NUL byte" if label == "NUL" else "not valid Unicode"
        found += [
            (f"{label} in prompt", {"prompt": bad}, must),
            (f"{label} in model", {**BASE, "model": bad}, must),
            (f"{label} in append_system_prompt", {**BASE, "append_system_prompt": bad}, must),
            (f"{label} in cwd", {**BASE, "cwd": bad}, must),
            (f"{label} in resume", {**BASE, "resume": bad}, must),
            (f"{label} in parent", {**BASE, "parent": bad}, must),
            (f"{label} in a tool rule", {**BASE, "allowed_tools": [bad]}, must),
            (f"{label} in command[0]", {"command": [bad]}, must),
            (f"{label} in command[1]", {"command": ["echo", bad]}, must),
            (f"{label} in an env value", {"command": ["true"], "env": {"X": bad}}, must),
        ]
    found += [
        ("NUL in an env name", {"command": ["true"], "env": {"A\x00B": "x"}}, "not a variable name"),
        ("an env name with =", {"command": ["true"], "env": {"A=B": "x"}}, "not a variable name"),
        ("a bad name", {**BASE, "name": "../../etc"}, "bad name"),
        ("a prompt over the limit", {"prompt": "x" * (MAX_PROMPT_BYTES + 1)}, "the limit is"),
        ("a system prompt over the limit", {**BASE, "append_system_prompt": "é" * MAX_PROMPT_BYTES}, "the limit is"),
        ("a 200 KiB argument", {"command": ["echo", "x" * 200_000]}, "the limit is"),
        ("2,000 arguments", {"command": ["echo", *["x"] * 2000]}, "arguments; the limit"),
        ("a command over the limit", {"command": ["echo", *["x" * 1000] * 140]}, f"limit is {MAX_COMMAND_BYTES:,}"),
        ("env over the limit", {"command": ["true"], "env": {f"V{i}": "x" * 1000 for i in range(140)}}, "limit is"),
        ("one huge env value", {"command": ["true"], "env": {"V": "x" * (MAX_ENV_BYTES + 1)}}, "the limit is"),
        ("a 10,000-character cwd", {**BASE, "cwd": "/" + "d" * 9_999}, f"the limit is {MAX_PATH_BYTES:,}"),
        ("a long path component", {**BASE, "cwd": "/" + "d" * 300}, "cannot be used: File name too long"),
        ("a cwd that is a file", {**BASE, "cwd": "/etc/hostname"}, "not an existing directory"),
        ("a ~user cwd", {**BASE, "cwd": "~nosuchuser/x"}, "cannot be used"),
    ]
    return found


async def test_odd_spawns_are_refused_up_front_and_leave_nothing(settings: Settings) -> None:
    tally = Tally()
    async with stdio_server(settings) as (client, _process):
        for what, arguments, must_say in cases():
            tally.calls += 1
            result = await client.call_tool("spawn", arguments)
            text = text_of(result)
            if not result.is_error:
                tally.privileges_gained.append(f"{what}: accepted")
            elif looks_internal(text):
                tally.internal_errors.append(f"{what}: {text}")
            else:
                assert must_say in text, (what, text)
                assert "no mission was changed" not in text
        listed = await call(client, "ps")
        assert listed["missions"] == [], "a refused spawn leaves no mission behind"
        assert list(settings.missions_dir.iterdir()) == [], "nor a mission directory"
    await assert_no_leftovers(settings)
    print(tally.summary())
    tally.assert_clean()


async def test_a_prompt_beyond_what_argv_can_carry_reaches_the_child_on_stdin(settings: Settings) -> None:
    # 512 KiB on one line: four times the kernel's limit for a single argv string.
    marker = "m" * (512 * 1024)
    prompt = script("say up", "hang") + "\n" + marker
    system = "s" * (256 * 1024)
    async with stdio_server(settings) as (client, _process):
        spawned = await call(client, "spawn", prompt=prompt, append_system_prompt=system)
        await until_printed(client, spawned["id"], "up")
        argv = psutil.Process(spawned["pid"]).cmdline()
        assert sum(len(arg) for arg in argv) < 4096, "neither the prompt nor the system prompt is in argv"
        directory = settings.missions_dir / spawned["id"]
        assert marker in (directory / "prompt.jsonl").read_text()
        assert (directory / "append-system-prompt.md").read_text() == system
        await call(client, "kill", ids=[spawned["id"]])
    await assert_no_leftovers(settings)


async def test_odd_calls_to_the_other_tools_get_clear_errors(settings: Settings) -> None:
    tally = Tally()
    probes: list[tuple[str, str, dict[str, Any], str]] = [
        ("forget a 2**63 id", "forget", {"id": 2**63}, "less than or equal to 9223372036854775807"),
        ("forget id 0", "forget", {"id": 0}, "greater than or equal to 1"),
        ("recall with NUL", "recall", {"query": "a\x00b"}, ""),
        ("logs past the end", "logs", {"id": "nobody", "cursor": 2**70}, ""),
        ("a send too big", "send", {"id": "nobody", "message": "x" * (MAX_PROMPT_BYTES + 1)}, "the limit is"),
        ("a send with NUL", "send", {"id": "nobody", "message": "a\x00"}, "NUL byte"),
        ("max_budget for max_budget_usd", "spawn", {**BASE, "max_budget": 1}, "did you mean 'max_budget_usd'"),
    ]
    async with stdio_server(settings) as (client, _process):
        for tool in (await client.list_tools()).tools:
            probes.append((f"an unknown argument to {tool.name}", tool.name, {"bogus": 1}, "unknown argument 'bogus'"))
        for what, tool, arguments, must_say in probes:
            tally.calls += 1
            result = await client.call_tool(tool, arguments)
            text = text_of(result)
            if looks_internal(text):
                tally.internal_errors.append(f"{what}: {text}")
            elif must_say:
                assert result.is_error and must_say in text, (what, text)
        assert (await call(client, "ps"))["missions"] == []
    await assert_no_leftovers(settings)
    print(tally.summary())
    tally.assert_clean()


async def test_a_queued_mission_ended_before_it_started_says_so(settings: Settings) -> None:
    async with stdio_server(settings, OVERMIND_MAX_CONCURRENT="1") as (client, _process):
        busy = await call(client, "spawn", command=["sleep", "60"])
        queued = await call(client, "spawn", command=["true"])
        assert queued["status"] == "queued"
        await call(client, "kill", ids=[queued["id"]])
        ended = await call(client, "result", id=queued["id"])
        assert "before it started" in ended["end_reason"] and "never" not in ended["end_reason"], ended
        await call(client, "kill", ids=[busy["id"]])
    await assert_no_leftovers(settings)


def test_the_limits_are_documented() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "1 MiB" in readme and "128 KiB" in readme, "README.md states the input limits"
