"""Fleet overview: who is alive, crashed or a Sybil, per device class; the live knobs."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from swarm.tui.panels.base import Panel, figure
from swarm.tui.view import View


class FleetPanel(Panel):
    title = "Fleet"

    def draw(self, view: View, width: int) -> Any:
        status = view.status or {}
        table = Table(box=None, expand=True, pad_edge=False, header_style="bold")
        for column in ("class", "agents", "alive", "crashed"):
            table.add_column(column, justify="left" if column == "class" else "right")
        for kind, counts in sorted(status.get("classes", {}).items()):
            table.add_row(
                kind,
                figure(counts.get("total")),
                figure(counts.get("alive")),
                Text(figure(counts.get("crashed")), "red" if counts.get("crashed") else ""),
            )
        sybils = status.get("sybils", {})
        if sybils.get("reserved"):
            table.add_row(
                Text("sybil", "magenta"),
                figure(sybils.get("reserved")),
                figure(sybils.get("joined")),
                "",
            )
        if not status:
            alive = view.last.get("alive")
            table.add_row("all", figure(view.info.get("agents")), figure(alive), "-")
        return Group(table, _knobs(view, status))


def _knobs(view: View, status: dict[str, Any]) -> Text:
    line = Text()
    round_ = view.last.get("round", status.get("round"))
    limit = status.get("max_rounds")
    line.append(f"round {figure(round_)}" + (f"/{figure(limit)}" if limit else ""), "bold")
    state = "paused" if status.get("paused") else view.state
    line.append(f"  {state}", "yellow" if status.get("paused") else "green")
    speed = status.get("speed")
    if speed:
        line.append(f"  ×{figure(float(speed))}")
    if status.get("partitioned"):
        line.append("  partitioned", "red")
    return line
