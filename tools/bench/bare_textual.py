"""The floor under `overmind tui`: a Textual app that shows one line and waits for q, started the same way."""

from __future__ import annotations

from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static


class Bare(App[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "quit", "quit")]

    def compose(self) -> ComposeResult:
        yield Static("bare textual app ready")


if __name__ == "__main__":
    Bare().run()
