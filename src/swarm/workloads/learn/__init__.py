"""The learning workload: devices train a model together (gossip, FedAvg, all-reduce).

Datasets, learners, update compression, the strategies' cores, the robust FedAvg server
and the poisoning Sybils live here; `workload.Learning` puts them together for a fleet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from swarm.workloads.base import WorkloadSpec
from swarm.workloads.learn.figures import FIGURES, HEADLINE
from swarm.workloads.learn.section import LearnSection, check

if TYPE_CHECKING:
    from swarm.scenario import Scenario

__all__ = ["SPEC"]


def variants(s: Scenario) -> dict[str, dict[str, Any]]:
    """The runs a learning summary puts beside its own: random client selection for a
    FedAvg server that selects otherwise; the same run without its regions' power caps."""
    out: dict[str, dict[str, Any]] = {}
    learn = s.learn
    if learn.strategy == "fedavg" and learn.selection != "random" and learn.compare_selection:
        out["random"] = {"learn.selection": "random"}
    if s.grid.cap_w:
        out["uncapped"] = {"grid.cap_w": {}}
    return out


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
    variants=variants,
    variant_keys=("accuracy", "global_accuracy", "time_to_accuracy", "allreduce"),
    label=lambda s: f"learn ({s.learn.strategy} on {s.learn.dataset})",
    info=lambda s: {"strategy": s.learn.strategy},
    figures=FIGURES,
    headline=HEADLINE,
)
