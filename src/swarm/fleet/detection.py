"""Failure detection run by the fleet's own devices, and how well it did.

With `faults.detection = "swim"`, every honest agent runs a SWIM core
(`swarm.protocols.detection.swim`) beside its workload, over the same Link: one protocol
period per round, a direct `ping` at the agent's turn, `ping-req`s through `probe_k`
members a third of a period later when no ack came, and the verdict at its next turn.
The messages go through the broker like any other, so loss, latency, partitions and
crashes act on them as on the workload's.

The observer knows who is really down (it sees every agent at each round boundary), so
each suspicion a probe raises is sorted here into a detection (the first of a member's
down episode) or a false positive (the member was up: a lost message, a partition, a
probe slower than its timeout). A crash is counted from the boundary at which it is
seen, which for a crash by a live control message is the one after it.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from swarm.protocols.detection.swim import Swim, default_suspicion_periods
from swarm.scenario import Scenario
from swarm.seeding import Stream, generator

__all__ = ["TIMEOUT_SHARE", "Detectors", "results"]

TIMEOUT_SHARE = 1 / 3  # of a period: when a probe without an ack asks others to try


class Detectors:
    """This process's SWIM cores (one per local honest agent) and what they concluded."""

    def __init__(
        self, scenario: Scenario, members: int, joins: dict[int, float] | None = None
    ) -> None:
        self.scenario = scenario
        self.members = members  # honest agents 0..members-1, over every process
        # Devices not there at round 0, and when they join (every process knows them all):
        # a member's first view holds the devices there when it starts, and a late one
        # announces itself.
        self.joins = joins or {}
        faults = scenario.faults
        self.k = faults.probe_k
        self.suspicion = faults.suspicion or None  # None: the core's default
        self.cores: dict[int, Swim] = {}
        self._cursor: dict[int, tuple[int, int]] = {}  # index -> (probed, confirmed) read
        self._lives: Counter[int] = Counter()  # cores an agent has had (respawns)
        self._open: dict[int, list[int]] = {}  # members down now -> their episode
        self.episodes: list[list[int]] = []  # [member, down at, back at (-1: not yet)]
        self.suspicions: Counter[tuple[int, int]] = Counter()  # (period, member) -> probes
        self.confirmations: set[tuple[int, int]] = set()
        self._retired = [0, 0]  # refutations and messages of cores that died

    def core(self, index: int, round: int) -> tuple[Swim, np.random.Generator]:
        """A fresh core for agent `index` (at the start, or back after a repair at
        `round`), and its own random stream, so that detection never shifts the
        workload's draws."""
        old = self.cores.get(index)
        if old is not None:
            self._read(index, old)
            self._retired[0] += old.refuted
            self._retired[1] += old.sent
        life = self._lives[index]
        self._lives[index] += 1
        # A device back from a repair announces itself with an incarnation above any its
        # earlier lives can have reached by refuting (2^16 refutations a life); a new one
        # announces its first.
        now = round * self.scenario.gossip.period
        present = [m for m in range(self.members) if self.joins.get(m, 0.0) <= now]
        joins = life == 0 and index in self.joins
        swim = Swim(
            index,
            present,
            k=self.k,
            suspicion_periods=self.suspicion,
            incarnation=life << 16 or int(joins),
        )
        swim.period = round  # what it hears before its first turn dates from this round
        self.cores[index] = swim
        self._cursor[index] = (0, 0)
        return swim, generator(self.scenario.run.seed, Stream.DETECTION, index, life)

    def observe(self, round: int, down: Iterable[int]) -> None:
        """At a round boundary: who is down now (local agents), and what the cores said."""
        now = set(down)
        for member in sorted(now - self._open.keys()):
            episode = [member, round, -1]
            self._open[member] = episode
            self.episodes.append(episode)
        for member in sorted(self._open.keys() - now):
            self._open.pop(member)[2] = round
        for index, swim in self.cores.items():
            self._read(index, swim)

    def _read(self, index: int, swim: Swim) -> None:
        probed, confirmed = self._cursor[index]
        for period, member in swim.probed[probed:]:
            self.suspicions[(period, member)] += 1
        self.confirmations.update(swim.confirmed[confirmed:])
        self._cursor[index] = (len(swim.probed), len(swim.confirmed))

    def partial(self) -> dict[str, Any]:
        for index, swim in self.cores.items():
            self._read(index, swim)
        return {
            "episodes": [list(e) for e in self.episodes],
            "suspicions": [[p, m, c] for (p, m), c in sorted(self.suspicions.items())],
            "confirmations": [list(c) for c in sorted(self.confirmations)],
            "refutations": self._retired[0] + sum(s.refuted for s in self.cores.values()),
            "messages": self._retired[1] + sum(s.sent for s in self.cores.values()),
        }


