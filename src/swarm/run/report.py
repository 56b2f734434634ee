"""`swarm report DIR`: a run's or a sweep's figures as PNG files, and report.md with tables.

What to draw comes from the workloads (`WorkloadSpec.figures`: one run's course;
`.headline`: the results a sweep compares across its grid). This module reads the output
directories and turns each declaration into numbers; `plots` draws them. A figure whose
data is absent is not drawn but named in the report, with the reason.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from swarm import workloads
from swarm.figures import Bars, Curves, Histogram, Series, lookup
from swarm.run.sweep import flatten

__all__ = ["Report", "ReportError", "brief", "report"]

# Results of the fleet itself (any workload), compared when a sweep has them.
FLEET_HEADLINE = ("reliability.failures", "reliability.availability", "reliability.goodput")
# Scenario keys whose best value a result predicts: a sweep across the key marks it.
OPTIMA = {
    "checkpoint.interval": ("reliability.young_daly_interval", "reliability.daly_interval"),
}
MAX_LINES = 8  # grid points drawn as lines in one figure; more would be unreadable
NAN = math.nan


class ReportError(ValueError):
    """The directory is not a run's or a sweep's output, or it cannot be read."""


@dataclass
class Report:
    """What `report` wrote: report.md, the figures (file, title) and what it left out."""

    markdown: Path
    drawn: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (figure, why)
    notes: list[str] = field(default_factory=list)
    heading: str = ""
    facts: list[tuple[str, Any]] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)


def report(source: Path, out_dir: Path | None = None) -> Report:
    """Draw the run or sweep in `source` into `out_dir` (default `source/report`)."""
    if not source.is_dir():
        raise ReportError(f"{source}: no such directory (give the --out of a run or sweep)")
    is_sweep = (source / "summary.csv").is_file()
    if not is_sweep and not (source / "summary.json").is_file():
        raise ReportError(
            f"{source}: neither a run (summary.json, from `swarm run --out`) "
            "nor a sweep (summary.csv, from `swarm sweep --out`)"
        )
    plots = _plots()
    out = source / "report" if out_dir is None else out_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"{out}: cannot create the report directory: {exc.strerror}") from None
    done = Report(markdown=out / "report.md")
    if is_sweep:
        _sweep(source, out, plots, done)
    else:
        _run(source, out, plots, done)
    done.markdown.write_text(_markdown(done), encoding="utf-8")
    return done


def _plots() -> ModuleType:
    try:
        from swarm.run import plots
    except ImportError as exc:
        raise ReportError(
            f"swarm report draws with matplotlib, which is not installed ({exc}): "
            "pip install 'swarm-fleet[plot]'"
        ) from None
    return plots


# --------------------------------------------------------------------------- reading


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"{path}: cannot read it: {exc.strerror}") from None
    except (ValueError, RecursionError) as exc:
        raise ReportError(f"{path}: not JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise ReportError(f"{path}: not a run summary (no results table)")
    if not isinstance(lookup(data, "scenario.fleet.workload"), str):
        raise ReportError(f"{path}: not a run summary (no scenario.fleet.workload)")
    return data


def _read_metrics(path: Path, done: Report) -> list[dict[str, Any]]:
    """The rows of metrics.jsonl; lines that are not JSON objects are counted and noted."""
    rows: list[dict[str, Any]] = []
    bad = 0
    try:
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                try:
                    row = json.loads(line)
                except (ValueError, RecursionError):
                    row = None
                if isinstance(row, dict):
                    rows.append(row)
                elif line.strip():
                    bad += 1
    except OSError as exc:
        done.notes.append(f"{path.name}: not read ({exc.strerror}); no course is drawn")
        return []
    if bad:
        done.notes.append(f"{path}: {bad} lines that are not JSON objects were left out")
    return rows


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            return list(reader.fieldnames or []), rows
    except OSError as exc:
        raise ReportError(f"{path}: cannot read it: {exc.strerror}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: not a CSV table ({exc})") from None


def _number(value: Any) -> float:
    """A finite number, or NaN for anything else (a missing value, text, a boolean)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return NAN
    if isinstance(value, bool) or not isinstance(value, int | float):
        return NAN
    try:
        return float(value) if math.isfinite(value) else NAN
    except OverflowError:  # an int beyond any float
        return NAN


def _count(value: Any) -> int:
    """A count cell of summary.csv (runs, ok); 0 when it is not a number."""
    number = _number(value)
    return 0 if math.isnan(number) else int(number)


