"""Hazards: how aware the taxis near a hazard are, and the alarms that were false."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text

from swarm.tui import chart
from swarm.tui.panels.base import Panel, figure
from swarm.tui.view import View


class HazardsPanel(Panel):
    title = "Hazards"

    @classmethod
    def applies(cls, view: View) -> bool:
        return "hazards" in view.panels

    def draw(self, view: View, width: int) -> Any:
        aware = view.series("aware_fraction")
        plot = chart.render(
            [(aware, "●", "green")], width=width, height=self.chart_rows, lo=0.0, hi=1.0
        )
        last = view.last
        awareness = (view.status or {}).get("awareness") or {}
        share = view.info.get("share")
        lines = Text.assemble(
            ("● aware ", "green"),
            (figure(last.get("aware_fraction")), "bold"),
            (f"  active {figure(last.get('hazards_active'))}\n", ""),
            (f"{'time to ' + format(share, '.0%') if share else 'awareness'} ", ""),
            (_latency(awareness) + "\n", "bold"),
            (f"hazards reached {figure(awareness.get('reached'))}", ""),
            (f"  missed {figure(awareness.get('missed'))}\n", ""),
            ("false alarms ", ""),
            (figure(last.get("false_alarms_heard")), "red"),
            ("  fakes believed ", ""),
            (figure(last.get("fake_alarms_heard")), "magenta"),
            ("  missed ", ""),
            (figure(last.get("missed_decisions")), ""),
        )
        return Group(plot, lines)


def _latency(awareness: dict[str, Any]) -> str:
    """p50/p90/p99 in seconds, or '-' until a hazard has reached its share."""
    if awareness.get("p50") is None:
        return "p50 - p90 - p99 -"
    return " ".join(f"{k} {awareness[k]:.2g}s" for k in ("p50", "p90", "p99"))
