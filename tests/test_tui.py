"""`overmind tui` driven by Textual's Pilot, headless, against a real supervisor with real children.

Every key is pressed here: j k and the arrows, Enter and l, t, /, x, s, a, ? and q. The app
reads the same state directory the supervisor writes, through its own read-only connection,
and acts on it the way the other verbs do (a kill through the store and the kernel, a message
over the owning server's request path). tests/test_tui_tmux.py runs it in a real terminal.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from overmind_mcp.attach import serving
from overmind_mcp.console.state import State, open_state, watching
from overmind_mcp.models import SpawnRequest
from overmind_mcp.runners.local.watch import FileWatcher
from overmind_mcp.settings import Settings
from overmind_mcp.supervision.supervisor import Supervisor
from tests.e2e.conftest import missing_tool
from tests.helpers import script
from tests.test_supervisor_raw import until_output

if TYPE_CHECKING or importlib.util.find_spec("textual") is not None:
    from textual.pilot import Pilot
    from textual.widgets import DataTable, Input, RichLog, Static

    from overmind_mcp.tui.app import Attach, ConfirmKill, HelpScreen, OvermindApp, SendMessage

pytestmark = pytest.mark.anyio

Opened = tuple[State, FileWatcher]

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def _textual_and_a_home_of_their_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("textual") is None:
        missing_tool("the tui needs Textual: pip install -e '.[tui]' (tools/test does)")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the stand-in keeps sessions there


@pytest.fixture
async def supervisor(supervisor: Supervisor) -> AsyncIterator[Supervisor]:
    """The supervisor, answering the console's requests as a real server does (cli.py starts the same)."""
    async with anyio.create_task_group() as task_group:
        await task_group.start(serving.serve, supervisor)
        yield supervisor
        task_group.cancel_scope.cancel()


async def until(pilot: Pilot[Any], condition: Callable[[], bool], within: float = 10.0, what: str = "") -> None:
    """Let the app run until `condition` holds (it is checked after each batch of the app's messages)."""
    waited = 0.0
    while not condition():
        if waited >= within:
            raise AssertionError(f"not within {within} s: {what or condition}")
        await pilot.pause(0.02)
        waited += 0.02


def tree(app: OvermindApp) -> list[list[str]]:
    table = app.query_one("#tree", DataTable)
    return [[str(cell) for cell in table.get_row_at(index)] for index in range(table.row_count)]


def names(app: OvermindApp) -> list[str]:
    return [cells[0] for cells in tree(app)]


def log_text(app: OvermindApp) -> str:
    return "\n".join(line.text for line in app.query_one("#log", RichLog).lines)


def cursor(app: OvermindApp) -> int:
    return app.query_one("#tree", DataTable).cursor_row


async def missions(supervisor: Supervisor) -> None:
    """root (a claude task that works then waits) ─ worker (a command) ; done (ended) ; chat (a session)."""
    await supervisor.spawn(SpawnRequest(prompt=script("say planning", "tool Bash {}", "hang"), name="root"))
    await supervisor.spawn(SpawnRequest(command=["sh", "-c", "echo working; sleep 600"], name="worker", parent="root"))
    await supervisor.spawn(SpawnRequest(command=["sh", "-c", "echo finished"], name="done"))
    await supervisor.spawn(SpawnRequest(prompt=script("answer hello there"), session=True, name="chat"))
    await supervisor.wait(["done", "chat"], timeout_s=20)
    await until_output(supervisor, "root", "← ok")
    await until_output(supervisor, "worker", "working")


@pytest.fixture
async def opened(settings: Settings) -> AsyncIterator[Opened]:
    """The state directory as `overmind tui` opens it around the app (console/tui.py)."""
    async with open_state(settings) as state, watching() as watcher:
        yield state, watcher


def app_for(settings: Settings, opened: Opened, **options: Any) -> OvermindApp:
    return OvermindApp(settings, *opened, **options)


async def running(app: OvermindApp, body: Callable[[Pilot[Any]], Awaitable[None]]) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None and len(names(app)) > 0, what="the first snapshot")
        await body(pilot)


async def test_the_tree_the_log_and_moving_around(supervisor: Supervisor, settings: Settings, opened: Opened) -> None:
    await missions(supervisor)
    app = app_for(settings, opened)

    async def body(pilot: Pilot[Any]) -> None:
        assert names(app) == ["root", "└─ worker", "done", "chat"]
        rows = {cells[0]: cells for cells in tree(app)}
        assert rows["root"][1] == "running" and rows["done"][1] == "succeeded"
        assert rows["chat"][3] == "$0.0008" and "[idle]" in rows["chat"][4]
        status = app.query_one("#tree", DataTable).get_row_at(2)[1]
        assert status.style == "green"  # status colours: succeeded is green, running cyan…
        summary = str(app.query_one("#summary", Static).render())
        assert "4 missions · 3 running" in summary

        # The log panel follows the selected mission.
        await until(pilot, lambda: "planning" in log_text(app), what="root's log")
        assert cursor(app) == 0
        await pilot.press("j")
        assert cursor(app) == 1
        await until(pilot, lambda: "working" in log_text(app), what="worker's log")
        await pilot.press("down", "down")
        assert cursor(app) == 3
        await pilot.press("k")
        assert cursor(app) == 2
        await pilot.press("up")
        assert cursor(app) == 1
        await pilot.press("j", "j")
        await until(pilot, lambda: "hello there" in log_text(app), what="chat's log")

        # Live: what the session says next appears in the panel, and in the tree.
        await supervisor.send("chat", script("answer second turn"))
        await until(pilot, lambda: "second turn" in log_text(app), what="the new turn in the log")
        await until(pilot, lambda: "second turn" in tree(app)[3][4], what="the new turn in the tree")

        # Enter and l give the log the screen; t and Esc bring the tree back.
        await pilot.press("enter")
        assert app.view == "logs" and not app.query_one("#tree").display
        await pilot.press("t")
        assert app.view == "tree" and app.query_one("#tree").display and app.query_one("#top").display
        await pilot.press("l")
        assert app.view == "logs"
        await pilot.press("k", "j")  # in the log view they scroll the log
        assert cursor(app) == 3
        await pilot.press("escape")
        assert app.view == "tree"

        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("z")
        assert not isinstance(app.screen, HelpScreen)

        await pilot.press("slash")
        await until(pilot, lambda: app.query_one("#filter", Input).has_focus, what="the filter")
        await pilot.press(*"work")
        assert names(app) == ["worker"]
        await pilot.press("enter")
        assert app.query_one("#tree", DataTable).has_focus and names(app) == ["worker"]
        await pilot.press("slash", "escape")
        assert names(app) == ["root", "└─ worker", "done", "chat"]

        await pilot.press("q")

    await running(app, body)
    assert app.return_value is None
    await supervisor.kill(["root", "chat"])


