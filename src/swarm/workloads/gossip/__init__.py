"""The gossip workload: agents spread one rumor, or average their values, by gossip."""

from __future__ import annotations

from swarm.protocols.gossip import aggregation, dissemination
from swarm.workloads.base import WorkloadSpec
from swarm.workloads.gossip.figures import FIGURES, HEADLINE

__all__ = ["SPEC"]

SPEC = WorkloadSpec(
    name="gossip",
    summary="spread a rumor or average values (gossip.protocol)",
    factory="swarm.workloads.gossip.workload:Gossip",
    # The protocol modules own their kinds and codes; scenarios import them anyway.
    kinds=(*dissemination.CODES, *aggregation.CODES),
    codes={**dissemination.CODES, **aggregation.CODES},
    behaviours=("flood", "eclipse"),
    panels=("gossip",),
    mark="informed",
    clean_keys=("residue", "t_last", "variance_final", "max_error"),
    label=lambda s: f"gossip ({s.gossip.protocol})",
    figures=FIGURES,
    headline=HEADLINE,
)
