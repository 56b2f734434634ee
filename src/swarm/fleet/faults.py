"""Devices that fail on their own: a failure time per device, drawn from its class's MTBF.

`[faults] process` picks the law: exponential (memoryless, the usual model for a fleet of
independent parts) or Weibull with shape k and the same mean (k < 1: failures come early,
k > 1: wear-out). `faults.mtbf_scale` multiplies every class's `mtbf_s` so that a run of
minutes sees the failures of months. Every time is drawn once, at build, from the
scenario seed, one stream per agent: the same seed fails the same devices at the same
moments, in every process of a sharded run.

The fleet crashes a device at the first round boundary at or after its time, as a crash
control would (`reason` "fault"), and the summary compares the failures with the law.

Churn proper is two more draws per device: with `faults.session_s` a device leaves for
good after an exponential session (`reason` "left": no repair brings it back), and with
`faults.joining` a share of the devices is not there at round 0 and joins, fresh, at a
uniform moment of the run. Neither is a failure: `availability` counts failures only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from swarm import laws
from swarm.scenario import Scenario
from swarm.seeding import Stream, generator

__all__ = [
    "LEFT",
    "REASON",
    "active",
    "failure_times",
    "join_times",
    "lifetime",
    "partial",
    "repair_time",
    "results",
    "session_times",
]

REASON = "fault"  # the crash reason a failure records
LEFT = "left"  # the crash reason of a device that leaves for good


def active(scenario: Scenario) -> bool:
    """Whether devices come and go on their own in this scenario (failures or churn)."""
    faults = scenario.faults
    return faults.process != "none" or faults.session_s > 0 or faults.joining > 0


def _mtbf(scenario: Scenario, kind: str) -> float:
    return scenario.profiles()[kind].mtbf_s * scenario.faults.mtbf_scale


def failure_times(scenario: Scenario, kinds: Sequence[str]) -> np.ndarray:
    """Simulated second at which each of these devices fails (inf: never, or no process)."""
    times = np.full(len(kinds), math.inf)
    if scenario.faults.process == "none":
        return times
    for index, kind in enumerate(kinds):
        mtbf = _mtbf(scenario, kind)
        if not math.isinf(mtbf):
            times[index] = _life(scenario, mtbf, index)
    return times


def _life(scenario: Scenario, mean: float, *path: int) -> float:
    """One lifetime of this mean under `faults.process`, from stream (FAULTS, *path)."""
    rng = generator(scenario.run.seed, Stream.FAULTS, *path)
    if scenario.faults.process == "weibull":
        shape = scenario.faults.weibull_shape
        return float(laws.weibull_scale(mean, shape) * rng.weibull(shape))
    return float(rng.exponential(mean))


# The streams below FAULTS: (index) the first lifetime of each device, (_LIFE, index,
# episode) the lifetimes after repairs, (_REPAIR, index, episode) the repairs, (_SESSION,
# index, 0) how long it stays, (_JOIN, index, 0) whether and when it joins late.
_LIFE, _REPAIR, _SESSION, _JOIN = 0, 1, 2, 3


def session_times(scenario: Scenario, n: int) -> np.ndarray:
    """How long each device stays before it leaves for good (inf: it never leaves)."""
    mean = scenario.faults.session_s
    if mean <= 0:
        return np.full(n, math.inf)
    return np.array(
        [
            generator(scenario.run.seed, Stream.FAULTS, _SESSION, i, 0).exponential(mean)
            for i in range(n)
        ]
    )


def join_times(scenario: Scenario, n: int) -> dict[int, float]:
    """The devices that are not there at round 0, and the simulated second each joins:
    each is one with probability `faults.joining`, at a uniform moment of the run."""
    share = scenario.faults.joining
    if share <= 0:
        return {}
    span = scenario.max_rounds * scenario.gossip.period
    out = {}
    for i in range(n):
        rng = generator(scenario.run.seed, Stream.FAULTS, _JOIN, i, 0)
        late, at = rng.random() < share, rng.uniform(0.0, span)
        if late:
            out[i] = float(at)
    return out


def lifetime(scenario: Scenario, kind: str, index: int, episode: int) -> float:
    """How long a repaired device lives before its next failure (inf: never fails)."""
    mtbf = _mtbf(scenario, kind)
    return math.inf if math.isinf(mtbf) else _life(scenario, mtbf, _LIFE, index, episode)


def repair_time(scenario: Scenario, index: int, episode: int) -> float:
    """How long a failed device stays down: exponential, mean `faults.repair_s`."""
    rng = generator(scenario.run.seed, Stream.FAULTS, _REPAIR, index, episode)
    return float(rng.exponential(scenario.faults.repair_s))


def partial(
    episodes: Sequence[Sequence[float]],
    end: float,
    alive: int,
    *,
    departures: int = 0,
    arrivals: int = 0,
) -> dict[str, Any]:
    """This process's failures by `end`: how many, how many came back, the device-seconds
    they cost, and its honest devices up at the end (whatever else crashed them); with
    churn, the devices that left for good and those that joined late."""
    down = sum(min(back, end) - failed for _, failed, back in episodes if failed <= end)
    return {
        "failures": sum(1 for _, failed, _ in episodes if failed <= end),
        "recoveries": sum(1 for _, _, back in episodes if back <= end),
        "down_s": float(down),
        "alive": alive,
        "departures": departures,
        "arrivals": arrivals,
    }


def results(
    scenario: Scenario, kinds: Sequence[str], parts: Sequence[Mapping[str, Any]], end: float
) -> dict[str, Any]:
    """The summary's `reliability`: measured failures beside the law's expectation."""
    faults = scenario.faults
    n = len(kinds)
    shape = faults.weibull_shape if faults.process == "weibull" else 1.0
    failing = faults.process != "none"  # churn alone: devices come and go, none fails
    mtbfs = [_mtbf(scenario, kind) if failing else math.inf for kind in kinds]
    down = sum(p["down_s"] for p in parts)
    repair = faults.repair_s
    system_mtbf = laws.first_failure_mean(mtbfs, shape)
    cost = scenario.checkpoint.cost
    return {
        "process": faults.process,
        "mtbf_scale": faults.mtbf_scale,
        "repair_s": repair,
        "failures": sum(p["failures"] for p in parts),
        "recoveries": sum(p["recoveries"] for p in parts),
        # The law, for a fleet that nothing else crashes and nothing repairs: the sum of
        # P(failed by the end). With repairs a device may fail again: no closed form here.
        "expected_failures": None
        if repair > 0
        else math.fsum(laws.failure_probability(m, end, shape) for m in mtbfs),
        # The long-run share of time a repaired device is up: MTBF / (MTBF + MTTR).
        "steady_availability": math.fsum(
            m / (m + repair) if math.isfinite(m) else 1.0 for m in mtbfs
        )
        / n
        if repair > 0 and n
        else None,
        "alive_at_end": sum(p["alive"] for p in parts),  # 0: the whole fleet died
        # Mean time to the fleet's first failure (None: no class ever fails).
        "system_mtbf_s": system_mtbf,
        # The checkpoint interval that maximizes goodput for that MTBF and checkpoint.cost.
        "young_daly_interval": laws.young_interval(cost, system_mtbf) if system_mtbf else None,
        "daly_interval": laws.daly_interval(cost, system_mtbf) if system_mtbf else None,
        "availability": 1.0 - down / (n * end) if n and end > 0 else 1.0,
        "simulated_s": end,
    } | _churn(scenario, parts)


def _churn(scenario: Scenario, parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Departures for good and late arrivals, when the scenario has them."""
    faults = scenario.faults
    if faults.session_s <= 0 and faults.joining <= 0:
        return {}
    return {
        "session_s": faults.session_s,
        "departures": sum(p["departures"] for p in parts),
        "joining": faults.joining,
        "arrivals": sum(p["arrivals"] for p in parts),
    }
