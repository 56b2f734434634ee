"""The [hazards] section: the taxis' city, their sensors, and when they believe a peer."""

from __future__ import annotations

from dataclasses import dataclass

from swarm.scenario.schema import rule

__all__ = ["VOTING_RULES", "HazardsSection"]

VOTING_RULES = ("any", "quorum", "majority")


@dataclass(frozen=True)
class HazardsSection:
    size_m: float = rule(5000.0, "side of the square city", above=0.0)
    hazard_rate: float = rule(0.05, "new hazards per second over the city", above=0.0)
    hazard_lifetime: float = rule(600.0, "mean seconds a hazard lasts", above=0.0)
    sensing_range_m: float = rule(150.0, "how far a taxi's sensors see", above=0.0)
    speed_mps: float = rule(10.0, "taxi speed", min=0.0)
    sensor_noise: float = rule(0.5, "standard deviation of a reading's noise", above=0.0)
    false_reading_rate: float = rule(0.002, "spurious readings per taxi-second", min=0.0)
    radius_m: float = rule(
        1000.0, "awareness: taxis this close to a hazard should learn it", above=0.0
    )
    share: float = rule(0.9, "awareness: share of nearby taxis that must know", above=0.0, max=1.0)
    budget_ms: float = rule(10.0, "safety-loop budget per decision", above=0.0)
    voting: str = rule(
        "any",
        "when a taxi believes a peer's report: any (the first), quorum (from `quorum` "
        "distinct reporters), majority (quorum, and more yes than no votes)",
        choices=VOTING_RULES,
    )
    quorum: int = rule(2, "voting: distinct reporters needed (quorum and majority)", min=1)
