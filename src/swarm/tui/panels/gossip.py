"""Gossip: informed fraction (or estimate variance) per round, with the law beside it."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text

from swarm import laws
from swarm.tui import chart
from swarm.tui.panels.base import Panel, figure
from swarm.tui.view import View


class GossipPanel(Panel):
    title = "Gossip"

    @classmethod
    def applies(cls, view: View) -> bool:
        return "gossip" in view.panels

    def draw(self, view: View, width: int) -> Any:
        status = view.status or {}
        fanout = int(status.get("fanout") or view.info.get("fanout") or 1)
        n = int(status.get("agents") or view.info.get("agents") or 1)
        variance = view.series("variance")
        if variance:
            law = laws.averaging_variance_curve(variance[0], len(variance) - 1)
            plot = chart.render(
                [(law, "·", "yellow"), (variance, "●", "green")],
                width=width,
                height=self.chart_rows,
                log=True,
            )
            legend = Text.assemble(
                ("● variance ", "green"),
                (figure(variance[-1]), "bold"),
                ("  · push-pull law ×0.30/round", "yellow"),
            )
            return Group(plot, legend)
        informed = view.series("informed_fraction")
        law = laws.push_informed_curve(n, fanout, max(0, len(informed) - 1))
        plot = chart.render(
            [(law, "·", "yellow"), (informed, "●", "green")],
            width=width,
            height=self.chart_rows,
            lo=0.0,
            hi=1.0,
        )
        now = informed[-1] if informed else None
        legend = Text.assemble(
            ("● informed ", "green"),
            (figure(now), "bold"),
            (f"  · mean-field push, fanout {fanout}", "yellow"),
        )
        return Group(plot, legend)
