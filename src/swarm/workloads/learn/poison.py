"""Gradient and model poisoning by colluding Sybils.

The attacker owns a little in-distribution data (R = min(S, 5) shards the size of an
honest agent's, drawn from the training set) and R reference learners. Each round it
trains them as an honest agent would, from the model it was sent (FedAvg) or its own
(gossip), and so knows what honest agents are about to send: the rows H (R x d),
updates for FedAvg and models for gossip. From H every Sybil sends the same crafted
vector (collusion is shared state: one `Attacker` per process, deterministic from the
seed, so the Sybils of every shard agree):

- `sign-flip`: -m * mean(H) (m = 4): pulls the model backwards, harder than the honest
  majority pushes it forwards once m * Sybils > honest clients in a round;
- `scale`: m * mean(H) (m = 10): a boosted update that makes the averaged step overshoot;
- `shift`: mean(H) - z * std(H) (z = 1.5), coordinate-wise: "a little is enough" (Baruch
  et al. 2019), a small coordinated shift that stays inside the honest spread, so
  distance-based rules cannot tell it apart;
- `label-flip`: the Sybils train on their data with `source_class` relabelled
  `target_class` and send that honestly: a targeted attack on one class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from swarm.protocols.gossip.core import ProtocolViolation, Send
from swarm.protocols.gossip.topology import Topology
from swarm.protocols.sybil import Roster, SybilCore
from swarm.scenario import Scenario, ScenarioError
from swarm.seeding import Stream, generator
from swarm.workloads.learn.compression import Compressor, UpdateRejected, decompress
from swarm.workloads.learn.datasets import Dataset
from swarm.workloads.learn.learner import Learner

__all__ = ["DEFAULT_MAGNITUDE", "REFERENCES", "Attacker", "FedAvgSybil", "GossipSybil"]

REFERENCES = 5  # reference learners the attacker trains at most
DEFAULT_MAGNITUDE = {"sign-flip": 4.0, "scale": 10.0, "shift": 1.5, "label-flip": 0.0}


class Attacker:
    """What all the Sybils of a run know and compute together."""

    def __init__(
        self,
        scenario: Scenario,
        dataset: Dataset,
        roster: Roster,
        make_learner: Callable[[np.random.Generator], Learner],
        shard_size: int,
    ) -> None:
        s = scenario.sybil
        self.behaviour = s.behaviour
        self.magnitude = s.magnitude or DEFAULT_MAGNITUDE.get(s.behaviour, 0.0)
        self.epochs = scenario.learn.local_epochs
        self.roster = roster
        seed = scenario.run.seed
        rng = generator(seed, Stream.SYBIL, 1)
        n_train = len(dataset.y_train)
        size = max(1, min(shard_size, n_train))
        references = max(1, min(roster.count, REFERENCES))
        self.shards: list[tuple[np.ndarray, np.ndarray]] = []
        for _ in range(references):
            rows = np.sort(rng.choice(n_train, size=size, replace=False))
            X, y = dataset.X_train[rows], dataset.y_train[rows].copy()
            if self.behaviour == "label-flip":
                y = self._flip(y, dataset, s.source_class, s.target_class)
            self.shards.append((X, y))
        self.learners = [
            make_learner(generator(seed, Stream.SYBIL, 2, k)) for k in range(references)
        ]
        self.samples = size
        self._cache: tuple[int, bytes, np.ndarray] | None = None

    @staticmethod
    def _flip(y: np.ndarray, dataset: Dataset, source: int, target: int) -> np.ndarray:
        classes = [int(c) for c in dataset.classes]
        for name, value in (("source_class", source), ("target_class", target)):
            if value not in classes:
                raise ScenarioError(
                    f"sybil.{name} = {value}: dataset {dataset.name!r} has classes "
                    f"{classes[0]}..{classes[-1]}"
                )
        y[y == source] = target
        return y

    def honest_rows(self, start: np.ndarray, *, deltas: bool) -> np.ndarray:
        """What R honest agents starting from `start` would send: updates or models."""
        rows = []
        for learner, (X, y) in zip(self.learners, self.shards, strict=True):
            learner.set_params(start)
            learner.train(X, y, epochs=self.epochs)
            params = learner.get_params()
            rows.append(params - start if deltas else params)
        return np.stack(rows)

    def crafted(self, round: int, start: np.ndarray, *, deltas: bool) -> np.ndarray:
        """The vector every Sybil sends this round (computed once, shared)."""
        key = start.tobytes()
        if self._cache is not None and self._cache[0] == round and self._cache[1] == key:
            return self._cache[2]
        rows = self.honest_rows(start, deltas=deltas)
        mean = rows.mean(axis=0)
        m = self.magnitude
        if self.behaviour == "sign-flip":
            vector = -m * mean
        elif self.behaviour == "scale":
            vector = m * mean
        elif self.behaviour == "shift":
            vector = mean - m * rows.std(axis=0)
        else:  # label-flip: honest training on poisoned labels
            vector = mean
        vector = np.clip(vector, -1e30, 1e30)  # finite on the wire whatever m is
        self._cache = (round, key, vector)
        return vector


class FedAvgSybil(SybilCore):
    """A FedAvg client that answers the server's call with the attacker's crafted update."""

    def __init__(
        self, index: int, roster: Roster, period: float, attacker: Attacker, size: int
    ) -> None:
        super().__init__(index, roster, period)
        self.attacker = attacker
        self.size = size
        self._uplink = Compressor("none", size)

    def act(self, round: int, rng: np.random.Generator) -> list[Send]:
        return []

    def hear(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        if kind != "fit" or type(body) is not dict or type(body.get("round")) is not int:
            return []
        try:
            start = decompress(body.get("model"), self.size)
        except UpdateRejected:
            return []
        vector = self.attacker.crafted(body["round"], start, deltas=True)
        update = self._uplink.compress(vector)
        reply = {"round": body["round"], "update": update, "samples": self.attacker.samples}
        return [(src, "update", reply)]


class GossipSybil(SybilCore):
    """A gossip-learning peer that sends the attacker's crafted model to its neighbours.

    It averages what it hears into its own model, as an honest peer would, so its
    starting point tracks the fleet's.
    """

    def __init__(
        self,
        index: int,
        roster: Roster,
        period: float,
        attacker: Attacker,
        topology: Topology,
        fanout: int,
        start: np.ndarray,
    ) -> None:
        super().__init__(index, roster, period)
        self.attacker = attacker
        self.topology = topology
        self.fanout = fanout
        self.model = start.copy()
        self._uplink = Compressor("none", start.size)

    def act(self, round: int, rng: np.random.Generator) -> list[Send]:
        vector = self.attacker.crafted(round, self.model, deltas=False)
        update = self._uplink.compress(vector)
        peers = self.topology.sample(self.index, rng, self.fanout)
        return [(p, "model", {"round": round, "update": update}) for p in peers]

    def hear(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        if kind != "model" or type(body) is not dict:
            raise ProtocolViolation("gossip learning carries 'model' maps")
        try:
            theirs = decompress(body.get("update"), self.model.size)
        except UpdateRejected:
            return []
        self.model = (self.model + theirs) / 2
        return []
