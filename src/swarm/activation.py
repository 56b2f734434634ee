"""When agents act within a round (`run.activation`).

- `sync`: every agent at the round boundary, in index order (lockstep). Fast, and what
  synchronous-round models assume, but two agents that pick each other in the same
  round exchange values that are both stale by the time the replies land.
- `shuffled`: one agent after another, in a fresh random order each round, evenly spaced
  over the period, as PeerSim's cycle-driven engine runs its nodes.
- `jittered`: each agent at its own phase within the period, drawn once: devices whose
  clocks are not synchronized, each ticking at the same rate.
- `poisson`: each agent on its own Poisson clock of rate 1/period (Boyd et al. 2006,
  "Randomized gossip algorithms"): in a round an agent acts 0, 1 or more times.

Every draw comes from the scenario seed (stream ACTIVATION) and is made for the whole
fleet, whatever agents a process runs, so a sharded run activates each agent exactly
when a one-process run would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

from swarm.seeding import Stream, generator

__all__ = ["ACTIVATIONS", "Activation"]

ACTIVATIONS: Final = ("sync", "shuffled", "jittered", "poisson")


class Activation:
    """The offsets within a round at which each agent acts, for a fleet of `total`."""

    def __init__(self, mode: str, period: float, seed: int, total: int) -> None:
        if mode not in ACTIVATIONS:
            raise ValueError(f"unknown activation {mode!r}; choose one of {', '.join(ACTIVATIONS)}")
        if not period > 0:
            raise ValueError(f"the period must be > 0, got {period!r}")
        self.mode = mode
        self.period = float(period)
        self.seed = seed
        self.total = int(total)
        self._phases: np.ndarray | None = None

    @property
    def lockstep(self) -> bool:
        return self.mode == "sync"

    def offsets(self, round: int, keys: Sequence[int]) -> list[tuple[float, int]]:
        """(seconds after the round boundary, agent index) for this round, sorted by time;
        `keys` are the agent indices this process runs (each below `total`)."""
        if self.mode == "sync":
            return [(0.0, key) for key in keys]
        index = np.asarray(keys, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= self.total):
            raise ValueError(f"agent indices must be in [0, {self.total})")
        if self.mode == "jittered":
            if self._phases is None:
                self._phases = generator(self.seed, Stream.ACTIVATION).random(self.total)
            times = self._phases[index] * self.period
            pairs = zip(times.tolist(), index.tolist(), strict=True)
            return sorted(pairs)
        rng = generator(self.seed, Stream.ACTIVATION, round)
        if self.mode == "shuffled":
            slot = np.empty(self.total, dtype=np.int64)
            slot[rng.permutation(self.total)] = np.arange(self.total)
            starts = slot[index] * (self.period / self.total)
            return sorted(zip(starts.tolist(), index.tolist(), strict=True))
        # poisson: given how many times a clock ticks in the period (Poisson with mean 1),
        # its ticks are uniform within it.
        counts = rng.poisson(1.0, self.total)
        ticks = rng.random(int(counts.sum())) * self.period
        first = np.concatenate([[0], np.cumsum(counts)])
        out = [
            (float(t), int(key))
            for key in index.tolist()
            for t in ticks[first[key] : first[key + 1]].tolist()
        ]
        out.sort()
        return out
