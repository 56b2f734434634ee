"""The learning workload: devices train a model together (gossip, FedAvg, all-reduce).

Datasets, learners, update compression, the strategies' cores, the robust FedAvg server
and the poisoning Sybils live here; `workload.Learning` puts them together for a fleet.
"""

from __future__ import annotations

from swarm.workloads.base import WorkloadSpec
from swarm.workloads.learn.figures import FIGURES, HEADLINE
from swarm.workloads.learn.section import LearnSection, check

__all__ = ["SPEC"]

SPEC = WorkloadSpec(
    name="learn",
    summary="train a model together (learn.strategy)",
    factory="swarm.workloads.learn.workload:Learning",
    kinds=("model", "fit", "update", "chunk", "beat", "state"),
    codes={"model": 30, "fit": 31, "update": 32, "chunk": 33, "beat": 34, "state": 35},
    behaviours=("sign-flip", "scale", "shift", "label-flip", "flood", "eclipse"),
    section=LearnSection,
    check=check,
    panels=("learning",),
    clean_keys=("accuracy", "accuracy_spread"),
    variants=lambda s: (
        {"random": {"learn.selection": "random"}}
        if s.learn.strategy == "fedavg"
        and s.learn.selection != "random"
        and s.learn.compare_selection
        else {}
    ),
    variant_keys=("accuracy", "global_accuracy", "time_to_accuracy"),
    label=lambda s: f"learn ({s.learn.strategy} on {s.learn.dataset})",
    info=lambda s: {"strategy": s.learn.strategy},
    figures=FIGURES,
    headline=HEADLINE,
)
