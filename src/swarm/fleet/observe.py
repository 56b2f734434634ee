"""Metrics rows and results, assembled from samples that add up across shards.

A process samples only its own agents: counts, sums and (count, mean, M2) moments,
never ratios. `merge_rows` and `results` turn one or many such samples into the rows of
metrics.jsonl and the summary's `results`, so one process and N shards report alike.
The fleet's own columns (round, time, alive, message counters) are merged here; the
workload merges its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from swarm import workloads
from swarm.devices import ledger
from swarm.devices.grid import Grid
from swarm.fleet import detection, faults
from swarm.fleet.attack import attack_results
from swarm.metrics import MessageCounters
from swarm.placement import place_agents
from swarm.scenario import Scenario
from swarm.workloads.base import Part, Partial, Results, Row

__all__ = ["COUNTER_KEYS", "fleet_part", "gap_events", "merge_rows", "missing_rounds", "results"]

COUNTER_KEYS = tuple(MessageCounters().as_dict())


def fleet_part(*, round: int, period: float, n: int, alive: int, counters: MessageCounters) -> Part:
    """The fleet's own columns of this process's sample of `round`, in additive form."""
    return {"round": round, "time": round * period, "n": n, "alive": alive, **counters.as_dict()}


def merge_rows(scenario: Scenario, parts: Sequence[Part]) -> tuple[Row, bool]:
    """One metrics row from every process's sample of a round; and whether the run is done."""
    first = parts[0]
    row: dict[str, Any] = {"round": first["round"], "time": first["time"]}
    row["alive"] = sum(p["alive"] for p in parts)
    for key in COUNTER_KEYS:
        row[key] = sum(p[key] for p in parts)
    n = sum(p["n"] for p in parts)
    columns, done = workloads.load(scenario.fleet.workload).merge(parts, n)
    power: dict[str, float] = {}
    for part in parts:  # capped regions' draw, over every process
        for region, watts in part.get("power_w", {}).items():
            power[region] = power.get(region, 0.0) + watts
    if any("power_w" in p for p in parts):
        columns = columns | {"power_w": power}
    return row | columns, done


def results(scenario: Scenario, parts: Sequence[Partial], rows: Sequence[Row]) -> Results:
    """The summary's `results` from every process's partial results and the merged rows."""
    out = workloads.load(scenario.fleet.workload).results(scenario, parts, rows)
    ledgers = [p["ledger"] for p in parts if "ledger" in p]
    if ledgers:
        grid = Grid.of(scenario.fleet.regions, scenario.grid)
        out["energy"] = ledger.merge(ledgers, grid, scenario.fleet.regions)
    if faults.active(scenario):
        end = (rows[-1]["round"] if rows else 0) * scenario.gossip.period
        kinds = place_agents(scenario).kinds[: scenario.fleet.count]
        found = faults.results(
            scenario, kinds, [p["reliability"] for p in parts if "reliability" in p], end
        )
        out["reliability"] = _with_job(found, out.get("reliability", {}))
    if scenario.faults.detection != "none":
        found = detection.results(
            scenario, scenario.fleet.count, [p["detection"] for p in parts if "detection" in p]
        )
        out.setdefault("reliability", {})["detection"] = found
    if scenario.sybil.count:
        end = (rows[-1]["round"] if rows else 0) * scenario.gossip.period
        out["attack"] = attack_results(scenario, [p["attack"] for p in parts], end)
    return out


def _with_job(fleet: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """The fleet's failures, then the workload's own figures (a job's goodput), with the
    optimal checkpoint intervals next to the interval the job used and its goodput."""
    optima = {k: fleet.pop(k) for k in ("young_daly_interval", "daly_interval") if k in fleet}
    if "checkpoint_interval" not in job:
        return fleet | optima
    return fleet | {"checkpoint_interval": job.pop("checkpoint_interval")} | optima | job


def missing_rounds(rows: Sequence[Row]) -> list[list[int]]:
    """Rounds absent from the recorded rows (0 to the last one), as [first, last] ranges.

    On a real broker a row can be lost (the broker restarted while it was in flight);
    the summary states the gap instead of leaving it silent.
    """
    gaps: list[list[int]] = []
    expected = 0
    for row in rows:
        round = row["round"]
        if round > expected:
            gaps.append([expected, round - 1])
        expected = max(expected, round + 1)
    return gaps


def gap_events(gaps: Sequence[Sequence[int]]) -> list[dict[str, Any]]:
    """One `gap` event per run of missing rounds, for events.jsonl."""
    return [
        {"event": "gap", "first": first, "last": last, "rounds": last - first + 1}
        for first, last in gaps
    ]
