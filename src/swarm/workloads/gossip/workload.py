"""Plain gossip as a workload: one rumor spreads (dissemination) or values average out.

The cores are `swarm.protocols.gossip`'s protocols, one per honest agent, built from [gossip]; the
rumor starts at an origin drawn from the seed. Sybils flood the fleet with junk of the
protocol's own kind, or eclipse a victim. Rows carry the informed count (or the moments
of the estimates) in additive form, so shards merge exactly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from swarm import laws
from swarm.devices.energy import EnergyMeter
from swarm.metrics import Moments
from swarm.placement import agent_ids
from swarm.protocols.gossip import aggregation, dissemination
from swarm.protocols.gossip.core import Core
from swarm.protocols.sybil import EclipseCore, FloodCore, JunkMaker
from swarm.scenario import Scenario
from swarm.seeding import Stream, generator
from swarm.workloads.base import BuildContext, Part, Partial, Results, Row, Status, Workload

__all__ = ["Gossip", "gossip_junk"]


class Gossip:
    """The gossip cores of this process, the rumor they spread and its origin."""

    def __init__(
        self,
        scenario: Scenario,
        cores: dict[int, Any],
        sybils: dict[int, Core],
        rumor_id: int,
        origin: int,
    ) -> None:
        self.scenario = scenario
        self.cores: dict[int, Any] = cores
        self.sybils = sybils
        self.rumor_id = rumor_id
        self.origin = origin  # -1 when averaging
        self.fresh: Callable[[int], Any] | None = None  # a new core for a repaired device

    @classmethod
    def build(cls, ctx: BuildContext) -> Gossip:
        s = ctx.scenario
        g, n = s.gossip, s.fleet.count
        cores: dict[int, Any]
        if s.aggregating:
            rng = generator(s.run.seed, Stream.VALUES)
            values = {
                "uniform": lambda: rng.random(n),
                "normal": lambda: rng.normal(0.0, 1.0, n),
                "index": lambda: np.arange(n, dtype=float),
            }[g.values]()
            averaging = aggregation.PROTOCOLS[g.protocol]
            # Pairwise exchanges are atomic unless every agent acts at once (see the core).
            atomic = g.protocol == "average" and s.run.activation != "sync"
            options: dict[str, Any] = {"atomic": True} if atomic else {}

            def fresh(i: int) -> Any:
                return averaging(i, ctx.topology, float(values[i]), fanout=g.fanout, **options)

            cores = {i: fresh(i) for i in ctx.honest}
        else:
            spreading = dissemination.PROTOCOLS[g.protocol]
            extra: dict[str, Any] = {}
            if spreading is dissemination.RumorMongering:
                extra = {"feedback": g.feedback, "stop": g.stop, "k": g.k}

            def fresh(i: int) -> Any:
                return spreading(
                    i, ctx.topology, fanout=g.fanout, ttl=g.ttl, memory=g.memory, **extra
                )

            cores = {i: fresh(i) for i in ctx.honest}
        sybils: dict[int, Core] = {}
        if s.sybil.behaviour == "flood":
            junk = gossip_junk(s)
            sybils = {
                i: FloodCore(i, ctx.roster, g.period, s.sybil.flood_rate, junk) for i in ctx.sybils
            }
        else:
            sybils = {i: EclipseCore(i, ctx.roster, g.period) for i in ctx.sybils}
        if s.aggregating:
            workload = cls(s, cores, sybils, 0, -1)
        else:
            rng = generator(s.run.seed, Stream.SCENARIO)
            origin = int(rng.integers(n))
            rumor_id = int(rng.integers(1, 2**63))
            data = rng.bytes(g.payload_bytes)
            if origin in cores:
                cores[origin].inject(rumor_id, data, 0)
            workload = cls(s, cores, sybils, rumor_id, origin)
        workload.fresh = fresh
        return workload

    def step(self, round: int) -> None:
        """Nothing moves but the messages."""

    # -- metrics ---------------------------------------------------------------------------
    def sample(self, round: int, in_flight: int) -> Part:
        cores = list(self.cores.values())
        n = len(cores)
        if self.scenario.aggregating:
            estimates = np.fromiter((c.estimate for c in cores), float, n)
            mean = float(estimates.mean()) if n else 0.0
            return {
                "moments": [n, mean, float(((estimates - mean) ** 2).sum())],
                "mass": float(np.fromiter((c.mass for c in cores), float, n).sum()),
            }
        informed = 0
        for core in cores:
            learned = core.informed_round(self.rumor_id)
            if learned is not None and learned <= round:
                informed += 1
        return {"informed": informed, "busy": in_flight > 0 or any(c.active for c in cores)}

    @staticmethod
    def merge(parts: Sequence[Part], n: int) -> tuple[Row, bool]:
        if "moments" in parts[0]:
            moments = Moments()
            for p in parts:
                moments = moments.merge(Moments(*p["moments"]))
            row = {
                "mean": moments.mean,
                "variance": moments.variance,
                "mass": float(sum(p["mass"] for p in parts)),
            }
            return row, False
        informed = sum(p["informed"] for p in parts)
        quiet = not any(p["busy"] for p in parts)
        row = {"informed": informed, "informed_fraction": informed / n if n else 0.0}
        return row, informed == n or (parts[0]["round"] > 0 and quiet)

    def partial_results(self) -> Partial:
        cores = self.cores
        if self.scenario.aggregating:
            estimates = [float(c.estimate) for c in cores.values()]
            return {
                "n": len(cores),
                "initial": float(np.sum([c.initial for c in cores.values()])),
                "mass": float(np.sum([c.mass for c in cores.values()])),
                "estimate_min": min(estimates, default=0.0),
                "estimate_max": max(estimates, default=0.0),
            }
        origin, rumor = self.origin, self.rumor_id
        return {
            "n": len(cores),
            "learned": [
                r
                for i, c in cores.items()
                if i != origin and (r := c.informed_round(rumor)) is not None
            ],
            "has_origin": origin in cores,
            "rumor_messages": sum(c.rumor_messages for c in cores.values()),
        }

    @staticmethod
    def results(scenario: Scenario, parts: Sequence[Partial], rows: Sequence[Row]) -> Results:
        n = scenario.fleet.count
        if scenario.aggregating:
            initial = sum(p["initial"] for p in parts)
            final = sum(p["mass"] for p in parts)  # after in-flight copies landed
            truth = initial / n
            lows = [p["estimate_min"] for p in parts if p["n"]]
            highs = [p["estimate_max"] for p in parts if p["n"]]
            variance = [r["variance"] for r in rows]
            return {
                "variance": variance,
                **contraction(scenario, variance),
                "mass_error": abs(final - initial) / abs(initial) if initial else abs(final),
                "true_mean": truth,
                "max_error": (
                    max(abs(min(lows) - truth), abs(max(highs) - truth)) if lows else None
                ),
            }
        last_round = rows[-1]["round"] if rows else 0
        learned = [r for p in parts for r in p["learned"] if r <= last_round]
        # The origin knew from round 0 (if its process reported at all).
        informed = len(learned) + any(p["has_origin"] for p in parts)
        out: dict[str, Any] = {
            "residue": (n - informed) / n,
            "traffic": sum(p["rumor_messages"] for p in parts) / n,
            "t_ave": float(np.mean(learned)) if learned else None,
            "t_last": max(learned) if learned else None,
            "rounds_to_all": max(learned, default=0) if informed == n else None,
        }
        g, net = scenario.gossip, scenario.network
        if net.topology == "complete" and g.protocol == "push" and g.fanout == 1:
            out["predicted_rounds_to_all"] = laws.push_rounds_complete(n)
        if g.protocol == "rumor" and g.feedback and g.stop == "coin":
            out["predicted_residue"] = laws.rumor_residue_feedback_coin(g.k)
        out["origin"] = agent_ids(n)[_origin(scenario)]
        return out

    def attack_partial(self) -> Partial:
        """An eclipse's victim: when (if ever) it learned the rumor."""
        s = self.scenario
        victim = self.cores.get(s.sybil.victim)
        if s.sybil.behaviour != "eclipse" or victim is None or s.aggregating:
            return {}
        return {"victim_informed_round": victim.informed_round(self.rumor_id)}

    def live_status(self) -> Status:
        return {}

    def asleep(self, index: int) -> bool:
        return False

    def respawn(self, index: int) -> Any:
        """Back uninformed (the origin too: the rumor it started is gone with its state);
        an averaging device back with its initial value and weight 1, which `mass_error`
        then shows, as a real restart would."""
        assert self.fresh is not None
        self.cores[index] = core = self.fresh(index)
        return core

    def position(self, index: int) -> tuple[float, float] | None:
        return None

    def marked(self, index: int) -> bool:
        """Informed of the rumor (no one is, when the fleet averages)."""
        core = self.cores.get(index)
        if core is None or self.scenario.aggregating:
            return False
        return core.informed_round(self.rumor_id) is not None

    def meters(self) -> Iterator[tuple[int, EnergyMeter]]:
        return iter(())

    def set_fanout(self, fanout: int) -> int:
        for core in self.cores.values():  # flooding and eclipsing Sybils have no fanout
            core.fanout = fanout
        return len(self.cores)

    def set_aggregator(self, rule: str) -> int:
        return 0

    def slow_down(self, index: int, factor: float, *, throttle: bool = False) -> bool:
        return False  # no compute time is modelled

    @property
    def aggregator(self) -> str | None:
        return None