def _increase(values: Sequence[float]) -> list[float]:
    """A running total's increase per row (the first row's is its own value)."""
    return [values[0], *(b - a for a, b in itertools.pairwise(values))]


# --------------------------------------------------------------------------- one run


def _spec(workload: str, done: Report) -> Any:
    try:
        return workloads.spec(workload)
    except workloads.UnknownWorkload as exc:
        done.notes.append(f"no figures of workload {workload!r}: {exc}")
        return None


def _run(source: Path, out: Path, plots: ModuleType, done: Report) -> None:
    summary = _read_json(source / "summary.json")
    scenario = summary["scenario"]
    rows = _read_metrics(source / "metrics.jsonl", done)
    workload = scenario["fleet"]["workload"]
    done.heading = f"Run `{lookup(scenario, 'run.name')}` ({workload})"
    done.facts = [
        ("description", lookup(scenario, "run.description")),
        ("directory", str(source)),
        ("seed", summary.get("seed")),
        ("agents", summary.get("agents")),
        ("rounds", summary.get("rounds")),
        ("simulated time (s)", summary.get("sim_time")),
        ("complete", summary.get("complete")),
    ]
    if summary.get("complete") is False:
        done.notes.append(f"the run did not finish: {summary.get('incomplete', 'no reason given')}")
    spec = _spec(workload, done)
    for figure in spec.figures if spec is not None else ():
        path = out / f"{figure.name}.png"
        if isinstance(figure, Curves):
            why = _attempt(_draw_course, figure, summary, rows, path, plots)
        elif isinstance(figure, Bars):
            why = _attempt(_draw_bars, figure, summary["results"], path, plots)
        else:
            why = _attempt(_draw_histogram, figure, summary["results"], path, plots)
        _record(done, figure.name, figure.title, path, why)
    results = [
        (k.removeprefix("results."), brief(v)) for k, v in flatten("results", summary["results"])
    ]
    done.tables.append(("Results", ["result", "value"], [list(r) for r in results]))


DRAW_ERRORS = (ValueError, ArithmeticError, TypeError, RuntimeError)


