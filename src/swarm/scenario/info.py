"""What a dashboard shows about a scenario before (and beside) its first status message."""

from __future__ import annotations

from typing import Any

from swarm import workloads
from swarm.protocols.consensus.aggregate import AGGREGATORS
from swarm.scenario import Scenario

__all__ = ["scenario_info"]


def scenario_info(scenario: Scenario) -> dict[str, Any]:
    """Names, sizes and rules of `scenario`; the workload adds its own and names its panels."""
    s = scenario
    spec = workloads.spec(s.fleet.workload)
    return {
        "name": s.run.name,
        "description": s.run.description,
        "agents": s.fleet.count,
        "workload": s.fleet.workload,
        "panels": list(spec.panels),
        "aggregating": s.aggregating,
        "protocol": s.gossip.protocol,
        "fanout": s.gossip.fanout,
        "period": s.gossip.period,
        "regions": list(s.fleet.regions),
        "classes": list(s.fleet.mix),
        "strategy": None,
        "aggregators": list(AGGREGATORS),
        "sybils": s.sybil.count,
        "voting": None,
        "quorum": None,
        "share": None,
    } | spec.info(s)
