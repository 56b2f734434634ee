"""The gossip workload: agents spread one rumor, or average their values, by gossip."""

from __future__ import annotations

from swarm.workloads.base import WorkloadSpec

__all__ = ["SPEC"]

SPEC = WorkloadSpec(
    name="gossip",
    summary="spread a rumor or average values (gossip.protocol)",
    factory="swarm.workloads.gossip.workload:Gossip",
    kinds=(
        "push",
        "pull",
        "pull-reply",
        "exchange",
        "exchange-reply",
        "rumor",
        "feedback",
        "push-sum",
        "avg-offer",
        "avg-reply",
        "avg-busy",
    ),
    # The codes of swarm.protocols.gossip.dissemination and .aggregation, which own them.
    codes={
        "push": 10,
        "pull": 11,
        "pull-reply": 12,
        "exchange": 13,
        "exchange-reply": 14,
        "rumor": 15,
        "feedback": 16,
        "push-sum": 17,
        "avg-offer": 18,
        "avg-reply": 19,
        "avg-busy": 20,
    },
    behaviours=("flood", "eclipse"),
    panels=("gossip",),
    clean_keys=("residue", "t_last", "variance_final", "max_error"),
    label=lambda s: f"gossip ({s.gossip.protocol})",
)