def _attempt(draw: Any, *args: Any) -> str | None:
    """Draw, or say why the data could not be drawn (values no axis can hold)."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # absurd values draw absurdly, silently
            return draw(*args)
    except DRAW_ERRORS as exc:
        return f"could not be drawn: {type(exc).__name__}: {exc}"


def _record(done: Report, name: str, title: str, path: Path, why: str | None) -> None:
    if why is None:
        done.drawn.append((path, title))
    else:
        done.skipped.append((name, why))


def _draw_course(
    figure: Curves,
    summary: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    path: Path,
    plots: ModuleType,
) -> str | None:
    if not rows:
        return "the run has no metrics.jsonl rows"
    x = [_number(row.get(figure.x)) for row in rows]
    series = []
    for line in figure.lines:
        y = [_number(row.get(line.column)) for row in rows]
        if all(math.isnan(v) for v in y):
            continue
        low = high = None
        if line.low is not None and line.high is not None:
            low = [_number(row.get(line.low)) for row in rows]
            high = [_number(row.get(line.high)) for row in rows]
        series.append(Series(line.label, x, _increase(y) if line.per_row else y, low, high))
    if not series:
        return "metrics.jsonl has no " + " or ".join(f"`{ln.column}`" for ln in figure.lines)
    if figure.law is not None:
        try:
            expected = figure.law(summary, rows)
        except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
            expected = None
            series.append(Series(f"{figure.law_label} (not drawn: {exc})", [], []))
        if expected is not None:
            n = min(len(expected), len(x))
            series.append(Series(figure.law_label, x[:n], list(expected)[:n], expected=True))
    level = None
    if figure.level is not None and not math.isnan(
        v := _number(lookup(summary["results"], figure.level))
    ):
        level = (figure.level_label, v)
    plots.curves(
        path, figure.title, figure.x_label, figure.y_label, series, log_y=figure.log_y, level=level
    )
    return None


def _draw_bars(
    figure: Bars, results: Mapping[str, Any], path: Path, plots: ModuleType
) -> str | None:
    names: list[str] = []
    measured: list[float] = []
    expected: list[float] = []
    if figure.source is not None:
        found = lookup(results, figure.source)
        if isinstance(found, Mapping):
            pairs = [(str(k), v) for k, v in found.items() if k not in figure.leave_out]
        elif isinstance(found, list):
            pairs = [(str(i), v) for i, v in enumerate(found)]
        else:
            return f"the results have no `{figure.source}`"
        for name, value in pairs:
            if not math.isnan(v := _number(value)):
                names.append(name)
                measured.append(v)
                expected.append(NAN)
    for bar in figure.bars:
        if not math.isnan(v := _number(lookup(results, bar.key))):
            names.append(bar.label)
            measured.append(v)
            expected.append(NAN if bar.law is None else _number(lookup(results, bar.law)))
    if not names:
        keys = [figure.source] if figure.source else [bar.key for bar in figure.bars]
        return "the results have no number at " + ", ".join(f"`{k}`" for k in keys)
    plots.bars(
        path, figure.title, figure.x_label, figure.y_label, names, measured, expected or None
    )
    return None


def _draw_histogram(
    figure: Histogram, results: Mapping[str, Any], path: Path, plots: ModuleType
) -> str | None:
    found = lookup(results, figure.source)
    values = [
        v for v in map(_number, found if isinstance(found, list) else []) if not math.isnan(v)
    ]
    if not values:
        return f"the results have no values in `{figure.source}`"
    marks = [
        (mark.label, v)
        for mark in figure.marks
        if not math.isnan(v := _number(lookup(results, mark.key)))
    ]
    plots.histogram(path, figure.title, figure.x_label, values, marks)
    return None


# --------------------------------------------------------------------------- a sweep


@dataclass
class _Grid:
    keys: list[str]  # the varied scenario keys
    points: list[dict[str, str]]  # summary.csv rows
    runs: dict[str, list[Path]]  # point -> its finished runs' directories


def _sweep(source: Path, out: Path, plots: ModuleType, done: Report) -> None:
    columns, points = _read_csv(source / "summary.csv")
    if not columns or columns[0] != "point" or "runs" not in columns:
        raise ReportError(
            f"{source / 'summary.csv'}: not a sweep's summary (no point and runs columns)"
        )
    grid = _Grid(columns[1 : columns.index("runs")], points, _runs(source, done))
    done.heading = f"Sweep in `{source}`"
    done.facts = [
        ("varied", ", ".join(grid.keys) or "only the seed"),
        ("grid points", len(points)),
        ("runs", sum(_count(p.get("runs")) for p in points)),
        ("failed runs", sum(_count(p.get("runs")) - _count(p.get("ok")) for p in points)),
    ]
    spec, summary = _sweep_workload(grid, done)
    if summary is not None:
        done.heading = f"Sweep of `{lookup(summary, 'scenario.run.name')}` in `{source}`"
    headline = _headline(columns, spec)
    if spec is not None:
        done.skipped += [
            (f"sweep-{key.replace('.', '-')}", f"no run gave a number for `{key}`")
            for key in spec.headline
            if key not in headline
        ]
    for key in headline:
        name = "sweep-" + key.replace(".", "-")
        path = out / f"{name}.png"
        _record(
            done,
            name,
            f"{key} across the grid",
            path,
            _attempt(_draw_across, key, grid, columns, path, plots),
        )
    for figure in spec.figures if spec is not None else ():
        if isinstance(figure, Curves):
            path = out / f"{figure.name}.png"
            why = _attempt(_draw_courses, figure, grid, summary, path, plots, done)
            _record(done, figure.name, figure.title, path, why)
    head = [*grid.keys, "runs", "ok", *headline]
    table = [
        [p.get(k, "") for k in grid.keys]
        + [p.get("runs", ""), p.get("ok", "")]
        + [_interval(p, f"results.{key}") for key in headline]
        for p in points
    ]
    done.tables.append(("Results by grid point (mean [95% interval])", head, table))


def _runs(source: Path, done: Report) -> dict[str, list[Path]]:
    """Each grid point's finished runs, from results.csv."""
    try:
        _, rows = _read_csv(source / "results.csv")
    except ReportError as exc:
        done.notes.append(f"{exc}; the runs' courses are not drawn")
        return {}
    runs: dict[str, list[Path]] = {}
    for row in rows:
        name = row.get("run") or ""
        if row.get("status") != "ok" or not name:
            continue
        if Path(name).name != name or name in (".", ".."):  # not a run id: stay in the sweep
            done.notes.append(f"results.csv: run {name!r} is not a run id; left out")
            continue
        runs.setdefault(row.get("point", ""), []).append(source / "runs" / name)
    return runs