# Below this share of the first variance, what is left is rounding, not disagreement.
VARIANCE_FLOOR = 1e-20


def contraction(scenario: Scenario, variance: Sequence[float]) -> dict[str, Any]:
    """The variance's mean shrink per cycle (geometric mean of successive ratios, until it
    reaches rounding), beside the atomic push-pull law where that law applies."""
    floor = variance[0] * VARIANCE_FLOOR if variance else 0.0
    ratios = [
        after / before
        for before, after in itertools.pairwise(variance)
        if before > floor and after > floor
    ]
    measured = math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else None
    out: dict[str, Any] = {"variance_per_cycle": measured}
    g, activation = scenario.gossip, scenario.run.activation
    if g.protocol == "average" and g.fanout == 1 and scenario.network.topology == "complete":
        out["predicted_variance_per_cycle"] = laws.PUSH_PULL_VARIANCE_FACTOR
        if activation == "sync":
            out["variance_note"] = (
                "run.activation = sync: every node offers at the same instant, so each "
                "exchange averages with a value that has moved by the time the reply lands; "
                "the law assumes atomic exchanges in random order (shuffled or jittered)"
            )
        elif activation == "poisson":
            out["variance_note"] = (
                "run.activation = poisson: a node acts 0, 1 or more times a cycle, so a "
                "cycle holds a varying number of exchanges; the law counts exactly one per node"
            )
    return out


