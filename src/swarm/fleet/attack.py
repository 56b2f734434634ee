"""What a Sybil attack did: the `attack` block of a run's results.

Each process reports its Sybils' traffic and, through its workload, what the defenses
saw (`attack_partial`); `attack_results` merges the processes' reports into one block
with the attacker's budget, who got in, detection precision and recall for defenses that
name identities, and the victim's fate in an eclipse. `compare_clean` runs the same
scenario without Sybils (embedded broker, same seed) and puts its figures beside the
attacked ones, so one summary shows what the attack cost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from swarm.protocols.sybil import Roster
from swarm.scenario import Scenario
from swarm.workloads.base import Partial

__all__ = ["attack_partial", "attack_results"]


def attack_partial(roster: Roster, sybils: Iterable[Any], workload: Partial) -> Partial:
    """This process's share of the attack figures: its Sybils' traffic, who joined when,
    and what the workload's defenses saw (`workload`)."""
    cores = list(sybils)
    return {
        "sent": sum(c.sent for c in cores),
        "received": sum(c.received for c in cores),
        # Live `inject` controls admit dormant Sybils: the roster, not the scenario, knows.
        "join_times": [t if math.isfinite(t) else None for t in roster.join_times],
        **workload,
    }


def attack_results(
    scenario: Scenario, parts: Sequence[dict[str, Any]], end_time: float
) -> dict[str, Any]:
    """The merged `attack` block (`parts`: every process's `attack_partial`).

    `end_time` is the time of the last metrics row, a round in which nobody acted any
    more: what happened strictly before it counts.
    """
    s = scenario.sybil
    roster = Roster.of(scenario)
    live = next((p["join_times"] for p in parts if "join_times" in p), None)
    if live is not None:
        roster.join_times = [math.inf if t is None else t for t in live]
    joins = sorted(t for t in roster.join_times if math.isfinite(t))
    out: dict[str, Any] = {
        "behaviour": s.behaviour,
        "sybils": s.count,
        "admitted": sum(t < end_time for t in roster.join_times),
        "first_join": joins[0] if joins else None,
        "last_join": joins[-1] if joins else None,
        "sybil_messages_sent": sum(p["sent"] for p in parts),
        "sybil_messages_received": sum(p["received"] for p in parts),
    }
    for key in ("victim_accuracy", "victim_informed_round"):
        found = [p[key] for p in parts if key in p]
        if found:
            out[key] = found[0]
    flags = [p for p in parts if p.get("flags")]
    if flags:
        flagged = {i for p in flags for i in p["flagged"]}
        sybils = {i for i in roster.sybils if roster.join_times[i - roster.honest] < end_time}
        hits = len(flagged & sybils)
        out["detection"] = {
            "flagged": len(flagged),
            "flagged_sybils": hits,
            "precision": hits / len(flagged) if flagged else None,
            "recall": hits / len(sybils) if sybils else None,
        }
    if s.behaviour == "fake-hazard":
        # One fake at start, start + interval, ...: those before the last round acted.
        made = max(0, math.ceil((end_time - s.start) / s.interval))
        believed = sum(p.get("fake_alarms_heard", 0) for p in parts)
        out["fake_hazards"] = made
        out["fake_alarms_believed"] = believed
        out["believed_per_fake"] = believed / made if made else None
    for key in ("refused", "ignored", "targeted_sum", "targeted_count"):
        if any(key in p for p in parts):
            out[key] = sum(p.get(key, 0) for p in parts)
    if "targeted_count" in out:
        count = out.pop("targeted_count")
        total = out.pop("targeted_sum")
        out["targeted_misclassification"] = total / count if count else None
        out["source_class"], out["target_class"] = s.source_class, s.target_class
    return out
