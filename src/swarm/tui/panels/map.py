"""Map: every device where it is, coloured by its state (informed, asleep, crashed, Sybil).

Drawn with half blocks: each terminal cell holds two pixels, its foreground the upper
one and its background the lower, so pixels are about square and need nothing beyond
rich's styles. Where agents share a pixel, a crash wins, then a Sybil, then whichever
other state is rarest in the fleet: the first informed devices show while a rumor
starts, and the last uninformed ones while it ends.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import numpy as np
from rich.console import Group
from rich.style import Style
from rich.text import Text

from swarm import workloads
from swarm.fleet import fleetmap
from swarm.tui.panels.base import Panel, figure
from swarm.tui.view import View

__all__ = ["MapPanel", "render"]

COLOURS = {
    "x": "red",
    "s": "magenta",
    "*": "green",
    "z": "blue",
    ".": "grey62",
    "-": "grey35",
}
ALARMS = ("s", "x")  # always on top, in this order


def _ranks(states: str) -> dict[str, int]:
    """Higher wins a shared pixel: the alarms, then the rarer a state the higher."""
    counts = Counter(states)
    calm = sorted((s for s in COLOURS if s not in ALARMS), key=lambda s: -counts.get(s, 0))
    return {state: rank for rank, state in enumerate([*calm, *ALARMS])}


class MapPanel(Panel):
    title = "Map"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._drawn: tuple[Any, ...] | None = None  # (map, width, rows) last drawn

    @classmethod
    def applies(cls, view: View) -> bool:
        return "map" in (view.status or {})

    def show(self, view: View) -> None:
        """Redraw only when a new map arrived or the panel changed size: the dashboard
        ticks four times a second, a fleet sends its map twice."""
        drawn = ((view.status or {}).get("map"), self.content_size.width, self.chart_rows)
        last = self._drawn
        if last is not None and drawn[0] is last[0] and drawn[1:] == last[1:]:
            return
        self._drawn = drawn
        super().show(view)

    def draw(self, view: View, width: int) -> Any:
        points, states = fleetmap.decode((view.status or {})["map"])
        rows = max(4, self.chart_rows + 2)
        return Group(render(points, states, width, rows), _legend(view, states))


def render(points: np.ndarray, states: str, width: int, rows: int) -> Text:
    """`rows` lines of `width` cells: the points fitted to 2 x `rows` pixel rows, keeping
    their aspect ratio, centred."""
    height = 2 * rows
    grid = np.full((height, width), -1, dtype=np.int8)
    palette: list[str] = []
    if len(points):
        low, high = points.min(axis=0), points.max(axis=0)
        span = np.where(high > low, high - low, 1.0)
        scale = min((width - 1) / span[0], (height - 1) / span[1])
        used = span * scale
        offset = ((width - 1 - used[0]) / 2, (height - 1 - used[1]) / 2)
        cols = np.rint((points[:, 0] - low[0]) * scale + offset[0]).astype(int)
        # North up: larger y is higher on the screen.
        lines = np.rint((high[1] - points[:, 1]) * scale + offset[1]).astype(int)
        rank = _ranks(states)
        ranks = np.array([rank.get(s, 0) for s in states], dtype=np.int8)
        np.maximum.at(grid, (np.clip(lines, 0, height - 1), np.clip(cols, 0, width - 1)), ranks)
        palette = [COLOURS[s] for s in sorted(rank, key=rank.__getitem__)]
    cells = {(-1, -1): (" ", Style())}
    for top, colour in enumerate(palette):
        cells[(top, -1)] = ("▀", Style(color=colour))
        cells[(-1, top)] = ("▄", Style(color=colour))
        for bottom, under in enumerate(palette):
            cells[(top, bottom)] = ("▀", Style(color=colour, bgcolor=under))
    text = Text()
    for row in range(rows):
        pairs = zip(grid[2 * row].tolist(), grid[2 * row + 1].tolist(), strict=True)
        for pair, run in itertools.groupby(pairs):  # one span per run of equal cells
            glyph, style = cells[pair]
            text.append(glyph * sum(1 for _ in run), style)
        if row < rows - 1:
            text.append("\n")
    return text


def _legend(view: View, states: str) -> Text:
    counts = Counter(states)
    mark = "marked"
    if view.workload in workloads.names():
        mark = workloads.spec(view.workload).mark or mark
    names = {**fleetmap.STATES, "*": mark}
    if mark != "marked":
        names["."] = f"not {mark}"
    legend = Text()
    for state in COLOURS:
        if counts.get(state):
            legend.append("■ ", COLOURS[state])
            legend.append(f"{names[state]} {figure(counts[state])}  ")
    return legend
