"""Providers know how to start one kind of agent and how to read what it prints.

They know nothing of processes, storage or MCP. `Providers` is the registry the
supervisor asks: by a task (which provider runs it) or by the name stored with a mission.
"""

from __future__ import annotations

from collections.abc import Iterable

from overmind_mcp.core.spec import AnyTask
from overmind_mcp.errors import InvalidRequest
from overmind_mcp.providers.base import Provider
from overmind_mcp.providers.blueprint import BlueprintProvider
from overmind_mcp.providers.claude import ClaudeProvider
from overmind_mcp.providers.command import CommandProvider


class Providers:
    def __init__(self, providers: Iterable[Provider]) -> None:
        self._by_kind = {provider.kind: provider for provider in providers}

    @classmethod
    def default(cls, claude_bin: str) -> Providers:
        return cls([ClaudeProvider(claude_bin), CommandProvider(), BlueprintProvider()])

    def for_task(self, task: AnyTask) -> Provider:
        for provider in self._by_kind.values():
            if provider.handles(task):
                return provider
        raise InvalidRequest(f"no provider on this server runs {task.kind} tasks")

    def __getitem__(self, kind: str) -> Provider:
        try:
            return self._by_kind[kind]
        except KeyError:
            raise InvalidRequest(f"no provider on this server is called {kind!r}") from None


def parser_for(kind: str) -> Provider:
    """The provider that reads a stored mission's output (the console has no server of its own)."""
    return Providers.default("claude")[kind]


__all__ = ["Provider", "Providers", "parser_for"]
