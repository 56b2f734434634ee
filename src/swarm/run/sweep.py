"""Sweeps: one scenario over a grid of keys, several seeds a point, in worker processes.

`plan` turns the command line's axes into jobs and builds every job's scenario before
anything runs, so a bad key or value is one error up front, not a failure an hour in.
`execute` runs the jobs (a pool of `jobs` processes), each into its own directory under
``runs/``; a job whose ``summary.json`` is already there is not run again, so a sweep
killed halfway and started again with the same command redoes only what had not
finished. `results.csv` has one row per run, `summary.csv` one per grid point with the
mean, standard deviation and 95% interval (Student's t) of every numeric result.

Run directories are named by a hash of what the run is (its keys and seed), not by its
place in the grid, so widening a grid keeps the runs already made.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import shutil
import signal
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarm.scenario import Scenario, ScenarioError, load, parse_value

__all__ = [
    "DEFAULT_MAX_RUNS",
    "ClusterError",
    "Job",
    "Plan",
    "SweepError",
    "execute",
    "flatten",
    "parse_axis",
    "plan",
    "plan_axes",
    "write_tables",
]

DEFAULT_MAX_RUNS = 1000  # a bigger sweep must be asked for (--yes)
CLUSTER_TIMEOUT_S = 10  # to reach the scheduler
MAX_JOBS = 256  # worker processes; each holds a whole fleet
POLL_S = 0.05  # how often the parent looks for finished runs
RUN_COLUMNS = ("run", "point", "seed", "status", "wall_time_s", "error")


class SweepError(ValueError):
    """The sweep as asked cannot be run; the message names what to change."""


@dataclass(frozen=True)
class Job:
    """One run: grid point `point` (0-based, in plan order), repeat `repeat`."""

    point: int
    repeat: int
    seed: int
    values: tuple[tuple[str, Any], ...]  # the varied keys, in axis order
    run_id: str


@dataclass(frozen=True)
class Plan:
    source: str  # a built-in name or a TOML path, as `swarm run` takes
    keys: tuple[str, ...]  # the varied keys, in axis order
    fixed: tuple[tuple[str, Any], ...]  # --set
    jobs: tuple[Job, ...]
    points: int
    scenarios: dict[str, Scenario] = field(default_factory=dict, compare=False, repr=False)

    def scenario(self, job: Job) -> Scenario:
        return self.scenarios[job.run_id]


# --------------------------------------------------------------------------- planning


def _split_values(text: str) -> list[str]:
    """Split on commas outside brackets, braces and quotes: `[1, 2],{a = 1}` is two."""
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_axis(text: str, option: str = "--grid") -> tuple[str, list[Any]]:
    """`section.key=V1,V2,...` -> (key, values); every value is TOML or a bare word."""
    if "=" not in text:
        raise SweepError(f"{option} {text!r}: expected section.key=V1,V2,...")
    key, raw = (part.strip() for part in text.split("=", 1))
    if key.count(".") != 1 or not all(key.split(".")):
        raise SweepError(f"{option} {text!r}: the key must be section.key, e.g. gossip.fanout")
    values = [] if not raw else [parse_value(v, f"{option} {key}") for v in _split_values(raw)]
    if not values or any(v == "" for v in values):
        raise SweepError(f"{option} {key}: give at least one value, and no empty ones")
    return key, values


def _run_id(values: Sequence[tuple[str, Any]], fixed: Sequence[tuple[str, Any]], seed: int) -> str:
    what = json.dumps([sorted(values), sorted(fixed), seed], sort_keys=True, default=str)
    return hashlib.sha256(what.encode()).hexdigest()[:16]


def plan(
    source: str,
    grids: Sequence[str] = (),
    zips: Sequence[str] = (),
    sets: Sequence[str] = (),
    *,
    repeat: int = 1,
    seed: int | None = None,
    max_runs: int = DEFAULT_MAX_RUNS,
) -> Plan:
    """The jobs of a sweep, each scenario built and checked. Seeds are `seed`, `seed` + 1,
    ... (`seed` defaults to the scenario's run.seed), the same at every grid point, so
    points differ only in what the grid changes."""
    fixed = [parse_axis(s, "--set") for s in sets]
    for key, values in fixed:
        if len(values) != 1:
            raise SweepError(f"--set {key}: one value (vary it with --grid)")
    return plan_axes(
        source,
        [parse_axis(g, "--grid") for g in grids],
        [parse_axis(z, "--zip") for z in zips],
        {key: values[0] for key, values in fixed},
        repeat=repeat,
        seed=seed,
        max_runs=max_runs,
    )


Axis = tuple[str, Sequence[Any]]


def plan_axes(
    source: str,
    axes: Sequence[Axis],
    zipped: Sequence[Axis] = (),
    fixed: Mapping[str, Any] | None = None,
    *,
    repeat: int = 1,
    seed: int | None = None,
    max_runs: int = DEFAULT_MAX_RUNS,
) -> Plan:
    """`plan` from values already parsed: (key, values) axes and fixed key -> value."""
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise SweepError(f"--repeat must be a whole number >= 1, got {repeat!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise SweepError(f"--seed must be a whole number >= 0, got {seed!r}")
    for key, values in [*axes, *zipped]:
        if isinstance(values, str) or not isinstance(values, Sequence) or not values:
            raise SweepError(f"{key}: give a non-empty list of values, got {values!r}")
    fixed = dict(fixed or {})
    keys = [k for k, _ in axes] + [k for k, _ in zipped]
    seen: set[str] = set()
    for key in [*keys, *fixed]:
        if key in seen:
            raise SweepError(f"{key} is given twice (in --grid, --zip or --set)")
        seen.add(key)
    if "run.seed" in seen:
        raise SweepError("run.seed is the sweep's own: use --seed and --repeat")
    lengths = {len(values) for _, values in zipped}
    if len(lengths) > 1:
        shown = ", ".join(f"{k} has {len(v)}" for k, v in zipped)
        raise SweepError(f"--zip keys vary together and need as many values each: {shown}")
    zip_rows: list[tuple[Any, ...]] = list(zip(*(v for _, v in zipped), strict=True)) or [()]
    points = [
        tuple(grid) + tuple(row)
        for grid in itertools.product(*(v for _, v in axes))
        for row in zip_rows
    ]
    total = len(points) * repeat
    if total > max_runs:
        raise SweepError(
            f"the sweep has {total} runs ({len(points)} points x {repeat} repeats), over the "
            f"limit of {max_runs}: pass --yes to run it anyway, or --max-runs N"
        )
    fixed_items = tuple(fixed.items())
    try:
        first = load(source, (), **dict(fixed_items))
    except ScenarioError as exc:
        raise SweepError(str(exc)) from None
    base_seed = first.run.seed if seed is None else seed
    jobs, scenarios = [], {}
    for index, point in enumerate(points):
        varied = tuple(zip(keys, point, strict=True))
        for r in range(repeat):
            run_seed = base_seed + r
            job = Job(index, r, run_seed, varied, _run_id(varied, fixed_items, run_seed))
            try:
                scenarios[job.run_id] = load(
                    source, (), **dict(fixed_items), **dict(varied), **{"run.seed": run_seed}
                )
            except ScenarioError as exc:
                shown = ", ".join(f"{k}={v!r}" for k, v in varied)
                raise SweepError(f"grid point {shown}: {exc}") from None
            jobs.append(job)
    return Plan(source, tuple(keys), fixed_items, tuple(jobs), len(points), scenarios)


# --------------------------------------------------------------------------- running


def _finished(run_dir: Path) -> dict[str, Any] | None:
    """The summary of a run that finished in `run_dir`, or None."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or "results" not in summary:
        return None
    # A run that was interrupted, or ended early, is not finished: it is run again.
    return summary if summary.get("complete") is not False else None


def _run_one(scenario: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """One run into `run_dir` (emptied first: a killed run leaves parts). The scenario
    travels as its plain data and is checked again where it runs."""
    from swarm.run.runner import run_scenario
    from swarm.scenario import from_dict

    shutil.rmtree(run_dir, ignore_errors=True)
    return run_scenario(from_dict(scenario), out_dir=Path(run_dir))


def _run_for_cluster(scenario: dict[str, Any]) -> dict[str, Any]:
    """A cluster worker's job: one run, its summary sent back (the worker may be on
    another machine, so the sweep writes the files it keeps itself)."""
    from swarm.run.runner import run_scenario
    from swarm.scenario import from_dict

    return run_scenario(from_dict(scenario))


def _worker_start() -> None:
    """A worker leaves Ctrl-C to the sweep, which then stops every worker at once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_in_worker(scenario: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """`_run_one` off the worker's main thread, so the run takes no signals of its own and
    a worker the sweep terminates (SIGTERM) stops at once instead of finishing the run."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(_run_one, scenario, run_dir).result()


Outcome = tuple[Job, dict[str, Any] | None, str]  # job, summary (None: failed), error


def execute(
    the_plan: Plan,
    out_dir: Path,
    *,
    jobs: int = 1,
    cluster: str | None = None,
    on_done: Callable[[Outcome, int, int], None] | None = None,
) -> list[Outcome]:
    """Run what has not finished yet; every job's outcome, in plan order. `on_done` gets
    each outcome as it comes, with the count done and the total (resumed ones first).

    `cluster` (tcp://HOST:PORT) sends the runs to a Dask distributed scheduler instead of
    local processes; a run keeps only its summary.json there (under ``runs/``, written
    here), since its worker may be on another machine."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise SweepError(f"--jobs must be between 1 and {MAX_JOBS}, got {jobs!r}")
    runs = out_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, Outcome] = {}
    todo: list[Job] = []
    total = len(the_plan.jobs)
    for job in the_plan.jobs:
        summary = _finished(runs / job.run_id)
        if summary is None:
            todo.append(job)
            continue
        outcomes[job.run_id] = (job, summary, "")
        if on_done is not None:
            on_done(outcomes[job.run_id], len(outcomes), total)

    from swarm.run.runner import RunInterrupted

    def record(job: Job, result: Callable[[], dict[str, Any]]) -> None:
        try:
            outcome: Outcome = (job, result(), "")
        except RunInterrupted:
            raise  # the operator stopped it: so is the sweep
        except Exception as exc:  # a failed run is recorded; the sweep goes on
            outcome = (job, None, f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
        outcomes[job.run_id] = outcome
        if on_done is not None:
            on_done(outcome, len(outcomes), total)

    def data(job: Job) -> dict[str, Any]:
        return the_plan.scenario(job).to_dict()

    if cluster is not None and todo:
        _on_cluster(cluster, todo, data, runs, record)
    elif jobs <= 1:
        for job in todo:
            record(job, functools.partial(_run_one, data(job), str(runs / job.run_id)))
    elif todo:
        jobs = min(jobs, len(todo))
        # Fresh interpreters, not forks: the parent has threads (the progress display).
        # Leaving the block for any reason (an interrupt, too) terminates the workers.
        with multiprocessing.get_context("spawn").Pool(jobs, _worker_start) as pool:
            pending = [
                (job, pool.apply_async(_run_in_worker, (data(job), str(runs / job.run_id))))
                for job in todo
            ]
            while pending:
                pending[0][1].wait(POLL_S)
                still = []
                for job, result in pending:
                    if result.ready():
                        record(job, result.get)
                    else:
                        still.append((job, result))
                pending = still
    return [outcomes[job.run_id] for job in the_plan.jobs]


class ClusterError(RuntimeError):
    """The Dask cluster cannot be reached or used (exit status 1: not the input's fault)."""


def _on_cluster(
    address: str,
    todo: Sequence[Job],
    data: Callable[[Job], dict[str, Any]],
    runs: Path,
    record: Callable[[Job, Callable[[], dict[str, Any]]], None],
) -> None:
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise ClusterError("--cluster needs Dask: pip install 'swarm-fleet[cluster]'") from None
    try:
        client = Client(address, timeout=CLUSTER_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    with client:
        futures = {
            client.submit(_run_for_cluster, data(job), key=f"swarm-run-{job.run_id}"): job
            for job in todo
        }
        for future in as_completed(futures):
            job = futures[future]

            def result(future: Any = future, job: Job = job) -> dict[str, Any]:
                summary: dict[str, Any] = future.result()
                run_dir = runs / job.run_id
                run_dir.mkdir(parents=True, exist_ok=True)
                from swarm.run.runner import write_summary

                write_summary(run_dir, summary)
                return summary

            record(job, result)


# --------------------------------------------------------------------------- tables


def flatten(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    """(dotted name, value) for every figure: nested tables become dotted names."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from flatten(f"{prefix}.{key}", item)
    else:
        yield prefix, value


def _cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return "" if value is None else value


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok and math.isfinite(value) else None


def _t975(df: int) -> float:
    """Student's t quantile for a two-sided 95% interval with `df` degrees of freedom."""
    from scipy.stats import t  # scikit-learn's own dependency; imported only here

    return float(t.ppf(0.975, df))


def write_tables(
    the_plan: Plan, outcomes: Sequence[Outcome], out_dir: Path
) -> list[dict[str, Any]]:
    """results.csv (a row per run) and summary.csv (a row per grid point); the rows of
    results.csv, values as the runs gave them (lists and maps as JSON text)."""
    rows: list[dict[str, Any]] = []
    for job, summary, error in outcomes:
        row: dict[str, Any] = {
            "run": job.run_id,
            "point": job.point,
            **{k: _cell(v) for k, v in job.values},
            "seed": job.seed,
            "status": "ok" if summary is not None else "failed",
            "wall_time_s": "" if summary is None else round(summary["wall_time"], 3),
            "error": error,
        }
        if summary is not None:
            row["rounds"] = summary["rounds"]
            row["complete"] = summary["complete"]
            row |= {k: _cell(v) for k, v in flatten("results", summary["results"])}
        rows.append(row)
    fixed = [*RUN_COLUMNS[:2], *the_plan.keys, *RUN_COLUMNS[2:], "rounds", "complete"]
    extra = sorted({k for row in rows for k in row} - set(fixed))
    _write_csv(out_dir / "results.csv", [*fixed, *extra], rows)

    figures = [k for k in extra if k != "wall_time_s"]
    summary_rows = []
    for point in range(the_plan.points):
        mine = [r for r in rows if r["point"] == point]
        if not mine:
            continue
        ok = [r for r in mine if r["status"] == "ok"]
        out: dict[str, Any] = {"point": point, **{k: mine[0][k] for k in the_plan.keys}}
        out |= {"runs": len(mine), "ok": len(ok)}
        for key in ["wall_time_s", *figures]:
            values = [v for v in (_number(r.get(key)) for r in ok) if v is not None]
            if not values:
                continue
            mean = statistics.fmean(values)
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            half = _t975(len(values) - 1) * sd / math.sqrt(len(values)) if len(values) > 1 else 0.0
            out |= {
                f"{key}.mean": mean,
                f"{key}.sd": sd,
                f"{key}.ci95_low": mean - half,
                f"{key}.ci95_high": mean + half,
            }
        summary_rows.append(out)
    head = ["point", *the_plan.keys, "runs", "ok"]
    columns = head + [k for k in dict.fromkeys(k for r in summary_rows for k in r) if k not in head]
    _write_csv(out_dir / "summary.csv", columns, summary_rows)
    return rows


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Write through a temporary file, so a crash leaves the old table or the new one."""
    partial = path.with_suffix(".csv.partial")
    with partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), restval="")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(partial, path)
