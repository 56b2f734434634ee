"""The mesh workload: low-power hearables relay readings of a field over a duty-cycled mesh."""

from __future__ import annotations

from swarm.workloads.base import WorkloadSpec
from swarm.workloads.mesh.figures import FIGURES, HEADLINE
from swarm.workloads.mesh.section import MeshSection, check

__all__ = ["SPEC"]

SPEC = WorkloadSpec(
    name="mesh",
    summary="low-power devices relay readings of a field",
    factory="swarm.workloads.mesh.workload:Mesh",
    kinds=("mesh",),
    codes={"mesh": 50},
    section=MeshSection,
    check=check,
    label=lambda s: "mesh sensing",
    figures=FIGURES,
    headline=HEADLINE,
)
