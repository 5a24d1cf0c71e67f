"""`overmind tui` in a real terminal (tmux, 80×24) against a real stdio server with running missions.

Keys go in with `send-keys`, the screen comes back with `capture-pane`, as a person at an SSH
terminal would see it. tmux has no event for "the screen now shows X", so the screen is read
again every few hundredths of a second until it does (bounded).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from overmind_mcp.settings import Settings
from tests.e2e.conftest import missing_tool
from tests.helpers import call, script, server_env, stdio_server, until_printed

pytestmark = pytest.mark.anyio


class Tmux:
    """One tmux server of our own (its own socket), running one program in one 80×24 pane."""

    def __init__(self, socket: Path, argv: list[str], env: dict[str, str]) -> None:
        self.socket = socket
        self.env = env
        # The pane stays when the program exits (to read how it exited), set before it starts.
        self.run(
            *("-f", "/dev/null", "start-server", ";", "set-option", "-w", "-g", "remain-on-exit", "on", ";"),
            *("new-session", "-d", "-x", "80", "-y", "24", "--", *argv),
        )

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *args], env=self.env, capture_output=True, text=True, check=True
        )
        return done.stdout

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "0", *keys)

    def type(self, text: str) -> None:
        self.run("send-keys", "-t", "0", "-l", text)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "0")

    def exit_status(self) -> int | None:
        dead, status = self.run("display-message", "-p", "-t", "0", "#{pane_dead} #{pane_dead_status}").split()
        return int(status) if dead == "1" else None

    async def shows(self, *texts: str, without: tuple[str, ...] = (), within: float = 20.0) -> str:
        """The screen, once it shows every one of `texts` and none of `without`."""
        deadline = time.monotonic() + within
        while True:
            screen = self.screen()
            if all(text in screen for text in texts) and not any(text in screen for text in without):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"the screen never showed {texts!r} without {without!r}; it shows:\n{screen}")
            await anyio.sleep(0.05)

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], env=self.env, capture_output=True, check=False)


@pytest.fixture
def tmux_socket(tmp_path: Path) -> Iterator[Path]:
    if importlib.util.find_spec("textual") is None:
        missing_tool("the tui needs Textual: pip install -e '.[tui]' (tools/test does)")
    if shutil.which("tmux") is None:
        missing_tool("tmux is not installed (tools/test installs it with apt-get): the terminal test needs it")
    socket = tmp_path / "tmux.sock"
    yield socket
    subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True, check=False)


async def test_the_tui_in_a_real_terminal_against_a_real_server(
    settings: Settings, tmux_socket: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the stand-in's sessions, for the server and attach alike
    async with stdio_server(settings) as (client, _server):
        root = await call(client, "spawn", prompt=script("say planning", "hang"), name="root")
        await call(client, "spawn", command=["sh", "-c", "echo working; sleep 600"], name="worker", parent="root")
        await call(client, "spawn", prompt=script("answer hello there"), session=True, name="chat")
        await call(client, "wait", ids=["chat"], timeout_s=20)
        await until_printed(client, root["id"], "planning")

        env = server_env(settings, TERM="xterm-256color")
        tui = Tmux(tmux_socket, [sys.executable, "-m", "overmind_mcp.console", "tui"], env)
        try:
            screen = await tui.shows("3 missions · 3 running", "└─ worker", "chat", "log: root (running)", "running: 3")
            assert "planning" in screen
            assert len(screen.splitlines()) <= 24 and max(len(line) for line in screen.splitlines()) <= 80

            tui.keys("j")
            await tui.shows("log: worker (running)", "working")
            tui.keys("l")
            await tui.shows("log: worker (running)", without=("STATUS",))  # the log has the whole screen
            tui.keys("t")
            await tui.shows("STATUS", "running: 3")

            tui.keys("/")
            await tui.shows("filter: name, id")
            tui.type("cha")
            await tui.shows("filter 'cha': 1 shown", without=("└─ worker",))
            tui.keys("Escape")
            await tui.shows("└─ worker")

            tui.keys("j")
            await tui.shows("log: chat (running)", "hello there")
            tui.keys("s")
            await tui.shows("message for chat")
            tui.type("fake: answer typed in tmux")  # one line: the stand-in reads its directive
            tui.keys("Enter")
            await tui.shows("chat: turn 1 is", without=("message for chat",))
            [answer] = (await call(client, "wait", ids=["chat"], timeout_s=20))["done"]
            assert answer["text"] == "typed in tmux"
            await tui.shows("[idle] turn 2: typed in tmux")

            tui.keys("?")
            await tui.shows("Any key closes this help")
            tui.keys("z")
            await tui.shows("STATUS", without=("Any key closes this help",))
            tui.keys("k", "k")
            await tui.shows("log: root (running)")
            tui.keys("x")
            await tui.shows("Kill root and the 1 live mission under it?")
            tui.keys("y")
            await tui.shows("3 missions · 1 running", "ended on request; ended by SIGINT", within=30)
            assert (await call(client, "result", id="root"))["status"] == "stopped"
            assert (await call(client, "result", id="worker"))["status"] == "stopped"

            # a: the terminal goes to `overmind attach` (here the stand-in claude, which refuses to run
            # interactively and exits 1), the session goes back to its server, and the tui comes back.
            tui.keys("j", "j")
            await tui.shows("log: chat (running)")
            tui.keys("a")
            await tui.shows("chat is back with its server", "exited 1", within=30)  # a notice, in two lines
            again = await call(client, "send", id="chat", message=script("answer still here"))
            assert again["text"] == "still here"
            log = (await call(client, "logs", id="chat"))["lines"]
            assert any(line.startswith("--- attached by a person") for line in log)

            tui.keys("q")
            await tui.shows("Pane is dead")  # what tmux writes when the program has exited
            assert tui.exit_status() == 0
        finally:
            tui.close()
        await call(client, "kill", ids=["chat"])
