"""`overmind-mcp`: serve over stdio (the default), streamable HTTP or headless, or run the demo."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from overmind_mcp import __version__
from overmind_mcp.settings import Settings
from overmind_mcp.storage import files
from overmind_mcp.storage.files import UnsafeStateFile

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from overmind_mcp.supervision.supervisor import Supervisor


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    from overmind_mcp.console import VERBS

    if argv and argv[0] in VERBS:
        # `overmind-mcp ps` is `overmind ps`: the human side under the server's own name.
        from overmind_mcp.console import main as console_main

        console_main(argv)
        return
    parser = argparse.ArgumentParser(
        prog="overmind-mcp",
        description="An MCP server that runs and supervises agents. "
        f"Also: overmind-mcp {{{','.join(sorted(VERBS))}}} (the `overmind` command).",
    )
    parser.add_argument("--version", action="version", version=f"overmind-mcp {__version__}")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="serve MCP over stdio (the default) or, with --http, over HTTP")
    transport = serve.add_mutually_exclusive_group()
    transport.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    transport.add_argument(
        "--headless",
        action="store_true",
        help="serve no MCP client: fire rituals and answer the overmind command until SIGTERM (for a service)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765)")
    serve.add_argument(
        "--allow-remote", action="store_true", help="allow a non-loopback --host (clients still need the token)"
    )
    demo = commands.add_parser("demo", help="drive a server through a real MCP client with a stand-in claude")
    demo.add_argument("--claude-bin", help="the claude to run (default: the stand-in from tools/)")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except ValueError as exc:
        parser.exit(2, f"overmind-mcp: {exc}\n")
    if args.command == "demo":
        from overmind_mcp.demo import run_demo

        sys.exit(anyio.run(run_demo, args.claude_bin))
    if args.command == "serve" and args.http and not args.headless:
        from overmind_mcp.server.http import is_loopback

        if not is_loopback(args.host) and not args.allow_remote:
            parser.exit(2, f"overmind-mcp: --host {args.host} is not a loopback address; add --allow-remote\n")
    # Starting a server makes a few hundred thousand objects that live as long as it does (modules,
    # models, schemas): the collector's passes over them while they are made free nothing and cost
    # about a tenth of a second. It is back on, with all of them set aside, once the server serves.
    gc.disable()
    try:
        if args.command == "serve" and args.headless:
            anyio.run(serve_headless, settings)
        elif args.command == "serve" and args.http:
            anyio.run(serve_http, settings, args.host, args.port)
        else:
            anyio.run(serve_stdio, settings)
    except UnsafeStateFile as exc:
        parser.exit(2, f"overmind-mcp: {exc}\n")


async def serve_stdio(settings: Settings) -> None:
    """Serve the session on stdin/stdout, and the children that call back in on a loopback port."""
    from overmind_mcp.attach import serving
    from overmind_mcp.server import http
    from overmind_mcp.server.app import create_server
    from overmind_mcp.server.hosting import supervising
    from overmind_mcp.server.lifetime import rooms
    from overmind_mcp.server.stdio import run_stdio

    async with (
        supervising(settings) as supervisor,
        rooms(supervisor),
        anyio.create_task_group() as task_group,
    ):
        task_group.start_soon(_stop_on_signals, task_group.cancel_scope, supervisor)
        # What the `overmind` command asks of this server (attach, release, send).
        await task_group.start(serving.serve, supervisor)
        server = create_server(supervisor=supervisor)
        sock = http.bind_remembered("127.0.0.1", settings.home / "delegation-port")
        supervisor.delegation_url = http.url_of(sock)
        dashboard = await start_dashboard(task_group, supervisor, http.base_url(sock), loopback=True)
        task_group.start_soon(http.serve, http.http_app(server, supervisor.credentials, "127.0.0.1", dashboard), sock)
        started()
        # Returns at stdin EOF. The children go first, while the HTTP endpoint they may be
        # talking to is still up; then the endpoint.
        await run_stdio(server, settings.stdio)
        with anyio.CancelScope(shield=True):
            await supervisor.shutdown()
        task_group.cancel_scope.cancel()


async def serve_http(settings: Settings, host: str, port: int) -> None:
    """Serve streamable HTTP to any number of clients sharing one supervisor, with a bearer token."""
    from overmind_mcp.attach import serving
    from overmind_mcp.server import http
    from overmind_mcp.server.app import create_server
    from overmind_mcp.server.hosting import supervising
    from overmind_mcp.server.lifetime import rooms

    files.private_directory(settings.home)
    token_path = settings.home / "http-token"
    token, created = http.load_or_create_token(token_path)
    try:
        sock = http.bind(host, port)
    except OSError as exc:
        sys.exit(f"overmind-mcp: cannot listen on {host}:{port}: {exc.strerror}")
    url = http.url_of(sock)
    if created:
        print(f"overmind-mcp: new bearer token (kept in {token_path}, mode 0600):\n{token}", file=sys.stderr)
    print(f"overmind-mcp: serving {url} (Authorization: Bearer <the token in {token_path}>)", file=sys.stderr)
    print(f"overmind-mcp: dashboard at {http.base_url(sock)}/ (`overmind dashboard` logs you in)", file=sys.stderr)
    async with (
        supervising(settings) as supervisor,
        rooms(supervisor),
        anyio.create_task_group() as task_group,
    ):
        supervisor.credentials.allow_root(token)
        supervisor.delegation_url = url
        task_group.start_soon(_stop_on_signals, task_group.cancel_scope, None)
        await task_group.start(serving.serve, supervisor)
        server = create_server(supervisor=supervisor)
        dashboard = await start_dashboard(task_group, supervisor, http.base_url(sock), loopback=http.is_loopback(host))
        started()
        await http.serve(http.http_app(server, supervisor.credentials, host, dashboard), sock)


def started() -> None:
    """Start-up is over: what it made stays for good, so the collector, back on, leaves it out of its passes."""
    gc.freeze()
    gc.enable()


async def start_dashboard(
    task_group: anyio.abc.TaskGroup, supervisor: Supervisor, url: str, *, loopback: bool
) -> ASGIApp | None:
    """The dashboard's app, live in `task_group`; None if it cannot start (the MCP endpoint serves on)."""
    from overmind_mcp.dashboard.web import Dashboard

    dashboard = Dashboard(supervisor, loopback=loopback)

    async def run(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        # A fault domain of its own: a dashboard that fails leaves the server and its missions be.
        try:
            await dashboard.run(url, task_status=task_status)
        except Exception:
            logging.getLogger("overmind_mcp").exception("the dashboard failed")

    try:
        await task_group.start(run)
    except RuntimeError:  # it failed before it was ready
        return None
    return dashboard.app


async def serve_headless(settings: Settings) -> None:
    """A server with no client of its own: it fires rituals and carries out the `overmind` command's requests.

    Its Claude children still call back in (delegation), and the dashboard is served, on a
    loopback port of their own. SIGTERM, SIGINT or SIGHUP ends it: its children are ended
    first, as on stdin EOF.
    """
    from overmind_mcp.server import http
    from overmind_mcp.server.app import create_server
    from overmind_mcp.server.hosting import supervising
    from overmind_mcp.server.lifetime import rooms

    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async with (
            supervising(settings) as supervisor,
            rooms(supervisor),
            anyio.create_task_group() as task_group,
        ):
            sock = http.bind_remembered("127.0.0.1", settings.home / "delegation-port")
            supervisor.delegation_url = http.url_of(sock)
            server = create_server(supervisor=supervisor)
            dashboard = await start_dashboard(task_group, supervisor, http.base_url(sock), loopback=True)
            app = http.http_app(server, supervisor.credentials, "127.0.0.1", dashboard)
            task_group.start_soon(http.serve, app, sock)
            started()
            print(
                f"overmind-mcp: serving headless on {settings.home} (server {supervisor.server_id}, pid {os.getpid()})",
                file=sys.stderr,
                flush=True,
            )
            async for _signum in signals:
                break
            task_group.cancel_scope.cancel()


async def _stop_on_signals(scope: anyio.CancelScope, stdio_supervisor: Supervisor | None) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            scope.cancel()
            if stdio_supervisor is not None:
                # The SDK's stdio transport (OVERMIND_STDIO=sdk) reads stdin on a worker thread that
                # no cancellation can interrupt, so the server would linger until stdin closed. End the children
                # here (every state change is committed as it happens), then exit.
                with anyio.CancelScope(shield=True):
                    await stdio_supervisor.shutdown()
                os._exit(128 + signum)
            return
