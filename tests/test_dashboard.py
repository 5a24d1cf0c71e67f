"""The dashboard over real HTTP: its login, its refusals, its actions, its board, its panels.

A real stdio server (with its loopback listener) and the real `overmind dashboard` command, or
a supervisor with a dashboard served by uvicorn in the test; requests by an HTTP client.
The same flows in a real browser are in tests/browser.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import pytest

from overmind_mcp.dashboard.access import Access, ServerRecord, published, records_dir
from overmind_mcp.dashboard.board import Annotation
from overmind_mcp.dashboard.panels import Panel, PanelContext, Panels
from overmind_mcp.dashboard.web import Dashboard
from overmind_mcp.models import SpawnRequest
from overmind_mcp.server import http
from overmind_mcp.settings import Settings
from overmind_mcp.supervision.supervisor import Supervisor
from tests.conftest import assert_no_leftovers
from tests.helpers import call, stdio_server
from tests.test_console import overmind, overmind_json

pytestmark = pytest.mark.anyio

HANG = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]


def csrf_of(page: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', page)
    assert match, page[:500]
    return match.group(1)


async def test_login_once_then_a_session_and_every_refusal(settings: Settings) -> None:
    async with stdio_server(settings) as (client, _process):
        login = await overmind_json(settings, "dashboard", "--no-open")
        base, code_path = login["url"].split("/login", 1)
        [record] = list(records_dir(settings.home).glob("*.json"))
        assert json.loads(record.read_text())["url"] == base
        assert stat.S_IMODE((settings.home / "dashboard.db").stat().st_mode) == 0o600
        mission = await call(client, "spawn", command=HANG, name="hanger")
        async with httpx.AsyncClient(base_url=base) as web:
            # Without a session: 401 everywhere, a page that says how to log in where a page was asked for.
            page = await web.get("/", headers={"accept": "text/html"})
            assert page.status_code == 401
            assert "overmind dashboard" in page.text
            assert (await web.get("/events")).status_code == 401
            assert (await web.get(f"/missions/{mission['id']}")).status_code == 401
            refused = await web.post(f"/missions/{mission['id']}/kill", headers={"origin": base})
            assert refused.status_code == 401
            assert (await web.get("/login?code=not-a-code")).status_code == 401

            # The code becomes an HttpOnly, SameSite=Strict cookie, and the address loses it.
            logged_in = await web.get("/login" + code_path)
            assert logged_in.status_code == 303
            assert logged_in.headers["location"] == "/"
            cookie = logged_in.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
            async with httpx.AsyncClient(base_url=base) as stranger:
                assert (await stranger.get("/login" + code_path)).status_code == 401, "a code works once"

            board = await web.get("/")
            assert board.status_code == 200
            assert "hanger" in board.text
            assert "default-src 'none'" in board.headers["content-security-policy"]
            csrf = csrf_of(board.text)
            # DNS rebinding: a loopback server answers only to loopback names.
            assert (await web.get("/", headers={"host": "evil.example:80"})).status_code == 421

            kill_url = f"/missions/{mission['id']}/kill"
            json_accept = {"accept": "application/json"}
            no_token = await web.post(kill_url, headers={"origin": base, **json_accept})
            assert no_token.status_code == 403
            assert "anti-CSRF" in no_token.json()["error"]
            foreign = await web.post(kill_url, headers={"origin": "http://evil.example", "x-csrf-token": csrf})
            assert foreign.status_code == 403
            no_origin = await web.post(kill_url, headers={"x-csrf-token": csrf})
            assert no_origin.status_code == 403
            assert (await call(client, "result", id=mission["id"]))["status"] == "running"

            headers = {"origin": base, "x-csrf-token": csrf, **json_accept}
            not_a_session = await web.post(f"/missions/{mission['id']}/send", data={"message": "hi"}, headers=headers)
            assert not_a_session.status_code == 400
            assert "not a session" in not_a_session.json()["error"]
            unknown = await web.post("/missions/no-such-mission/kill", headers=headers)
            assert unknown.status_code == 404
            killed = await web.post(kill_url, data={"cascade": "1"}, headers=headers)
            assert killed.status_code == 200, killed.text
            assert killed.json()["message"].startswith("ended hanger")
            assert (await call(client, "result", id=mission["id"]))["status"] in ("stopped", "killed")

            mission_page = await web.get("/missions/hanger")
            assert mission_page.status_code == 200
            assert "up" in mission_page.text  # its log
            assert (await web.get("/missions/nothing-by-that-name")).status_code == 404

            logged_out = await web.post("/logout", data={"csrf": csrf}, headers={"origin": base})
            assert logged_out.status_code == 303
            web.cookies.clear()
            web.cookies.update({key: value for key, value in logged_in.cookies.items()})
            assert (await web.get("/")).status_code == 401, "the session ended with the logout"
    assert not list(records_dir(settings.home).glob("*.json")), "a stopping server removes its record"
    await assert_no_leftovers(settings)


async def test_the_command_says_when_no_server_serves_a_dashboard(settings: Settings) -> None:
    settings.home.mkdir(parents=True)
    dead = ServerRecord(server_id="0" * 16, url="http://127.0.0.1:9", pid=2**22 + 1, proc_start=1.0, started_at=1.0)
    with published(settings.home, dead) as path:
        done = await overmind(settings, "dashboard", "--no-open")
        assert done.returncode == 1
        assert "no overmind-mcp server is running" in done.stderr
        assert not path.exists(), "a dead server's record is removed"


# -- the board, in process: attention groups, live updates, panels ------------------------------------


@asynccontextmanager
async def served(supervisor: Supervisor, dashboard: Dashboard) -> AsyncIterator[httpx.AsyncClient]:
    """The dashboard served over real HTTP on a free loopback port, and a client logged in to it."""
    sock = http.bind("127.0.0.1", 0)
    base = http.base_url(sock)
    async with anyio.create_task_group() as tasks:
        await tasks.start(dashboard.run, base)
        tasks.start_soon(http.serve, dashboard.app, sock)
        access = await Access.open(supervisor.settings.home)
        code = await access.issue_code()
        await access.close()
        async with httpx.AsyncClient(base_url=base, timeout=30) as web:
            assert (await web.get(f"/login?code={code}")).status_code == 303
            yield web
        tasks.cancel_scope.cancel()


async def board_updates(web: httpx.AsyncClient) -> AsyncIterator[dict[str, Any]]:
    """The board's server-sent updates, as the page's script receives them."""
    async with web.stream("GET", "/events?v=0") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        event = None
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "board":
                yield json.loads(line.split(":", 1)[1])


async def test_board_groups_by_attention_and_panels_plug_in(supervisor: Supervisor) -> None:
    approvals: list[Mapping[str, str]] = []
    waiting: dict[str, Annotation] = {}

    async def annotate(context: PanelContext) -> Mapping[str, Annotation]:
        return dict(waiting)

    async def approve(context: PanelContext, form: Mapping[str, str]) -> str:
        assert context.mission is not None
        approvals.append(form)
        waiting.pop(context.mission.id, None)
        return f"approved {form['tool']} for {context.mission.name}"

    async def nothing(context: PanelContext) -> Mapping[str, Any]:
        return {"servers": []}

    approvals_panel = Panel(
        name="approvals",
        title="Approvals",
        page="board",
        template="panels/servers.html",
        load=nothing,
        actions={"approve": approve},
        annotate=annotate,
    )
    panels = Panels.default()
    panels.register(approvals_panel)
    dashboard = Dashboard(supervisor, loopback=True, panels=panels, stall_after_s=0.5)
    quiet = await supervisor.spawn(SpawnRequest(command=HANG, name="quiet"))
    asking = await supervisor.spawn(SpawnRequest(command=HANG, name="asking"))
    waiting[asking.id] = Annotation(needs_approval="wants to run Bash: rm -rf build", diffstat="+3 −1")
    async with served(supervisor, dashboard) as web:
        page = await web.get("/")
        assert 'id="panel-approvals"' in page.text
        assert "wants to run Bash" in page.text and "+3 −1" in page.text
        csrf = csrf_of(page.text)
        groups: dict[str, list[str]] = {}
        with anyio.fail_after(20):
            async for update in board_updates(web):
                groups = {group["key"]: group["ids"] for group in update.get("groups", [])} or groups
                # It printed a line, then nothing for longer than stall_after_s: stalled, by a timer, not a poll.
                if quiet.id in groups.get("stalled", []):
                    break
        assert groups["approval"] == [asking.id]

        headers = {"origin": str(web.base_url).rstrip("/"), "x-csrf-token": csrf, "accept": "application/json"}
        answer = await web.post(
            "/panels/approvals/approve", data={"mission": "asking", "tool": "Bash"}, headers=headers
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["message"] == "approved Bash for asking"
        assert approvals == [{"mission": "asking", "tool": "Bash"}]
        assert (await web.post("/panels/approvals/deny", headers=headers)).status_code == 404
        await supervisor.kill([quiet.id, asking.id])


async def test_a_mission_page_follows_the_log_and_the_end(supervisor: Supervisor, tmp_path: Path) -> None:
    go = tmp_path / "go"
    os.mkfifo(go)
    # Prints one line, then a second when told (the fifo opens), then ends.
    script = f"print('first', flush=True); open({str(go)!r}).read(); print('second', flush=True)"
    mission = await supervisor.spawn(SpawnRequest(command=[sys.executable, "-c", script], name="talker"))
    dashboard = Dashboard(supervisor, loopback=True)
    async with served(supervisor, dashboard) as web:
        seen: list[str] = []
        status = ""
        with anyio.fail_after(20):
            async with web.stream("GET", f"/missions/{mission.id}/events?cursor=0") as stream:
                event = None
                async for line in stream.aiter_lines():
                    if line.startswith("event:"):
                        event = line.split(":", 1)[1].strip()
                    elif line.startswith("data:") and event == "log":
                        seen.extend(json.loads(line.split(":", 1)[1])["lines"])
                        if seen == ["first"]:
                            with go.open("w") as fifo:
                                fifo.write("go")
                    elif line.startswith("data:") and event == "head":
                        top = json.loads(line.split(":", 1)[1])["top"]
                        status = re.search(r'<dd class="st-(\w+)">', top).group(1)  # type: ignore[union-attr]
                        if status == "succeeded":
                            break
        assert seen == ["first", "second"]
        assert status == "succeeded"


async def test_one_file_watched_twice_by_one_watcher(tmp_path: Path) -> None:
    """The board and a mission page follow the same output file through one inotify watcher."""
    from overmind_mcp.runners.local.watch import FileWatcher

    path = tmp_path / "output.jsonl"
    path.write_bytes(b"")
    watcher = FileWatcher()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(watcher.run)
        with watcher.watch(path) as second, anyio.fail_after(10):
            with watcher.watch(path) as first:
                with path.open("ab") as file:
                    file.write(b"one\n")
                await first.wait()
                await second.wait()
            with path.open("ab") as file:
                file.write(b"two\n")
            await second.wait()
        tasks.cancel_scope.cancel()
