"""`overmind attach ID`: take a live session over in this terminal (see overmind_mcp/attach/)."""

from __future__ import annotations

import argparse

import anyio

from overmind_mcp.attach.terminal import take_over
from overmind_mcp.settings import Settings


def attach(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(take_over, settings, args.id)