def _sweep_workload(grid: _Grid, done: Report) -> tuple[Any, dict[str, Any] | None]:
    """The workload's spec and one run's summary (for the laws), from the first run found."""
    for directory in (d for ds in grid.runs.values() for d in ds):
        try:
            summary = _read_json(directory / "summary.json")
        except ReportError:
            continue
        return _spec(summary["scenario"]["fleet"]["workload"], done), summary
    done.notes.append("no run's summary.json was found: the results compared are every column")
    return None, None


def _headline(columns: Sequence[str], spec: Any) -> list[str]:
    present = [
        c.removeprefix("results.").removesuffix(".mean")
        for c in columns
        if c.startswith("results.") and c.endswith(".mean")
    ]
    if spec is None:
        return [c for c in present if not c.startswith("predicted_")]
    return [key for key in (*spec.headline, *FLEET_HEADLINE) if key in present]


def _interval(point: Mapping[str, str], column: str) -> str:
    mean = _number(point.get(f"{column}.mean"))
    if math.isnan(mean):
        return "—"
    low, high = _number(point.get(f"{column}.ci95_low")), _number(point.get(f"{column}.ci95_high"))
    if math.isnan(low) or low == high:
        return brief(mean)
    return f"{brief(mean)} [{brief(low)}, {brief(high)}]"


def _axis(grid: _Grid) -> tuple[str, bool]:
    """The key on the x axis: the first varied one with numbers, else the first one."""
    for key in grid.keys:
        values = {p.get(key, "") for p in grid.points}
        if len(values) > 1 and not any(math.isnan(_number(v)) for v in values):
            return key, True
    return grid.keys[0], False


def _groups(grid: _Grid, x_key: str) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """The grid points by the values of the keys other than `x_key`, labelled by them.
    A key that `x_key` decides (zipped with it) is not one more way to group."""
    others = [k for k in grid.keys if k != x_key and not _decided(grid.points, x_key, k)]
    groups: dict[tuple[str, ...], list[dict[str, str]]] = {}
    for point in grid.points:
        groups.setdefault(tuple(point.get(k, "") for k in others), []).append(point)
    for values, points in groups.items():
        label = ", ".join(
            f"{k.rpartition('.')[2]}={v}" for k, v in zip(others, values, strict=True)
        )
        yield label or "mean", points


def _decided(points: Sequence[Mapping[str, str]], by: str, key: str) -> bool:
    seen: dict[str, str] = {}
    return all(seen.setdefault(p.get(by, ""), p.get(key, "")) == p.get(key, "") for p in points)


def _draw_across(
    key: str, grid: _Grid, columns: Sequence[str], path: Path, plots: ModuleType
) -> str | None:
    if not grid.keys:
        return "only seeds were varied: there is nothing to draw across"
    x_key, numeric = _axis(grid)
    ticks = list(dict.fromkeys(p.get(x_key, "") for p in grid.points))
    groups = list(_groups(grid, x_key))
    if len(groups) > MAX_LINES:
        return f"{len(groups)} combinations of the other keys: too many lines for one figure"
    column = f"results.{key}"
    # The law's prediction of this result, if the runs give one: predicted_<key>, or
    # expected_<leaf> beside it (reliability.failures -> reliability.expected_failures).
    parent, _, leaf = key.rpartition(".")
    laws_named = [f"results.predicted_{key}.mean", f"results.{parent}.expected_{leaf}.mean"]
    law = next((c for c in laws_named if c in columns), laws_named[0])
    series = []
    for label, points in groups:
        points = sorted(
            points, key=lambda p: _number(p[x_key]) if numeric else ticks.index(p[x_key])
        )
        x = [_number(p[x_key]) if numeric else float(ticks.index(p[x_key])) for p in points]
        y = [_number(p.get(f"{column}.mean")) for p in points]
        if all(math.isnan(v) for v in y):
            continue
        low = [_number(p.get(f"{column}.ci95_low")) for p in points]
        high = [_number(p.get(f"{column}.ci95_high")) for p in points]
        series.append(Series(label, x, y, low, high))
        if law in columns:
            expected = [_number(p.get(law)) for p in points]
            if not any(e.expected and list(e.y) == expected for e in series):
                name = "predicted" if label == "mean" else f"predicted ({label})"
                series.append(Series(name, x, expected, expected=True))
    if not series:
        return f"no run gave a number for `{key}`"
    plots.curves(
        path,
        f"{key} against {x_key}",
        x_key,
        f"{key} (mean, 95% interval)",
        series,
        points=True,
        ticks=None if numeric else ticks,
        log_x=numeric and _decades(series),
        marks=_optima(x_key, grid, columns) if numeric else [],
    )
    return None


