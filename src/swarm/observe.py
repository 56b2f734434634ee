"""Metrics rows and results, assembled from samples that add up across shards.

A process samples only its own agents: counts, sums and (count, mean, M2) moments,
never ratios. `merge_rows` and `results` turn one or many such samples into the rows of
metrics.jsonl and the summary's `results`, so one process and N shards report alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from swarm import laws
from swarm.metrics import MessageCounters, Moments
from swarm.scenario import Scenario

__all__ = ["merge_rows", "partial_results", "results", "sample"]

COUNTER_KEYS = tuple(MessageCounters().as_dict())


def sample(
    cores: Sequence[Any],
    *,
    round: int,
    period: float,
    aggregating: bool,
    rumor_id: int,
    counters: MessageCounters,
    alive: int,
    in_flight: int,
    workload: Any = None,
) -> dict[str, Any]:
    """What this process sees at the start of `round`, in additive form."""
    part: dict[str, Any] = {
        "round": round,
        "time": round * period,
        "n": len(cores),
        "alive": alive,
        **counters.as_dict(),
    }
    if workload is not None:
        return part | workload.sample()
    n = len(cores)
    if aggregating:
        estimates = np.fromiter((c.estimate for c in cores), float, n)
        mean = float(estimates.mean()) if n else 0.0
        part["moments"] = [n, mean, float(((estimates - mean) ** 2).sum())]
        part["mass"] = float(np.fromiter((c.mass for c in cores), float, n).sum())
        return part
    informed = 0
    for core in cores:
        learned = core.informed_round(rumor_id)
        if learned is not None and learned <= round:
            informed += 1
    part["informed"] = informed
    part["busy"] = in_flight > 0 or any(c.active for c in cores)
    return part


def merge_rows(parts: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """One metrics row from every process's sample of a round; and whether the run is done."""
    first = parts[0]
    row: dict[str, Any] = {"round": first["round"], "time": first["time"]}
    row["alive"] = sum(p["alive"] for p in parts)
    for key in COUNTER_KEYS:
        row[key] = sum(p[key] for p in parts)
    n = sum(p["n"] for p in parts)
    if "accuracy_sum" in first:
        from swarm.learn.workload import merge_sample

        return row | merge_sample(list(parts), n), False
    if "mesh_n" in first:
        from swarm import mesh_workload

        return row | mesh_workload.merge_sample(list(parts), n), False
    if "aware_sum" in first:
        from swarm import hazard_workload

        return row | hazard_workload.merge_sample(list(parts), n), False
    if "moments" in first:
        moments = Moments()
        for p in parts:
            moments = moments.merge(Moments(*p["moments"]))
        row["mean"] = moments.mean
        row["variance"] = moments.variance
        row["mass"] = float(sum(p["mass"] for p in parts))
        return row, False
    informed = sum(p["informed"] for p in parts)
    row["informed"] = informed
    row["informed_fraction"] = informed / n if n else 0.0
    quiet = not any(p["busy"] for p in parts)
    return row, informed == n or (first["round"] > 0 and quiet)


def partial_results(
    cores: Iterable[tuple[int, Any]],
    *,
    aggregating: bool,
    rumor_id: int,
    origin: int,
    workload: Any = None,
) -> dict[str, Any]:
    """The end-of-run figures of this process's agents (index, core), in additive form."""
    cores = list(cores)
    if workload is not None:
        return workload.partial_results()
    if aggregating:
        estimates = [float(c.estimate) for _, c in cores]
        return {
            "n": len(cores),
            "initial": float(np.sum([c.initial for _, c in cores])),
            "mass": float(np.sum([c.mass for _, c in cores])),
            "estimate_min": min(estimates, default=0.0),
            "estimate_max": max(estimates, default=0.0),
        }
    return {
        "n": len(cores),
        "learned": [
            r for i, c in cores if i != origin and (r := c.informed_round(rumor_id)) is not None
        ],
        "has_origin": any(i == origin for i, _ in cores),
        "rumor_messages": sum(c.rumor_messages for _, c in cores),
    }


def results(
    scenario: Scenario, parts: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The summary's `results` from every process's partial results and the merged rows."""
    out = _results(scenario, parts, rows)
    if scenario.sybil.count:
        from swarm.attack import attack_results

        end = (rows[-1]["round"] if rows else 0) * scenario.gossip.period
        out["attack"] = attack_results(scenario, [p["attack"] for p in parts], end)
    return out


def _results(
    scenario: Scenario, parts: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    n = scenario.fleet.count
    if scenario.fleet.workload == "learn":
        from swarm.learn import workload

        return workload.results(scenario, list(parts), rows[-1]["round"] if rows else 0)
    if scenario.fleet.workload == "mesh":
        from swarm import mesh_workload

        return mesh_workload.results(scenario, list(parts), rows[-1]["round"] if rows else 0)
    if scenario.fleet.workload == "hazards":
        from swarm import hazard_workload

        return hazard_workload.results(scenario, list(parts), rows[-1]["round"] if rows else 0)
    if scenario.aggregating:
        initial = sum(p["initial"] for p in parts)
        final = sum(p["mass"] for p in parts)  # after in-flight copies landed
        truth = initial / n
        lows = [p["estimate_min"] for p in parts if p["n"]]
        highs = [p["estimate_max"] for p in parts if p["n"]]
        return {
            "variance": [r["variance"] for r in rows],
            "mass_error": abs(final - initial) / abs(initial) if initial else abs(final),
            "true_mean": truth,
            "max_error": max(abs(min(lows) - truth), abs(max(highs) - truth)) if lows else None,
        }
    last_round = rows[-1]["round"] if rows else 0
    learned = [r for p in parts for r in p["learned"] if r <= last_round]
    # The origin knew from round 0 (if its process reported at all).
    informed = len(learned) + any(p["has_origin"] for p in parts)
    out: dict[str, Any] = {
        "residue": (n - informed) / n,
        "traffic": sum(p["rumor_messages"] for p in parts) / n,
        "t_ave": float(np.mean(learned)) if learned else None,
        "t_last": max(learned) if learned else None,
        "rounds_to_all": max(learned, default=0) if informed == n else None,
    }
    g, net = scenario.gossip, scenario.network
    if net.topology == "complete" and g.protocol == "push" and g.fanout == 1:
        out["predicted_rounds_to_all"] = laws.push_rounds_complete(n)
    if g.protocol == "rumor" and g.feedback and g.stop == "coin":
        out["predicted_residue"] = laws.rumor_residue_feedback_coin(g.k)
    return out
