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
        classes = status.get("classes", {})
        # Sleep and battery columns only for fleets that have them (mesh, battery devices).
        asleep = any("asleep" in c for c in classes.values())
        energy = any("energy_left" in c for c in classes.values())
        faults = any("failures" in c for c in classes.values())
        table = Table(box=None, expand=True, pad_edge=False, header_style="bold")
        columns = ["class", "agents", "alive"] + ["asleep"] * asleep + ["crashed"]
        columns += ["failed", "back"] * faults  # failures so far ([faults]), repairs
        for column in columns + ["energy"] * energy:
            table.add_column(column, justify="left" if column == "class" else "right")
        for kind, counts in sorted(classes.items()):
            cells: list[Any] = [kind, figure(counts.get("total")), figure(counts.get("alive"))]
            if asleep:
                cells.append(Text(figure(counts.get("asleep", 0)), "dim"))
            cells.append(
                Text(figure(counts.get("crashed")), "red" if counts.get("crashed") else "")
            )
            if faults:
                cells += [figure(counts.get("failures", 0)), figure(counts.get("recoveries", 0))]
            if energy:
                cells.append(_energy(counts))
            table.add_row(*cells)
        sybils = status.get("sybils", {})
        pad = [""] * (len(columns) - 3 + energy)
        if sybils.get("reserved"):
            table.add_row(
                Text("sybil", "magenta"),
                figure(sybils.get("reserved")),
                figure(sybils.get("joined")),
                *pad,
            )
        if not status:
            alive = view.last.get("alive")
            table.add_row("all", figure(view.info.get("agents")), figure(alive), "-")
        return Group(table, _knobs(view, status))


def _energy(counts: dict[str, Any]) -> Text:
    """Battery left across the class, and how many devices ran flat."""
    left = counts.get("energy_left")
    if left is None:
        return Text("mains", "dim")
    text = Text(f"{left:.0%}", "green" if left > 0.5 else "yellow" if left > 0.2 else "red")
    if counts.get("depleted"):
        text.append(f" {counts['depleted']} flat", "red")
    return text


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
    goodput = status.get("goodput")
    if isinstance(goodput, int | float):  # a synchronous job's kept share of device time
        line.append(f"  goodput {goodput:.0%}", "green" if goodput > 0.8 else "yellow")
    return line
