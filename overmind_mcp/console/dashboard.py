"""`overmind dashboard`: a one-time login link to the web dashboard of a server on this state directory.

The console never serves the dashboard itself: every server does, beside its MCP endpoint, and
records its URL in the state directory (see `overmind_mcp.dashboard.access`). This verb finds
a live one, stores a new one-time code (hashed) where every server reads it, and prints the
link; it opens it too where a browser can be shown.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import webbrowser

import anyio

from overmind_mcp.console.common import CliError, Exit
from overmind_mcp.console.render import Out
from overmind_mcp.dashboard.access import CODE_TTL_S, Access, ServerRecord, live_servers
from overmind_mcp.settings import Settings


def dashboard(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(_dashboard, settings, args)


async def _dashboard(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    server = _choose(live_servers(settings.home), args.server, settings)
    access = await Access.open(settings.home)
    try:
        code = await access.issue_code()
    finally:
        await access.close()
    url = f"{server.url}/login?code={code}"
    expires_at = time.time() + CODE_TTL_S
    if args.json:
        out.json({"url": url, "server_id": server.server_id, "expires_in_s": CODE_TTL_S, "expires_at": expires_at})
        return Exit.OK
    out.line(url)
    sys.stderr.write(
        f"a login link to the dashboard of server {server.server_id} (pid {server.pid}): "
        f"it works once, within {CODE_TTL_S / 60:.0f} minutes\n"
    )
    if args.open and _can_show_a_browser():
        try:
            opened = webbrowser.open(url, new=2)
        except webbrowser.Error:
            opened = False
        if opened:
            sys.stderr.write("opened in your browser\n")
    return Exit.OK


def _choose(servers: list[ServerRecord], wanted: str | None, settings: Settings) -> ServerRecord:
    if not servers:
        raise CliError(
            f"no overmind-mcp server is running on {settings.home}, so none serves the dashboard: start one "
            "(a Claude Code session with overmind, or `overmind-mcp serve --http`) and run this again"
        )
    if wanted is None:
        return servers[0]
    for server in servers:
        if server.server_id == wanted:
            return server
    known = ", ".join(server.server_id for server in servers)
    raise CliError(f"--server {wanted}: no live server has that id (live: {known})", Exit.NOT_FOUND)


def _can_show_a_browser() -> bool:
    """Whether a browser opened here would be seen: a desktop session, not a bare terminal or a pipe."""
    if not sys.stdout.isatty():
        return False
    return sys.platform == "darwin" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
