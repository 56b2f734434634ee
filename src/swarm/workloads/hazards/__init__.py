"""The hazards workload: taxis sense a shared city, judge readings and warn nearby taxis.

The city and its taxis (`city`), the judges and awareness tracking (`awareness`), the
taxis' cores and the fleet workload (`workload`) and the attackers (`attack`).
"""

from __future__ import annotations

from swarm.workloads.base import WorkloadSpec
from swarm.workloads.hazards.figures import FIGURES, HEADLINE
from swarm.workloads.hazards.section import HazardsSection

__all__ = ["SPEC"]

SPEC = WorkloadSpec(
    name="hazards",
    summary="taxis sense a city and warn each other of hazards",
    factory="swarm.workloads.hazards.workload:Hazards",
    kinds=("hazard",),
    codes={"hazard": 40},
    behaviours=("fake-hazard", "suppress", "flood"),
    section=HazardsSection,
    panels=("hazards", "consensus"),
    mark="warned",
    clean_keys=("false_alarms_heard", "reached_fraction", "awareness_latency"),
    info=lambda s: {
        "voting": s.hazards.voting,
        "quorum": s.hazards.quorum,
        "share": s.hazards.share,
    },
    figures=FIGURES,
    headline=HEADLINE,
)
