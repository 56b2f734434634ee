"""`swarm.run` and `swarm.sweep`: a run or a sweep from Python, for notebooks.

Scenario keys are keyword arguments with a double underscore between section and key
(``gossip__fanout=3`` is ``gossip.fanout = 3``), since a dot cannot be in a name.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from swarm.scenario import Scenario, ScenarioError, load

__all__ = ["run", "sweep"]


def _keys(overrides: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in overrides.items():
        section, sep, key = name.partition("__")
        if not sep or not section or not key or "__" in key:
            raise ScenarioError(
                f"{name}=...: scenario keys are section__key, e.g. gossip__fanout=3"
            )
        out[f"{section}.{key}"] = value
    return out


def run(
    scenario: str | Path | Scenario = "fleet",
    *,
    seed: int | None = None,
    out_dir: str | Path | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Run a built-in name, a TOML path or a `Scenario` (embedded broker) and return its
    summary; `out_dir` also writes metrics.jsonl, events.jsonl and summary.json.

    >>> swarm.run("rumor", seed=7, gossip__k=3)["results"]["residue"]  # doctest: +SKIP
    """
    from swarm.run.runner import run_scenario

    keys = _keys(overrides)
    if seed is not None:
        keys["run.seed"] = seed
    if isinstance(scenario, Scenario):
        data = scenario.to_dict()
        for path, value in keys.items():
            section, key = path.split(".")
            data.setdefault(section, {})[key] = value
        from swarm.scenario import from_dict

        built = from_dict(data)
    else:
        built = load(str(scenario), (), **keys)
    return run_scenario(built, out_dir=None if out_dir is None else Path(out_dir))


def sweep(
    scenario: str | Path,
    grid: Mapping[str, Sequence[Any]],
    *,
    zip: Mapping[str, Sequence[Any]] | None = None,  # the CLI's word for it
    repeat: int = 1,
    seed: int | None = None,
    jobs: int = 1,
    out_dir: str | Path | None = None,
    max_runs: int | None = None,
    **fixed: Any,
) -> Any:
    """`swarm sweep` from Python: `grid` maps "section.key" to its values, `zip` the keys
    that vary together, `fixed` (section__key=value) what every run shares. Returns the
    rows of results.csv, as a pandas DataFrame when pandas is installed. Without
    `out_dir` the runs' files go to a temporary directory, removed afterwards."""
    from swarm.run.sweep import DEFAULT_MAX_RUNS, SweepError, execute, plan_axes, write_tables

    try:
        the_plan = plan_axes(
            str(scenario),
            list(grid.items()),
            list((zip or {}).items()),
            _keys(fixed),
            repeat=repeat,
            seed=seed,
            max_runs=DEFAULT_MAX_RUNS if max_runs is None else max_runs,
        )
    except SweepError as exc:
        raise ScenarioError(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="swarm-sweep-") as scratch:
        out = Path(scratch) if out_dir is None else Path(out_dir)
        rows = write_tables(the_plan, execute(the_plan, out, jobs=jobs), out)
    try:
        import pandas  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return rows
    return pandas.DataFrame(rows)
