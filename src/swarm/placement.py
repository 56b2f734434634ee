"""Where the agents of a run are and what they are: classes, regions, positions and ids.

Every process of a run places the whole fleet from the seed, so shards agree on who is
where; Sybils come after the honest agents, placed from the attacker's own stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swarm.protocols.gossip.topology import Topology, TopologyError, build_topology
from swarm.protocols.sybil import Roster, eclipse
from swarm.scenario import Scenario, ScenarioError
from swarm.seeding import Stream, generator

__all__ = ["Placement", "agent_ids", "overlay", "place_agents"]


@dataclass(slots=True)
class Placement:
    """Where the agents are and what they are, by index."""

    kinds: list[str]
    regions: np.ndarray  # int region index per agent
    positions: np.ndarray  # (n, 2) km
    # How many times longer each agent computes than its class ([faults] stragglers); 1
    # for most. None: no stragglers.
    slowdown: np.ndarray | None = None


def place_agents(scenario: Scenario) -> Placement:
    """Classes by share (largest remainder), regions round-robin, positions around centres.

    Sybils (`sybil.count`) come after the honest agents, with kind "sybil": round-robin
    over the regions, or in the victim's region for an eclipse. Their positions come
    from the attacker's own stream, so adding Sybils moves no honest agent.
    """
    honest = _place_honest(scenario)
    count = scenario.sybil.count
    if count == 0:
        return honest
    fleet = scenario.fleet
    n_regions = len(fleet.regions)
    if scenario.sybil.behaviour == "eclipse":
        regions = np.full(count, honest.regions[scenario.sybil.victim])
    else:
        regions = np.arange(count) % n_regions
    rng = generator(scenario.run.seed, Stream.SYBIL, 0)
    centres = _centres(scenario)
    positions = centres[regions] + rng.normal(0.0, fleet.region_radius_km, size=(count, 2))
    slowdown = None
    if honest.slowdown is not None:
        slowdown = np.concatenate([honest.slowdown, np.ones(count)])
    return Placement(
        [*honest.kinds, *(["sybil"] * count)],
        np.concatenate([honest.regions, regions]),
        np.concatenate([honest.positions, positions]),
        slowdown,
    )


def _centres(scenario: Scenario) -> np.ndarray:
    fleet = scenario.fleet
    n_regions = len(fleet.regions)
    angles = 2 * np.pi * np.arange(n_regions) / n_regions
    radius = fleet.area_km / 2 if n_regions > 1 else 0.0
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def _place_honest(scenario: Scenario) -> Placement:
    fleet = scenario.fleet
    n = fleet.count
    shares = np.array(list(fleet.mix.values()), dtype=float)
    exact = shares / shares.sum() * n
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    kinds = [name for name, c in zip(fleet.mix, counts, strict=True) for _ in range(c)]
    regions = np.arange(n) % len(fleet.regions)
    centres = _centres(scenario)
    rng = generator(scenario.run.seed, Stream.PLACEMENT)
    positions = centres[regions] + rng.normal(0.0, fleet.region_radius_km, size=(n, 2))
    return Placement(kinds, regions, positions, _stragglers(scenario, n))


STRAGGLERS = 2**20  # the stream below FAULTS that picks the stragglers (far from agent ids)


def _stragglers(scenario: Scenario, n: int) -> np.ndarray | None:
    """`faults.stragglers` of the devices, drawn from the seed, `faults.slowdown` times
    slower; None when there are none (and nothing is drawn: other streams stay put)."""
    faults = scenario.faults
    count = round(faults.stragglers * n)
    if count == 0:
        return None
    slowdown = np.ones(n)
    rng = generator(scenario.run.seed, Stream.FAULTS, STRAGGLERS)
    slowdown[rng.choice(n, count, replace=False)] = faults.slowdown
    return slowdown


def agent_ids(n: int) -> list[str]:
    width = len(str(n - 1))
    return [f"a{i:0{width}d}" for i in range(n)]


def overlay(s: Scenario, placement: Placement, roster: Roster) -> Topology:
    """Who may talk to whom: the scenario's topology over the placed fleet, Sybils included.

    An eclipse rewires the victim's edges to the Sybils. A fanout larger than some
    agent's degree is a scenario error.
    """
    try:
        topology = build_topology(
            s.network.topology,
            roster.total,
            generator(s.run.seed, Stream.TOPOLOGY),
            degree=s.network.degree,
            rewire=s.network.rewire,
            positions=placement.positions,
            regions=placement.regions,
        )
    except TopologyError as exc:
        raise ScenarioError(f"network.topology = {s.network.topology!r}: {exc}") from None
    if s.sybil.count and s.sybil.behaviour == "eclipse":
        try:
            topology = eclipse(topology, s.sybil.victim, roster.sybils)
        except ValueError as exc:
            raise ScenarioError(str(exc)) from None
    if s.gossip.fanout > topology.min_degree:
        raise ScenarioError(
            f"gossip.fanout = {s.gossip.fanout}: larger than the {topology.min_degree} "
            f"neighbours some agents have on topology {s.network.topology!r}"
        )
    return topology
