"""Any program as a provider: an argv list in, plain text lines out."""

from __future__ import annotations

from overmind_mcp.core.events import Event, PlainText


def parse_line(line: bytes) -> list[Event]:
    return [PlainText(line.decode("utf-8", "replace").rstrip("\r\n"))]