async def test_the_top_panel_samples_running_process_trees(
    supervisor: Supervisor, settings: Settings, opened: Opened
) -> None:
    await missions(supervisor)
    app = app_for(settings, opened, interval=0.2)
    counts = {"show": 0, "top": 0}
    show, render_top = app._show, app._render_top

    def counted_show(snapshot: Any) -> None:
        counts["show"] += 1
        show(snapshot)

    def counted_top(entries: Any) -> None:
        counts["top"] += 1
        render_top(entries)

    app._show, app._render_top = counted_show, counted_top  # type: ignore[method-assign]

    async def body(pilot: Pilot[Any]) -> None:
        top = app.query_one("#top", DataTable)
        await until(pilot, lambda: top.row_count == 3, what="three running missions in the top panel")
        sampled = {str(top.get_row_at(index)[0]): top.get_row_at(index) for index in range(top.row_count)}
        worker = await supervisor.mission("worker")
        assert str(sampled["worker"][1]) == str(worker.pid)
        assert int(str(sampled["worker"][2])) == 2  # sh and its sleep: the whole process tree
        assert str(sampled["worker"][4]).endswith(("K", "M"))  # RSS
        assert "running: 3" in str(top.border_title)

        # The tree is read when something changes, not on a timer (the CPU samples tick meanwhile).
        shown, sampled_count = counts["show"], counts["top"]
        await pilot.pause(1.0)  # five sampling intervals with nothing happening
        assert counts["show"] == shown, "the tree was read again with nothing changed"
        assert counts["top"] >= sampled_count + 3

        await supervisor.kill(["worker"])
        await until(pilot, lambda: top.row_count == 2, what="the top panel without the killed worker")
        await until(pilot, lambda: tree(app)[1][1] == "stopped", what="the tree shows the kill")
        await pilot.press("q")

    await running(app, body)
    await supervisor.kill(["root", "chat"])


async def test_x_asks_then_kills_the_subtree(supervisor: Supervisor, settings: Settings, opened: Opened) -> None:
    await missions(supervisor)
    app = app_for(settings, opened)

    async def body(pilot: Pilot[Any]) -> None:
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmKill)
        assert app.screen.question == "Kill root and the 1 live mission under it?  y / n"
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmKill)
        assert (await supervisor.mission("root")).status == "running"

        await pilot.press("x", "y")
        await until(pilot, lambda: [cells[1] for cells in tree(app)[:2]] == ["stopped", "stopped"], what="stopped")
        assert (await supervisor.mission("worker")).status == "stopped"
        assert (await supervisor.mission("chat")).status == "running"

        # An ended mission is not killed again.
        await pilot.press("x")
        assert not isinstance(app.screen, ConfirmKill)
        await pilot.press("q")

    await running(app, body)
    await supervisor.kill(["chat"])


async def test_s_sends_a_session_its_next_message(supervisor: Supervisor, settings: Settings, opened: Opened) -> None:
    await missions(supervisor)
    app = app_for(settings, opened, select=(await supervisor.mission("chat")).id)

    async def body(pilot: Pilot[Any]) -> None:
        assert cursor(app) == 3
        await pilot.press("s")
        assert isinstance(app.screen, SendMessage)
        await pilot.press("escape")
        assert not isinstance(app.screen, SendMessage)

        await pilot.press("s")
        app.screen.query_one("#message", Input).value = script("answer from the person at the tui")
        await pilot.press("enter")
        assert not isinstance(app.screen, SendMessage)
        await until(pilot, lambda: "from the person at the tui" in log_text(app), what="the answer in the log")
        assert (await supervisor.result("chat")).text == "from the person at the tui"

        # A task takes no messages: nothing to type into.
        await pilot.press("k", "k", "k", "s")
        assert cursor(app) == 0 and not isinstance(app.screen, SendMessage)
        await pilot.press("q")

    await running(app, body)
    await supervisor.kill(["root", "chat"])


async def test_a_hands_the_terminal_over_to_attach(supervisor: Supervisor, settings: Settings, opened: Opened) -> None:
    await missions(supervisor)
    app = app_for(settings, opened)

    async def body(pilot: Pilot[Any]) -> None:
        await pilot.press("a")  # root is a task: it stays
        assert app.is_running and app.return_value is None
        await pilot.press("j", "j", "j", "a")

    await running(app, body)
    chat = await supervisor.mission("chat")
    assert app.return_value == Attach(chat.id, "chat")
    # Nothing was asked of the server yet: `overmind tui` runs `overmind attach` once the app is gone.
    assert (await supervisor.result("chat")).session_state == "idle"
    await supervisor.kill(["root", "chat"])
