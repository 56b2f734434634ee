"""Devices that fail on their own: a failure time per device, drawn from its class's MTBF.

`[faults] process` picks the law: exponential (memoryless, the usual model for a fleet of
independent parts) or Weibull with shape k and the same mean (k < 1: failures come early,
k > 1: wear-out). `faults.mtbf_scale` multiplies every class's `mtbf_s` so that a run of
minutes sees the failures of months. Every time is drawn once, at build, from the
scenario seed, one stream per agent: the same seed fails the same devices at the same
moments, in every process of a sharded run.

The fleet crashes a device at the first round boundary at or after its time, as a crash
control would (`reason` "fault"), and the summary compares the failures with the law.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from swarm import laws
from swarm.scenario import Scenario
from swarm.seeding import Stream, generator

__all__ = ["REASON", "failure_times", "partial", "results"]

REASON = "fault"  # the crash reason a failure records


def _mtbf(scenario: Scenario, kind: str) -> float:
    return scenario.profiles()[kind].mtbf_s * scenario.faults.mtbf_scale


def failure_times(scenario: Scenario, kinds: Sequence[str]) -> np.ndarray:
    """Simulated second at which each of these devices fails (inf: never, or no process)."""
    faults = scenario.faults
    times = np.full(len(kinds), math.inf)
    if faults.process == "none":
        return times
    for index, kind in enumerate(kinds):
        mtbf = _mtbf(scenario, kind)
        if math.isinf(mtbf):
            continue
        rng = generator(scenario.run.seed, Stream.FAULTS, index)
        if faults.process == "exponential":
            times[index] = rng.exponential(mtbf)
        else:
            shape = faults.weibull_shape
            times[index] = laws.weibull_scale(mtbf, shape) * rng.weibull(shape)
    return times


def partial(times: Mapping[int, float], end: float, alive: int) -> dict[str, Any]:
    """This process's failures by `end`: how many, the device-seconds they cost, and its
    honest devices alive at the end (whatever else crashed them)."""
    failed = [t for t in times.values() if t <= end]
    return {"failures": len(failed), "down_s": float(sum(end - t for t in failed)), "alive": alive}


def results(
    scenario: Scenario, kinds: Sequence[str], parts: Sequence[Mapping[str, Any]], end: float
) -> dict[str, Any]:
    """The summary's `reliability`: measured failures beside the law's expectation."""
    faults = scenario.faults
    n = len(kinds)
    shape = faults.weibull_shape if faults.process == "weibull" else 1.0
    mtbfs = [_mtbf(scenario, kind) for kind in kinds]
    down = sum(p["down_s"] for p in parts)
    return {
        "process": faults.process,
        "mtbf_scale": faults.mtbf_scale,
        "failures": sum(p["failures"] for p in parts),
        # The law, for a fleet that nothing else crashes: the sum of P(failed by the end).
        "expected_failures": math.fsum(laws.failure_probability(m, end, shape) for m in mtbfs),
        "alive_at_end": sum(p["alive"] for p in parts),  # 0: the whole fleet died
        # Mean time to the fleet's first failure (None: no class ever fails).
        "system_mtbf_s": laws.first_failure_mean(mtbfs, shape),
        "availability": 1.0 - down / (n * end) if n and end > 0 else 1.0,
        "simulated_s": end,
    }
