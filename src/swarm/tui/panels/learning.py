"""Learning: the fleet's mean accuracy and its spread, against the centralized baseline."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text

from swarm.tui import chart
from swarm.tui.panels.base import Panel, figure
from swarm.tui.view import View


class LearningPanel(Panel):
    title = "Learning"

    @classmethod
    def applies(cls, view: View) -> bool:
        return "learning" in view.panels

    def draw(self, view: View, width: int) -> Any:
        accuracy = view.series("accuracy")
        baseline = (view.status or {}).get("baseline_accuracy")
        series: list[chart.Series] = []
        if baseline is not None:
            series.append(([baseline] * max(1, len(accuracy)), "─", "yellow"))
        series.append((accuracy, "●", "green"))
        plot = chart.render(series, width=width, height=self.chart_rows, lo=0.0, hi=1.0)
        last = view.last
        legend = Text.assemble(
            ("● accuracy ", "green"),
            (figure(last.get("accuracy")), "bold"),
            (f" [{figure(last.get('accuracy_min'))}–{figure(last.get('accuracy_max'))}]", "dim"),
            ("  ─ baseline ", "yellow"),
            (figure(baseline), "bold"),
        )
        return Group(plot, legend)
