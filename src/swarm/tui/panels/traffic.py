"""Traffic: messages and bytes per simulated second, drops and malformed payloads."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from swarm.tui import chart
from swarm.tui.panels.base import Panel, figure
from swarm.tui.view import View


class TrafficPanel(Panel):
    title = "Traffic"

    def draw(self, view: View, width: int) -> Any:
        last = view.last
        table = Table(box=None, expand=True, pad_edge=False, header_style="dim")
        table.add_column("")
        table.add_column("per s", justify="right")  # per simulated second, recent rows
        table.add_column("total", justify="right")
        for label, key in (("sent", "sent"), ("delivered", "delivered"), ("bytes", "bytes")):
            table.add_row(label, figure(view.rate(key)), figure(last.get(key)))
        table.add_row("dropped", figure(view.rate("dropped")), figure(last.get("dropped")))
        malformed = (last.get("dropped_malformed") or 0) + view.malformed
        table.add_row("malformed", "", figure(malformed))
        rates = [
            b["sent"] - a["sent"]
            for a, b in zip(list(view.rows)[:-1], list(view.rows)[1:], strict=True)
            if "sent" in a and "sent" in b
        ]
        return Group(table, chart.render([(rates, "▪", "cyan")], width=width, height=2, lo=0))