def _quantiles(values: Sequence[int]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "p50": None, "p99": None}
    p50, p99 = np.percentile(np.asarray(values, dtype=float), [50, 99])
    return {"mean": float(np.mean(values)), "p50": float(p50), "p99": float(p99)}


def results(scenario: Scenario, members: int, parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """`results.reliability.detection`: latencies in protocol periods, false positives."""
    faults = scenario.faults
    episodes = sorted(tuple(e) for p in parts for e in p["episodes"])
    suspicions: Counter[tuple[int, int]] = Counter()
    for p in parts:
        for period, member, count in p["suspicions"]:
            suspicions[(period, member)] += count
    confirmations = sorted({(c[0], c[1]) for p in parts for c in p["confirmations"]})
    by_member: dict[int, list[tuple[int, float]]] = {}
    for member, down, back in episodes:
        by_member.setdefault(member, []).append((down, math.inf if back < 0 else back))

    def episode_of(member: int, period: int) -> tuple[int, float] | None:
        for down, back in by_member.get(member, []):
            if down <= period < back:
                return down, back
        return None

    first: dict[tuple[int, int], int] = {}  # (member, down at) -> first suspicion
    false_positives = 0
    for (period, member), count in sorted(suspicions.items()):
        # A suspicion at period p judges the ping of period p - 1.
        episode = episode_of(member, period - 1)
        if episode is None:
            false_positives += count
        else:
            first.setdefault((member, episode[0]), period)
    # A confirmation is true while the member is down; of a member that is back from a
    # real failure it is late (the suspicion of its earlier life reached this member
    # after its return); of a member that never failed so far it is false.
    confirmed: dict[tuple[int, int], int] = {}
    late: set[tuple[int, int]] = set()
    falsely_confirmed: set[int] = set()
    for period, member in confirmations:
        before = [(d, b) for d, b in by_member.get(member, []) if d <= period]
        if not before:
            falsely_confirmed.add(member)
        elif before[-1][1] > period:
            confirmed.setdefault((member, before[-1][0]), period)
        else:
            late.add((member, before[-1][0]))
    latency = [period - down for (_, down), period in first.items()]
    confirm = [period - down for (_, down), period in confirmed.items()]
    # The analysis for each crash: the live members each pick one target uniformly.
    # Members down at x: episodes begun by x less those ended by x (an episode ends after
    # it begins), counted by bisection rather than a scan per crash.
    downs = sorted(d for _, d, _ in episodes)
    backs = sorted(b for _, _, b in episodes if b >= 0)
    expected = []
    for _, down, _ in episodes:
        live = members - (bisect_right(downs, down) - bisect_right(backs, down))
        if live >= 1 and members >= 2:
            miss = (1.0 - 1.0 / (members - 1)) ** live
            expected.append(1.0 / (1.0 - miss))
    lat, conf = _quantiles(latency), _quantiles(confirm)
    return {
        "protocol": faults.detection,
        "members": members,
        "probe_k": faults.probe_k,
        "suspicion_periods": faults.suspicion or default_suspicion_periods(members),
        "crashes": len(episodes),
        "detected": len(latency),
        "latency_mean": lat["mean"],
        "latency_p50": lat["p50"],
        "latency_p99": lat["p99"],
        # For a lone crash in a large group, e/(e-1) = 1.58 periods (SWIM section 3.1).
        "expected_latency_mean": float(np.mean(expected)) if expected else None,
        "confirmed": len(confirm),
        "confirm_latency_p50": conf["p50"],
        "confirm_latency_p99": conf["p99"],
        "false_positives": false_positives,
        "false_confirmations": len(falsely_confirmed),
        "late_confirmations": len(late),
        "refutations": sum(p["refutations"] for p in parts),
        "messages": sum(p["messages"] for p in parts),
    }
