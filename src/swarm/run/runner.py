"""One run of a scenario, its output files, and the clean run an attacked one is set beside.

The fleet builds the world and runs it; this module decides where its output goes and,
for a scenario with Sybils, runs the same scenario without them (embedded broker, same
seed) so that one summary shows what the attack cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TextIO, TypeVar

from swarm import clock, workloads
from swarm.fleet import Fleet, RoundCallback
from swarm.scenario import Scenario, from_dict

__all__ = [
    "RunIncomplete",
    "RunInterrupted",
    "compare_clean",
    "finish",
    "interruptible",
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
    variants: bool = True,
) -> dict[str, Any]:
    """Run and write metrics.jsonl and summary.json to `out_dir` (when given); with
    `variants`, also run the workload's variants of the scenario, for comparison.

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
        summary = clock.run(interruptible(fleet.interrupt, fleet.run()), virtual=broker_url is None)
    compare_clean(summary, scenario)
    if variants:
        compare_variants(summary, scenario)
    finish(out_dir, summary, show, fleet.recorder.write_error)
    return summary


class RunIncomplete(RuntimeError):
    """The run ended early (e.g. the broker was gone too long); its summary says so."""

    status = 1  # the process's exit status


class RunInterrupted(RunIncomplete):
    """SIGINT or SIGTERM ended the run; it still wrote what it had, marked incomplete."""

    def __init__(self, why: str, signum: int) -> None:
        super().__init__(why)
        self.status = 128 + signum  # what a shell expects of a process a signal ended


T = TypeVar("T")
INTERRUPTED_BY = "stopped by "  # how a summary's "incomplete" names a signal


async def interruptible(interrupt: Callable[[str], None], main: Coroutine[Any, Any, T]) -> T:
    """Await `main`; SIGINT or SIGTERM meanwhile calls `interrupt` so the run ends with
    its summary instead of a traceback. A second signal acts as if none were caught."""
    async with _signals(interrupt):
        return await main


@contextlib.asynccontextmanager
async def _signals(interrupt: Callable[[str], None]) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    caught = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may take signals
        return

    def on_signal(signum: signal.Signals) -> None:
        for each in caught:
            loop.remove_signal_handler(each)
        interrupt(INTERRUPTED_BY + signum.name)

    for each in caught:
        loop.add_signal_handler(each, on_signal, each)
    try:
        yield
    finally:
        for each in caught:
            loop.remove_signal_handler(each)


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
        why = str(summary.get("incomplete", "the run ended before its end"))
        for each in (signal.SIGINT, signal.SIGTERM):
            if why.startswith(INTERRUPTED_BY + each.name):
                raise RunInterrupted(why, each)
        raise RunIncomplete(why)


def _rerun(
    summary: dict[str, Any], scenario: Scenario, overrides: dict[str, Any], what: str
) -> dict[str, Any] | None:
    """The results of `scenario` with "section.key" `overrides` (embedded, same seed, no
    comparisons of its own); None, and the summary marked incomplete, if it was cut short
    (e.g. Ctrl-C during the comparison: the run itself is kept)."""
    data = scenario.to_dict()
    for dotted, value in overrides.items():
        section, key = dotted.split(".", 1)
        data[section] = {**data[section], key: value}
    try:
        return run_scenario(from_dict(data), variants=False)["results"]
    except RunIncomplete as exc:
        summary["complete"] = False
        summary["incomplete"] = f"{exc} ({what}, for comparison)"
        return None


def compare_clean(summary: dict[str, Any], scenario: Scenario) -> None:
    """Run `scenario` without Sybils (embedded, same seed) and add its figures."""
    if not scenario.sybil.count or not scenario.sybil.compare_clean:
        return
    # the same faults, but no Sybil to let in
    script = [e for e in scenario.faults.script if e.get("command") != "inject"]
    overrides = {"sybil.count": 0, "faults.script": script}
    clean = _rerun(summary, scenario, overrides, "the run without Sybils")
    if clean is None:
        return
    attacked = summary["results"]
    keys = workloads.spec(scenario.fleet.workload).clean_keys
    block = {key: clean[key] for key in keys if key in clean}
    attack = attacked.setdefault("attack", {})
    attack["clean"] = block
    if "accuracy" in block:
        attack["accuracy_loss"] = block["accuracy"] - attacked["accuracy"]


def compare_variants(summary: dict[str, Any], scenario: Scenario) -> None:
    """Run the workload's variants of `scenario` (embedded, same seed), and put what they
    measured beside the run's own: `results.variants.<label>`, with the carbon and the
    energy when the devices are metered, and the change of carbon."""
    spec = workloads.spec(scenario.fleet.workload)
    variants = spec.variants(scenario)
    if not variants:
        return
    results = summary["results"]
    found: dict[str, Any] = {}
    for label, overrides in variants.items():
        other = _rerun(summary, scenario, overrides, f"the variant {label!r}")
        if other is None:
            return
        entry = {key: other[key] for key in spec.variant_keys if key in other}
        mine_t, theirs_t = results.get("time_to_accuracy"), other.get("time_to_accuracy")
        if mine_t is not None and theirs_t is not None:  # how much later (or sooner) we got there
            entry["time_to_accuracy_change_s"] = mine_t - theirs_t
        if "energy" in other and "energy" in results:
            mine, theirs = results["energy"], other["energy"]
            entry |= {"co2_g": theirs["co2_g"], "energy_j": theirs["total_j"]}
            if theirs["co2_g"] > 0:
                entry["co2_change"] = mine["co2_g"] / theirs["co2_g"] - 1.0
        found[label] = entry
    results["variants"] = found


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
