"""`overmind-mcp`: serve over stdio (the default), or run the demo."""

from __future__ import annotations

import argparse
import os
import signal
import sys

import anyio
import anyio.abc

from overmind_mcp import __version__
from overmind_mcp.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="overmind-mcp", description="An MCP server that runs and supervises agents.")
    parser.add_argument("--version", action="version", version=f"overmind-mcp {__version__}")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve MCP over stdio (the default)")
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
    anyio.run(serve_stdio, settings)


async def serve_stdio(settings: Settings) -> None:
    from overmind_mcp.server import create_server

    stop_signal: list[signal.Signals] = []

    def exit_if_stopped() -> None:
        # The stdio transport reads stdin on a worker thread that no cancellation can
        # interrupt. After a stop signal, once the children are ended and the store is
        # closed, nothing is left to do: exit instead of waiting for stdin to close.
        if stop_signal:
            os._exit(128 + stop_signal[0])

    server = create_server(settings, on_closed=exit_if_stopped)
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(_stop_on_signals, task_group.cancel_scope, stop_signal)
        # Returns at stdin EOF; the supervisor then ends its children on the way out.
        await server.run_stdio_async()
        task_group.cancel_scope.cancel()


async def _stop_on_signals(scope: anyio.abc.CancelScope, received: list[signal.Signals]) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            received.append(signal.Signals(signum))
            scope.cancel()
            return
