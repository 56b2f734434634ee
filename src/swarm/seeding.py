"""Every random choice flows from the scenario seed.

Streams are numpy `SeedSequence` children identified by a path of integers: the topology
uses (0,), the network (1,), initial values (2,) and agent i uses (3, i). Building the
child from its spawn key is exactly what `SeedSequence.spawn` would give, but lets a
fleet of 100,000 agents create its generators lazily, only for agents that draw.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    """Top-level random streams of a run; new streams are appended, never renumbered."""

    TOPOLOGY = 0
    NETWORK = 1
    VALUES = 2
    AGENTS = 3
    PLACEMENT = 4
    SCENARIO = 5
    DATA = 6  # dataset split and shards
    LEARNERS = 7  # per-agent learner initialisation (then the agent's own stream)
    CITY = 8  # hazards appearing
    TAXIS = 9  # taxi movement
    SENSING = 10  # sensor noise and detections
    MESH = 11  # the field hearables sense, and their duty cycles
    SYBIL = 12  # the attacker: its placement, data and choices
    CONTROL = 13  # live controls' draws (which agents a crash command kills)
    ACTIVATION = 14  # when agents act within a round (swarm.activation)
    FAULTS = 15  # when devices fail (swarm.fleet.faults)
    DETECTION = 16  # failure detectors' probe targets (swarm.fleet.detection)


def seed_sequence(seed: int, *path: int) -> np.random.SeedSequence:
    """The SeedSequence at `path` below the root seeded with `seed`."""
    return np.random.SeedSequence(seed, spawn_key=tuple(int(p) for p in path))


def generator(seed: int, *path: int) -> np.random.Generator:
    """A fresh generator for the stream at `path` (see `Stream`)."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, *path)))
