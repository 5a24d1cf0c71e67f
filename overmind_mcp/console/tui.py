"""`overmind tui`: the full-screen view (overmind_mcp/tui/); `a` there hands the terminal to `overmind attach`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import anyio

from overmind_mcp.console.common import CliError, Exit
from overmind_mcp.console.state import open_state, watching
from overmind_mcp.settings import Settings

if TYPE_CHECKING:
    from overmind_mcp.tui.app import Attach


def tui(settings: Settings, args: argparse.Namespace) -> int:
    try:
        from overmind_mcp.tui.app import Attach
    except ImportError as exc:
        raise CliError(
            f"the tui needs Textual ({exc.name} is missing): pip install 'overmind-mcp[tui]'", Exit.USAGE
        ) from None
    from overmind_mcp.attach.terminal import take_over

    select: str | None = None
    notice: str | None = None
    while True:
        handover, code = anyio.run(_run, settings, args, select, notice)
        if not isinstance(handover, Attach):
            return code
        # The terminal is the person's and claude's until they leave it; then the tui comes back.
        select = handover.mission_id
        try:
            exited = anyio.run(take_over, settings, handover.mission_id)
            notice = f"{handover.name} is back with its server" + (f" (claude exited {exited})" if exited else "")
        except CliError as exc:
            notice = f"attach {handover.name}: {exc}"
        except KeyboardInterrupt:
            notice = f"gave up attaching {handover.name}"


async def _run(
    settings: Settings, args: argparse.Namespace, select: str | None, notice: str | None
) -> tuple[Attach | None, int]:
    """One run of the app, with the state directory open around it; what it exited with, and its exit code."""
    from overmind_mcp.tui.app import OvermindApp

    async with open_state(settings) as state, watching() as watcher:
        app = OvermindApp(
            settings, state, watcher, every=args.all, interval=args.interval, select=select, notice=notice
        )
        handover: Attach | None = await app.run_async()
        return handover, app.return_code or Exit.OK
