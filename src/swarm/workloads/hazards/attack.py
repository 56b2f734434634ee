"""Sybils in the hazards workload: made-up hazards, suppressed ones, and floods of reports.

The attacker watches the same city the taxis drive (every process builds it from the
seed) and knows the taxis' judge (white box: the model is the fleet's own), so it can
make a report look like a real reading or like nothing at all:

- `fake-hazard`: every `sybil.interval` seconds the attacker picks a spot; each Sybil
  warns the taxis within `hazards.radius_m` of it with the embedding of a convincing
  hazard reading. With `hazards.voting = "any"` one Sybil is enough; `quorum` needs
  `hazards.quorum` distinct reporters, so fewer Sybils than that cannot get a fake
  believed (the attacker then needs more identities, which admission control slows).
- `suppress`: when a real hazard appears, each Sybil tells the taxis around it that
  there is nothing there (the embedding of a spurious reading): "no" votes, which only
  `majority` voting counts, and where they outvote honest reporters.
- `flood`: each Sybil sends `sybil.flood_rate` reports per round at random spots with
  random embeddings and no hops left, loading every receiver's judge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swarm.protocols.gossip.core import Send
from swarm.protocols.sybil import Roster, SybilCore
from swarm.scenario import Scenario
from swarm.seeding import Stream, generator
from swarm.workloads.hazards.awareness import HazardModel
from swarm.workloads.hazards.city import City, CityConfig, Taxis, sample_features

__all__ = ["FAKE_TAG", "HazardAttacker", "HazardSybil"]

FAKE_TAG = -2  # ground-truth tag of a made-up report (measurement only)
SPURIOUS_TAG = -1


@dataclass
class HazardAttacker:
    """The colluding Sybils' shared view: fake spots, and hazards already suppressed."""

    scenario: Scenario
    config: CityConfig
    city: City
    taxis: Taxis
    model: HazardModel
    roster: Roster
    kind: str = "hazard"
    fakes: list[tuple[int, float, float]] = field(default_factory=list)  # (round, x, y)
    _rng: np.random.Generator | None = None

    def __post_init__(self) -> None:
        self._rng = generator(self.scenario.run.seed, Stream.SYBIL, 3)

    def fakes_due(self, round: int) -> list[tuple[float, float]]:
        """Spots faked in `round`: a new one every `interval` seconds from `start`."""
        s, period = self.scenario.sybil, self.scenario.gossip.period
        now = round * period
        count = 0 if now < s.start else int((now - s.start) // s.interval) + 1
        assert self._rng is not None
        while len(self.fakes) < count:
            x, y = self._rng.uniform(0.0, self.config.size_m, size=2)
            self.fakes.append((round, float(x), float(y)))
        return [(x, y) for r, x, y in self.fakes if r == round]

    def embedding(self, rng: np.random.Generator, real: bool) -> np.ndarray:
        kind = int(rng.integers(4)) if real else -1
        return self.model.embed(sample_features(self.config, rng, np.array([kind])))[0]

    def audience(self, x: float, y: float) -> np.ndarray:
        return self.taxis.within(x, y, self.scenario.hazards.radius_m)


class HazardSybil(SybilCore):
    """One of the attacker's identities in the city."""

    def __init__(self, index: int, attacker: HazardAttacker, ttl: int, recipients: int):
        period = attacker.scenario.gossip.period
        super().__init__(index, attacker.roster, period)
        self.attacker = attacker
        self.ttl = ttl
        self.recipients = recipients
        self.behaviour = attacker.scenario.sybil.behaviour
        self._suppressed: set[int] = set()

    def act(self, round: int, rng: np.random.Generator) -> list[Send]:
        a = self.attacker
        if self.behaviour == "fake-hazard":
            spots = [(x, y, True, FAKE_TAG) for x, y in a.fakes_due(round)]
        elif self.behaviour == "suppress":
            fresh = [h for h in a.city.active if h.id not in self._suppressed]
            self._suppressed.update(h.id for h in fresh)
            spots = [(h.x, h.y, False, h.id) for h in fresh]
        else:  # flood
            size = a.config.size_m
            points = rng.uniform(0.0, size, size=(a.scenario.sybil.flood_rate, 2))
            return [self._report(round, float(x), float(y), rng) for x, y in points]
        sends: list[Send] = []
        for x, y, real, tag in spots:
            near = a.audience(x, y)
            if near.size > self.recipients:
                near = rng.choice(near, size=self.recipients, replace=False)
            body = self._body(round, x, y, a.embedding(rng, real), tag)
            sends += [(int(t), a.kind, body) for t in near]
        return sends

    def _body(self, round: int, x: float, y: float, emb: np.ndarray, tag: int) -> dict[str, Any]:
        return {"round": round, "x": x, "y": y, "embedding": emb, "tag": tag, "ttl": self.ttl}

    def _report(self, round: int, x: float, y: float, rng: np.random.Generator) -> Send:
        a = self.attacker
        emb = rng.normal(0.0, 1.0, a.model.embedding_dim).astype(np.float32)
        target = int(rng.integers(a.roster.honest))
        body = self._body(round, x, y, emb, FAKE_TAG) | {"ttl": 0}  # load, not spread
        return (target, a.kind, body)
