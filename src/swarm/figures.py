"""What a report draws, declared as data by the workloads that own the figures.

A workload names the questions a reader asks of one of its runs (`WorkloadSpec.figures`)
and the results a sweep compares across its grid (`WorkloadSpec.headline`); `swarm
report` draws them. Declaring them as plain data keeps matplotlib out of every run and
out of every workload: only the report's drawing module imports it, and a fifth workload
gets its pictures by declaring them, with no change to the report.

Every key is a dotted path: `accuracy` is a metrics.jsonl column or a top-level result,
`awareness_latency.p90` a nested one (`lookup`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Bar",
    "Bars",
    "Curves",
    "Figure",
    "Histogram",
    "Law",
    "Line",
    "Series",
    "lookup",
]

# The expected value for each metrics row, given the run's summary and its rows; None
# when the law does not apply to this run (another protocol, say).
Law = Callable[[Mapping[str, Any], Sequence[Mapping[str, Any]]], Sequence[float] | None]


@dataclass(frozen=True, slots=True)
class Line:
    """One metrics column drawn against rounds or time."""

    column: str
    label: str
    per_row: bool = False  # the column is a running total: draw its increase per row
    low: str | None = None  # columns of a shaded band around the line (e.g. min and max)
    high: str | None = None


@dataclass(frozen=True, slots=True)
class Curves:
    """A run's course: metrics columns against rounds (or simulated time)."""

    name: str  # the PNG's file stem
    title: str  # the question the figure answers
    y_label: str  # with its unit
    lines: tuple[Line, ...]
    x: str = "round"
    x_label: str = "round"
    log_y: bool = False
    law: Law | None = None  # an analytic curve drawn dashed beside the measurement
    law_label: str = ""
    level: str | None = None  # a result drawn as a horizontal line (e.g. a baseline)
    level_label: str = ""


@dataclass(frozen=True, slots=True)
class Bar:
    """One measured result, and the result that predicts it (if any)."""

    label: str
    key: str
    law: str | None = None


@dataclass(frozen=True, slots=True)
class Bars:
    """Results side by side: the `bars` named, or every number in the map or list at
    `source` (its keys or positions become the categories)."""

    name: str
    title: str
    y_label: str
    x_label: str
    bars: tuple[Bar, ...] = ()
    source: str | None = None
    leave_out: tuple[str, ...] = ()  # keys of `source` that are not categories (a total)


@dataclass(frozen=True, slots=True)
class Histogram:
    """The distribution of a list of numbers in the results, with marked quantiles."""

    name: str
    title: str
    x_label: str
    source: str  # a result that is a list of numbers
    marks: tuple[Bar, ...] = ()  # results drawn as vertical lines (p50, p90, ...)


Figure = Curves | Bars | Histogram


@dataclass(frozen=True, slots=True)
class Series:
    """What a report hands the drawing: one labelled line of numbers (NaN: no value)."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    low: Sequence[float] | None = None  # a band (a run's worst to best) or an interval
    high: Sequence[float] | None = None
    expected: bool = False  # an analytic prediction, drawn dashed


def lookup(data: Mapping[str, Any], key: str) -> Any:
    """The value at dotted `key` in nested maps, or None when any step is missing."""
    value: Any = data
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value