def _origin(scenario: Scenario) -> int:
    """The agent the rumor starts at: the first draw of the scenario's stream."""
    return int(generator(scenario.run.seed, Stream.SCENARIO).integers(scenario.fleet.count))


def gossip_junk(scenario: Scenario) -> JunkMaker:
    """Junk for the plain gossip workload: fresh rumors, or mass out of nowhere."""
    protocol = scenario.gossip.protocol
    if protocol in aggregation.PROTOCOLS:
        kind = aggregation.PUSH_SUM if protocol == "push-sum" else aggregation.AVG_OFFER

        def values(round: int, rng: np.random.Generator) -> tuple[str, Any]:
            value = float(rng.normal(0.0, 1e3))
            return kind, [value, 1.0] if kind == aggregation.PUSH_SUM else [value]

        return values
    kind = {
        "push": dissemination.PUSH,
        "rumor": dissemination.RUMOR,
        "pull": dissemination.PULL_REPLY,
        "push-pull": dissemination.EXCHANGE,
    }[protocol]

    def rumors(round: int, rng: np.random.Generator) -> tuple[str, Any]:
        return kind, [[int(rng.integers(1, 2**63)), 0, b""]]

    return rumors


_IMPLEMENTS: type[Workload] = Gossip  # mypy checks the class against the protocol
