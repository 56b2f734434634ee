"""One run of a scenario, its output files, and the clean run an attacked one is set beside.

The fleet builds the world and runs it; this module decides where its output goes and,
for a scenario with Sybils, runs the same scenario without them (embedded broker, same
seed) so that one summary shows what the attack cost.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from swarm import clock, workloads
from swarm.fleet import Fleet, RoundCallback
from swarm.scenario import Scenario, from_dict

__all__ = [
    "RunIncomplete",
    "compare_clean",
    "finish",
    "run_outputs",
    "run_scenario",
    "write_summary",
]


def run_scenario(
    scenario: Scenario,
    *,
    out_dir: Path | None = None,
    on_round: RoundCallback | None = None,
    broker_url: str | None = None,
    show: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run and write metrics.jsonl and summary.json to `out_dir` (when given).

    `show` gets the summary before summary.json is written, so that it is seen even when
    the disk is full; a failed write of any output file then raises its OSError.

    On the embedded broker (default) the run is in virtual time and deterministic; with
    `broker_url` (mqtt://host:port) every agent is an MQTT client and time is the wall
    clock's.
    """
    with run_outputs(out_dir) as (sink, events):
        fleet = Fleet(
            scenario,
            metrics_sink=sink,
            events_sink=events,
            on_round=on_round,
            broker_url=broker_url,
        )
        summary = clock.run(fleet.run(), virtual=broker_url is None)
    compare_clean(summary, scenario)
    finish(out_dir, summary, show, fleet.recorder.write_error)
    return summary


class RunIncomplete(RuntimeError):
    """The run ended early (e.g. the broker was gone too long); its summary says so."""


def finish(
    out_dir: Path | None,
    summary: dict[str, Any],
    show: Callable[[dict[str, Any]], None] | None,
    write_error: OSError | None,
) -> None:
    """Show the summary, then write it; raise the first error writing any output, then
    `RunIncomplete` if the run ended before its end."""
    if show is not None:
        show(summary)
    write_summary(out_dir, summary)
    if write_error is not None:
        raise write_error
    if summary.get("complete") is False:
        raise RunIncomplete(summary.get("incomplete", "the run ended before its end"))


def compare_clean(summary: dict[str, Any], scenario: Scenario) -> None:
    """Run `scenario` without Sybils (embedded, same seed) and add its figures."""
    if not scenario.sybil.count or not scenario.sybil.compare_clean:
        return
    data = scenario.to_dict()
    data["sybil"] = {**data["sybil"], "count": 0}
    clean = run_scenario(from_dict(data))["results"]
    attacked = summary["results"]
    keys = workloads.spec(scenario.fleet.workload).clean_keys
    block = {key: clean[key] for key in keys if key in clean}
    attack = attacked.setdefault("attack", {})
    attack["clean"] = block
    if "accuracy" in block:
        attack["accuracy_loss"] = block["accuracy"] - attacked["accuracy"]


@contextlib.contextmanager
def run_outputs(out_dir: Path | None) -> Iterator[tuple[TextIO | None, TextIO | None]]:
    """metrics.jsonl and events.jsonl in `out_dir` (None, None without one); always closed."""
    if out_dir is None:
        yield None, None
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        (out_dir / "metrics.jsonl").open("w", encoding="utf-8") as metrics,
        (out_dir / "events.jsonl").open("w", encoding="utf-8") as events,
    ):
        yield metrics, events


def write_summary(out_dir: Path | None, summary: dict[str, Any]) -> None:
    """summary.json, whole or not at all: written beside, then renamed over the old one."""
    if out_dir is None:
        return
    target = out_dir / "summary.json"
    partial = out_dir / ".summary.json.partial"
    try:
        partial.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(partial, target)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
