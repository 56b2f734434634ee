"""A fifth workload, outside swarm: agents agree on the largest value by push gossip.

It exists to prove that a workload is one module plus one registry line: the tests
register it with `SWARM_WORKLOADS=max=max_gossip:SPEC` and run it end to end, recorded,
sharded over two worker processes and in the dashboard, with nothing in swarm naming it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from swarm.devices.energy import EnergyMeter
from swarm.protocols.gossip.core import ProtocolViolation, Send
from swarm.protocols.gossip.topology import Topology
from swarm.scenario import Scenario
from swarm.scenario.schema import rule
from swarm.seeding import Stream, generator
from swarm.workloads.base import (
    BuildContext,
    Part,
    Partial,
    Results,
    Row,
    Status,
    Workload,
    WorkloadSpec,
)

MAX = "max"


@dataclass(frozen=True)
class MaxSection:
    values: int = rule(1000, "agents start with a value drawn from [0, values)", min=1)


SPEC = WorkloadSpec(
    name="max",
    summary="agree on the largest value by push gossip",
    factory="max_gossip:MaxGossip",
    kinds=(MAX,),
    section=MaxSection,
    clean_keys=("agreed_fraction",),
)


class MaxCore:
    """Pushes the largest value it knows to `fanout` neighbours each round."""

    def __init__(self, index: int, topology: Topology, value: int, fanout: int, limit: int):
        self.index, self.topology, self.value = index, topology, value
        self.fanout, self.limit = fanout, limit

    @property
    def active(self) -> bool:
        return True

    def on_tick(self, round: int, rng: np.random.Generator) -> list[Send]:
        peers = self.topology.sample(self.index, rng, self.fanout)
        return [(int(peer), MAX, self.value) for peer in peers]

    def on_message(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        if kind != MAX or type(body) is not int or not 0 <= body < self.limit:
            raise ProtocolViolation(f"a max message is an int in [0, {self.limit})")
        self.value = max(self.value, body)
        return []


class MaxGossip:
    """The cores of this process; the largest value is known to every process."""

    def __init__(self, cores: dict[int, MaxCore], top: int, fresh: Any = None) -> None:
        self.cores = cores
        self.sybils: dict[int, Any] = {}
        self.top = top
        self.fresh = fresh

    @classmethod
    def build(cls, ctx: BuildContext) -> MaxGossip:
        s = ctx.scenario
        limit = s.max.values
        values = generator(s.run.seed, Stream.VALUES).integers(0, limit, s.fleet.count)

        def fresh(i: int) -> MaxCore:
            return MaxCore(i, ctx.topology, int(values[i]), s.gossip.fanout, limit)

        return cls({i: fresh(i) for i in ctx.honest}, int(values.max()), fresh)

    def respawn(self, index: int) -> MaxCore:
        self.cores[index] = core = self.fresh(index)
        return core

    def step(self, round: int) -> None:
        pass

    def sample(self, round: int, in_flight: int) -> Part:
        return {"agreed": sum(c.value == self.top for c in self.cores.values())}

    @staticmethod
    def merge(parts: Sequence[Part], n: int) -> tuple[Row, bool]:
        agreed = sum(p["agreed"] for p in parts)
        return {"agreed": agreed, "agreed_fraction": agreed / n}, agreed == n

    def partial_results(self) -> Partial:
        return {"agreed": sum(c.value == self.top for c in self.cores.values())}

    @staticmethod
    def results(scenario: Scenario, parts: Sequence[Partial], rows: Sequence[Row]) -> Results:
        fractions = [r["agreed_fraction"] for r in rows]
        first = next((r["round"] for r in rows if r["agreed_fraction"] == 1.0), None)
        return {
            "agreed_fraction": sum(p["agreed"] for p in parts) / scenario.fleet.count,
            "rounds_to_agree": first,
            "fraction_by_round": fractions,
        }

    def attack_partial(self) -> Partial:
        return {}

    def live_status(self) -> Status:
        return {"top": self.top}

    def asleep(self, index: int) -> bool:
        return False

    def position(self, index: int) -> tuple[float, float] | None:
        return None

    def marked(self, index: int) -> bool:
        return False

    def meters(self) -> Iterator[tuple[int, EnergyMeter]]:
        return iter(())

    def set_fanout(self, fanout: int) -> int:
        for core in self.cores.values():
            core.fanout = fanout
        return len(self.cores)

    def set_aggregator(self, rule: str) -> int:
        return 0

    def slow_down(self, index: int, factor: float, *, throttle: bool = False) -> bool:
        return False  # no compute time is modelled

    @property
    def aggregator(self) -> str | None:
        return None


_IMPLEMENTS: type[Workload] = MaxGossip  # mypy checks the class against the protocol
