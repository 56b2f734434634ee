"""Power: per region, the draw against its cap and the carbon it emits; batteries and sleep.

Shown for metered fleets (learning devices, hearables): the status carries `power` per
region (watts over the last round, the cap if any, grams of CO2e per hour, the grid's
intensity now) and, per class, the battery left and the devices asleep.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from swarm.tui.panels.base import Panel, figure
from swarm.tui.view import View


class PowerPanel(Panel):
    title = "Power"

    @classmethod
    def applies(cls, view: View) -> bool:
        return bool((view.status or {}).get("power"))

    def draw(self, view: View, width: int) -> Any:
        status = view.status or {}
        table = Table(box=None, expand=True, pad_edge=False, header_style="bold")
        for column in ("region", "draw", "cap", "gCO2e/h", "g/kWh"):
            table.add_column(column, justify="left" if column == "region" else "right")
        for region, entry in status.get("power", {}).items():
            watts, cap = entry.get("power_w"), entry.get("cap_w")
            drawn = Text(_watts(watts))
            if isinstance(cap, int | float) and isinstance(watts, int | float):
                drawn.stylize("red" if watts > cap else "yellow" if watts > 0.9 * cap else "")
            table.add_row(
                region,
                drawn,
                _watts(cap) if cap is not None else Text("none", "dim"),
                figure(entry.get("co2_g_per_h")),
                figure(entry.get("intensity")),
            )
        return Group(table, _batteries(status.get("classes", {})))


def _watts(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    for unit, scale in (("MW", 1e6), ("kW", 1e3), ("W", 1.0), ("mW", 1e-3)):
        if abs(value) >= scale or unit == "mW":
            return f"{value / scale:.3g} {unit}"
    return str(value)


def _batteries(classes: dict[str, Any]) -> Text:
    """Per battery class: charge left and devices asleep (mains classes say nothing)."""
    line = Text()
    for kind, counts in sorted(classes.items()):
        left = counts.get("energy_left")
        if left is None:
            continue
        colour = "green" if left > 0.5 else "yellow" if left > 0.2 else "red"
        line.append(f"{kind} ", "bold")
        line.append(f"{left:.0%}", colour)
        asleep = counts.get("asleep")
        if asleep:
            line.append(f" {figure(asleep)} asleep", "dim")
        resting = counts.get("resting")
        if resting:  # below their reserve ([battery] reserve)
            line.append(f" {figure(resting)} resting", "yellow")
        line.append("  ")
    return line
