"""The Sybil attacker: fake identities, when they join, and the attacks every workload shares.

An attacker with an identity budget of S (`sybil.count`) adds S agents to the fleet,
after the honest ones: indices n..n+S-1, ids `s000`, `s001`, ... On a real broker each is
its own MQTT client, so the broker sees S more devices. Creating an identity costs
`identity_cost` simulated seconds (the attacker makes them one after another from
`start`), and the fleet's admission control (`admission_rate`, a defense) lets at most
that many new identities per second in. `Roster` holds that schedule; it is computed
from the scenario alone, so every shard of a run agrees on who is in at which time.

Sybils collude: they share state (see `workloads/learn/poison.py` and
`workloads/hazards/attack.py` for the workload-specific behaviours). Two behaviours work
on any overlay and live here: `flood` (each Sybil sends `flood_rate` well-formed junk
messages per round) and `eclipse` (the victim's peer view holds only Sybils, which
swallow what it sends).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from swarm.protocols.gossip.core import Send
from swarm.protocols.gossip.topology import Topology, from_edges

if TYPE_CHECKING:  # a core reads the scenario's [sybil] section and never imports it
    from swarm.scenario import Scenario

__all__ = [
    "ECLIPSE_MAX_COMPLETE",
    "EclipseCore",
    "FloodCore",
    "JunkMaker",
    "Roster",
    "SybilCore",
    "eclipse",
    "sybil_ids",
]

# A complete overlay has n(n-1)/2 edges, each about 110 bytes at peak while the eclipsed
# graph is built; up to here (5 million edges) that stays well under a gigabyte.
ECLIPSE_MAX_COMPLETE = 3_000


def sybil_ids(count: int) -> list[str]:
    width = len(str(max(0, count - 1)))
    return [f"s{i:0{width}d}" for i in range(count)]


@dataclass
class Roster:
    """Who is honest, who is a Sybil, and when each Sybil is admitted to the fleet.

    Dormant Sybils (`sybil.dormant`) have no join time (infinity) until a live control
    admits them with `admit`.
    """

    honest: int
    join_times: list[float]  # admission time of Sybil k (index honest + k)

    @classmethod
    def of(cls, scenario: Scenario) -> Roster:
        s = scenario.sybil
        if s.dormant:
            return cls(scenario.fleet.count, [math.inf] * s.count)
        times: list[float] = []
        gap = 1.0 / s.admission_rate if s.admission_rate > 0 else 0.0
        last = -math.inf
        for k in range(s.count):
            created = s.start + (k + 1) * s.identity_cost
            last = max(created, last + gap)
            times.append(last)
        return cls(scenario.fleet.count, times)

    @property
    def count(self) -> int:
        return len(self.join_times)

    @property
    def total(self) -> int:
        return self.honest + self.count

    @property
    def sybils(self) -> range:
        return range(self.honest, self.total)

    def is_sybil(self, index: int) -> bool:
        return index >= self.honest

    def admitted(self, index: int, now: float) -> bool:
        """Honest agents are members from the start; a Sybil from its join time on."""
        return index < self.honest or now >= self.join_times[index - self.honest]

    def joined(self, now: float) -> int:
        """Sybils admitted by `now`."""
        return sum(t <= now for t in self.join_times)

    def dormant(self) -> int:
        """Sybils no one has admitted yet, nor ever will without `admit`."""
        return sum(math.isinf(t) for t in self.join_times)

    def admit(self, count: int, now: float) -> list[int]:
        """Admit up to `count` dormant Sybils from `now` on; their indices."""
        woken: list[int] = []
        for k, t in enumerate(self.join_times):
            if len(woken) == count:
                break
            if math.isinf(t):
                self.join_times[k] = now
                woken.append(self.honest + k)
        return woken


class SybilCore:
    """Base of every Sybil core: silent until admitted, then `act` and `hear`.

    Subclasses implement `act(round, rng)` and may override `hear(...)`; what a Sybil is
    sent after admission is counted in `received`.
    """

    def __init__(self, index: int, roster: Roster, period: float) -> None:
        self.index = index
        self.roster = roster
        self.period = period
        self.sent = 0
        self.received = 0

    @property
    def active(self) -> bool:
        return True

    def admitted(self, round: int) -> bool:
        return self.roster.admitted(self.index, round * self.period)

    def on_tick(self, round: int, rng: np.random.Generator) -> list[Send]:
        if not self.admitted(round):
            return []
        sends = self.act(round, rng)
        self.sent += len(sends)
        return sends

    def on_message(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        if not self.admitted(round):
            return []
        self.received += 1
        sends = self.hear(round, src, kind, body, rng)
        self.sent += len(sends)
        return sends

    def act(self, round: int, rng: np.random.Generator) -> list[Send]:
        raise NotImplementedError

    def hear(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        return []


class EclipseCore(SybilCore):
    """Surrounds its victim: takes everything it is sent and passes nothing on."""

    def act(self, round: int, rng: np.random.Generator) -> list[Send]:
        return []


JunkMaker = Callable[[int, np.random.Generator], tuple[str, Any]]


class FloodCore(SybilCore):
    """Sends `rate` well-formed junk messages per round to random honest agents."""

    def __init__(self, index: int, roster: Roster, period: float, rate: int, junk: JunkMaker):
        super().__init__(index, roster, period)
        self.rate = rate
        self.junk = junk

    def act(self, round: int, rng: np.random.Generator) -> list[Send]:
        targets = rng.integers(0, self.roster.honest, size=self.rate)
        sends: list[Send] = []
        for target in targets:
            kind, body = self.junk(round, rng)
            sends.append((int(target), kind, body))
        return sends


def eclipse(topology: Topology, victim: int, sybils: range) -> Topology:
    """`topology` with the victim's every edge replaced by edges to the Sybils.

    Raises ValueError when a complete overlay is too large to rewrite.
    """
    n = topology.n
    if topology.indices is None or topology.indptr is None:
        if n > ECLIPSE_MAX_COMPLETE:
            raise ValueError(
                f'sybil.behaviour = "eclipse" on a complete overlay of {n} agents: rewriting '
                f"it needs every edge; use at most {ECLIPSE_MAX_COMPLETE} agents or a sparse "
                f"network.topology"
            )
        u, v = np.triu_indices(n, 1)
    else:
        u = np.repeat(np.arange(n), np.diff(topology.indptr))
        v = topology.indices.astype(np.int64)
        keep = u < v
        u, v = u[keep], v[keep]
    keep = (u != victim) & (v != victim)
    sybil = np.fromiter(sybils, dtype=np.int64)
    u = np.concatenate([u[keep], np.full(sybil.size, victim)])
    v = np.concatenate([v[keep], sybil])
    return from_edges(f"{topology.name}+eclipse", n, u, v)
