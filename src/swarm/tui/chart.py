"""A line chart as text: measured series and predictions on one small grid (no textual).

Each series is drawn with its own glyph and style; where two series share a cell the
later one wins, so put the measurement last to keep it on top of its prediction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text

__all__ = ["Series", "render"]

Series = tuple[Sequence[float], str, str]  # values, glyph, rich style


def _scale(value: float, lo: float, hi: float, log: bool) -> float:
    if log:
        value, lo, hi = (math.log10(max(v, 1e-300)) for v in (value, lo, hi))
    return 0.0 if hi <= lo else (value - lo) / (hi - lo)


def render(
    series: Sequence[Series],
    *,
    width: int,
    height: int,
    lo: float | None = None,
    hi: float | None = None,
    log: bool = False,
) -> Text:
    """`height` lines of `width` cells; the last `width` points of each series."""
    width, height = max(4, width), max(2, height)
    points = [
        (list(v)[-width:], glyph, style)
        for v, glyph, style in series
        if v is not None and len(v) > 0
    ]
    finite = [x for v, _, _ in points for x in v if math.isfinite(x) and (x > 0 or not log)]
    if not finite:
        return Text("\n".join(" " * width for _ in range(height)), style="dim")
    lo = min(finite) if lo is None else lo
    hi = max(finite) if hi is None else hi
    grid: list[list[tuple[str, str]]] = [[(" ", "")] * width for _ in range(height)]
    for values, glyph, style in points:
        for x, value in enumerate(values):
            if not math.isfinite(value) or (log and value <= 0):
                continue
            y = round(_scale(min(max(value, lo), hi), lo, hi, log) * (height - 1))
            grid[height - 1 - y][x] = (glyph, style)
    text = Text()
    for i, line in enumerate(grid):
        for glyph, style in line:
            text.append(glyph, style)
        if i < height - 1:
            text.append("\n")
    return text