def _optima(x_key: str, grid: _Grid, columns: Sequence[str]) -> list[tuple[str, float]]:
    """The values of `x_key` the runs' laws call best (`OPTIMA`), where all points agree."""
    marks = []
    for name in OPTIMA.get(x_key, ()):
        column = f"results.{name}.mean"
        values = {_number(p.get(column)) for p in grid.points} if column in columns else set()
        if len(values) == 1 and math.isfinite(value := values.pop()):
            marks.append((f"{name.rpartition('.')[2]} = {value:.3g}", value))
    return marks


def _decades(series: Sequence[Series]) -> bool:
    """Whether x spans two decades or more, all positive: a log axis reads better."""
    xs = [v for each in series for v in each.x if math.isfinite(v)]
    return bool(xs) and min(xs) > 0 and max(xs) / min(xs) >= 100


def _draw_courses(
    figure: Curves,
    grid: _Grid,
    summary: Mapping[str, Any] | None,
    path: Path,
    plots: ModuleType,
    done: Report,
) -> str | None:
    """The figure's first line for each grid point, averaged over its seeds row by row."""
    line = figure.lines[0]
    if len(grid.points) > MAX_LINES:
        return f"{len(grid.points)} grid points: too many courses for one figure"
    series = []
    for point in grid.points:
        courses, axes = [], []
        for directory in grid.runs.get(point.get("point", ""), []):
            rows = _read_metrics(directory / "metrics.jsonl", done)
            y = [_number(row.get(line.column)) for row in rows]
            if y and not all(math.isnan(v) for v in y):
                courses.append(_increase(y) if line.per_row else y)
                axes.append([_number(row.get(figure.x)) for row in rows])
        if not courses:
            continue
        # The point's own x (its rounds or seconds: grid points may differ in period),
        # from its longest run; row numbers where that column is missing.
        x = max(axes, key=len)
        if any(math.isnan(v) for v in x):
            x = [float(i) for i in range(len(x))]
        # A run that stopped early stays where it ended (and sends nothing more), so
        # the mean does not jump when the seeds that ran longest are all that is left.
        length = max(map(len, courses))
        padded = [c + [0.0 if line.per_row else c[-1]] * (length - len(c)) for c in courses]
        mean = []
        for i in range(length):
            values = [c[i] for c in padded if not math.isnan(c[i])]
            mean.append(sum(values) / len(values) if values else NAN)
        label = ", ".join(f"{k.rpartition('.')[2]}={point.get(k, '')}" for k in grid.keys)
        series.append(Series(label or "mean", x, mean))
    if not series:
        return f"no run's metrics.jsonl has `{line.column}`"
    x_label = figure.x_label
    title = f"{figure.title} (mean over seeds)"
    plots.curves(path, title, x_label, figure.y_label, series, log_y=figure.log_y)
    return None


# --------------------------------------------------------------------------- report.md


def brief(value: Any) -> str:
    """A figure in a table cell: four significant digits, long lists shortened."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        if len(value) > 4:
            return f"[{brief(value[0])}, {brief(value[1])}, …, {brief(value[-1])}] ({len(value)})"
        return "[" + ", ".join(brief(v) for v in value) + "]"
    return "—" if value is None else str(value)


def _cell(value: Any) -> str:
    return brief(value).replace("|", "\\|").replace("\n", " ")


def _markdown(done: Report) -> str:
    lines = [f"# {done.heading}", ""]
    lines += ["| | |", "|---|---|"]
    lines += [f"| {name} | {_cell(value)} |" for name, value in done.facts]
    lines.append("")
    if done.notes:
        lines += [f"> {note}" for note in done.notes] + [""]
    for path, title in done.drawn:
        lines += [f"## {title}", "", f"![{title}]({path.name})", ""]
    for title, head, rows in done.tables:
        lines += [f"## {title}", "", "| " + " | ".join(head) + " |"]
        lines.append("|" + "---|" * len(head))
        lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
        lines.append("")
    if done.skipped:
        lines += ["## Not drawn", ""]
        lines += [f"- `{name}`: {why}" for name, why in done.skipped]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
