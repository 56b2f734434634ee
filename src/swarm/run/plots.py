"""The drawing: PNG files from prepared numbers. The only module that imports matplotlib
(the optional extra `[plot]`), with its file-only backend so no screen is needed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display, and the same pixels everywhere

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from swarm.figures import Series

__all__ = ["bars", "curves", "histogram"]

SIZE = (7.0, 4.2)  # inches: 1050 x 630 pixels at DPI
DPI = 150
# Metadata matplotlib writes by default names its version and the time: left out, so the
# same run gives the same bytes.
METADATA = {"Software": None}


def _new(title: str, x_label: str, y_label: str) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI, layout="constrained")
    ax.set_title(title)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _save(fig: Figure, path: Path) -> None:
    try:
        fig.savefig(path, format="png", metadata=METADATA)
    finally:
        plt.close(fig)


def curves(
    path: Path,
    title: str,
    x_label: str,
    y_label: str,
    series: Sequence[Series],
    *,
    log_y: bool = False,
    points: bool = False,
    level: tuple[str, float] | None = None,
    ticks: Sequence[str] | None = None,
    log_x: bool = False,
    marks: Sequence[tuple[str, float]] = (),
) -> None:
    """Lines against x; `points` marks each x and draws `low..high` as error bars (a
    sweep's intervals) instead of a shaded band (a run's spread); `marks` are x values a
    law names (an optimum), drawn as vertical lines."""
    fig, ax = _new(title, x_label, y_label)
    for (label, x), style in zip(marks, ("--", ":", "-."), strict=False):
        ax.axvline(x, linestyle=style, color="0.45", label=label)
    for each in series:
        if each.expected:
            ax.plot(each.x, each.y, linestyle="--", color="0.3", label=each.label)
            continue
        if points and each.low is not None and each.high is not None:
            # An interval given on the wrong side of its mean is drawn as none.
            below = [max(0.0, m - lo) for m, lo in zip(each.y, each.low, strict=True)]
            above = [max(0.0, hi - m) for m, hi in zip(each.y, each.high, strict=True)]
            ax.errorbar(
                each.x, each.y, yerr=[below, above], marker="o", capsize=3, label=each.label
            )
            continue
        (line,) = ax.plot(each.x, each.y, marker="o" if points else None, label=each.label)
        if each.low is not None and each.high is not None:
            ax.fill_between(each.x, each.low, each.high, color=line.get_color(), alpha=0.2)
    if level is not None:
        ax.axhline(level[1], linestyle=":", color="0.2", label=level[0])
    if log_y:
        ax.set_yscale("log")
    if log_x:
        ax.set_xscale("log")
    elif ticks is not None:  # categories at 0, 1, 2, ...
        ax.set_xticks(range(len(ticks)), ticks)
    elif all(float(v).is_integer() for each in series for v in each.x if math.isfinite(v)):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds, counts: no 2.5
    ax.legend(loc="best", fontsize="small")
    _save(fig, path)


def bars(
    path: Path,
    title: str,
    x_label: str,
    y_label: str,
    categories: Sequence[str],
    measured: Sequence[float],
    expected: Sequence[float] | None = None,
) -> None:
    """Measured bars, with the expected value beside each where a law gives one."""
    fig, ax = _new(title, x_label, y_label)
    at = list(range(len(categories)))
    has_law = expected is not None and any(not math.isnan(v) for v in expected)
    width = 0.4 if has_law else 0.7
    left = [x - width / 2 for x in at] if has_law else at
    ax.bar(left, measured, width=width, label="measured")
    if has_law and expected is not None:
        ax.bar([x + width / 2 for x in at], expected, width=width, color="0.7", label="law")
        ax.legend(loc="best", fontsize="small")
    ax.set_xticks(at, categories, rotation=20 if len(categories) > 4 else 0)
    _save(fig, path)


def histogram(
    path: Path,
    title: str,
    x_label: str,
    values: Sequence[float],
    marks: Sequence[tuple[str, float]],
) -> None:
    """How many of `values` fall in each bin, with vertical lines at the marks."""
    fig, ax = _new(title, x_label, "count")
    ax.hist(values, bins=min(30, max(5, len(values) // 2)), color="C0", alpha=0.8)
    for i, (label, at) in enumerate(marks):
        ax.axvline(at, linestyle="--", color=f"C{i + 1}", label=label)
    if marks:
        ax.legend(loc="best", fontsize="small")
    _save(fig, path)
