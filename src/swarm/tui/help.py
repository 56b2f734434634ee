"""The help screen: every key, every control message, and where the palette is."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from swarm.fleet.control import COMMANDS


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "close"),
    ]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        keys = Table(title="Keys", box=None, title_justify="left", show_header=False)
        keys.add_column(style="bold cyan")
        keys.add_column()
        for key, what in self.keys:
            keys.add_row(key, what)
        keys.add_row("ctrl+p", "command palette: every control with its arguments")
        controls = Table(
            title="Control messages (swarm/<run>/control/<command>)",
            box=None,
            title_justify="left",
            show_header=False,
        )
        controls.add_column(style="bold green")
        controls.add_column()
        for name, what in COMMANDS.items():
            controls.add_row(name, what)
        with VerticalScroll(id="help"):
            yield Static(keys)
            yield Static(controls)
            yield Static(
                "A headless run takes the same messages, e.g. mosquitto_pub -t "
                "swarm/lab/control/pause -m ... (a swarm wire envelope; see docs/wire.md). "
                "Press escape to close."
            )
