"""The hazards workload: taxis sense a shared city, judge readings and warn nearby taxis.

A `Workload` (see `swarm.workloads.base`): the fleet asks it for cores, calls
`Hazards.step` before the agents act in each round, and asks for the figures its metrics
rows and summary report.

Every process builds the same city, the same taxi movement and the same sensor readings
from the seed, so all shards agree on hazards, positions and audiences; only the taxis'
cores (their decisions and messages) are local. A hazard's audience is the taxis within
`hazards.radius_m` when it appeared; awareness latency is the time until `hazards.share`
of the audience knew it. Each shard records when its own audience members learned, and
`results` merges the shards' records exactly.

A "hazard" report carries the hazard id as `tag` (-1 for a spurious reading, -2 for one
an attacker made up). The tag is ground truth used only to measure awareness; no taxi
ever reads it to decide anything. Taxis recognise a report they already know by its
location: a real reading is located at its hazard, so every report of one hazard names
the same spot.

A report is a vote about its location: yes when the taxi's judge takes the embedding
for a real hazard, no otherwise. `hazards.voting` says when a taxi believes its peers
(`swarm.protocols.consensus.tally`): at the first yes (`any`), or once `quorum` distinct taxis
reported it (`quorum`), and more of them yes than no (`majority`). Its own eyes it
always believes. Voting is the fleet's defense against Sybils that make hazards up.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swarm import wire
from swarm.devices.energy import EnergyMeter
from swarm.protocols.consensus.tally import VoteTally
from swarm.protocols.gossip.core import ProtocolViolation, Send
from swarm.protocols.sybil import SybilCore
from swarm.scenario import Scenario, ScenarioError
from swarm.seeding import Stream, generator
from swarm.workloads.base import BuildContext, Part, Partial, Results, Row, Status, Workload
from swarm.workloads.hazards import SPEC
from swarm.workloads.hazards.awareness import (
    AwarenessTracker,
    HazardModel,
    check_embedding,
    compound_judges,
    latency_percentiles,
)
from swarm.workloads.hazards.city import City, CityConfig, Observation, Taxis, sense

__all__ = [
    "DEFAULT_TTL",
    "HAZARD",
    "RECIPIENTS_PER_FANOUT",
    "WALL_CLOCK_KEYS",
    "Hazards",
    "TaxiCore",
    "merge_sample",
    "results",
]

HAZARD = wire.register_kind("hazard", SPEC.codes["hazard"])  # the one message kind of this workload
# Hops a report may still travel when gossip.ttl is 0 (unlimited is no option here: a
# warning that keeps travelling stops being about the neighbourhood). A taxi that learns
# from a report with ttl t forwards it with t - 1 while t > 0.
DEFAULT_TTL = 3
# A taxi warns at most gossip.fanout * RECIPIENTS_PER_FANOUT taxis per report, drawn at
# random from those within radius_m of itself. Random rather than nearest: nearest
# neighbours form cliques, and a warning relayed among cliques spreads slowly.
RECIPIENTS_PER_FANOUT = 4
# Report locations a taxi remembers for recognising repeats; the oldest is forgotten.
MEMORY = 1024
# Results measured on the wall clock: they vary between runs of the same seed, so they
# are kept out of the per-round metrics rows (which are byte-identical across runs).
WALL_CLOCK_KEYS = ("budget_violations", "decision_ms")

_BODY_KEYS = frozenset({"round", "x", "y", "embedding", "tag", "ttl"})
# CityConfig field -> key of the [hazards] section
_CONFIG_KEYS = {
    "size_m": "size_m",
    "hazard_rate": "hazard_rate",
    "hazard_lifetime_s": "hazard_lifetime",
    "sensing_range_m": "sensing_range_m",
    "speed_mps": "speed_mps",
    "sensor_noise": "sensor_noise",
    "false_reading_rate": "false_reading_rate",
}
_COUNTERS = (
    "decisions",
    "readings",
    "false_alarms",
    "false_alarms_heard",
    "fake_alarms_heard",
    "missed_decisions",
    "budget_violations",
    "rejected",
    "untracked",
    "sent",
)
# The counters as metrics-row columns. A row's "sent" is the broker's count of every
# publish, so the taxis' warnings get a name of their own; budget violations depend on
# wall-clock time and stay out of the rows, which must be byte-identical per seed.
_ROW_COLUMNS = {
    key: "warnings_sent" if key == "sent" else key
    for key in _COUNTERS
    if key != "budget_violations"
}


@dataclass(slots=True)
class _Record:
    """One hazard as this process sees it: the audience members it hosts and their learning."""

    appeared_at: float
    audience: frozenset[int]  # local members only; the shards' sets are disjoint
    expired_at: float | None = None
    learned: dict[int, float] = field(default_factory=dict)


@dataclass(slots=True)
class _Context:
    """What every core of a process shares: the world, the model and the settings."""

    model: HazardModel
    taxis: Taxis
    records: dict[int, _Record]
    now: Callable[[], float]
    size_m: float
    radius_m: float
    recipients: int
    ttl: int
    budget_s: float
    voting: str = "any"
    quorum: int = 1


def _int(value: Any) -> bool:
    return type(value) is int


def _coordinate(value: Any, size: float) -> bool:
    return type(value) in (int, float) and math.isfinite(value) and 0.0 <= value <= size


class TaxiCore:
    """One taxi: judges its own readings and peers' reports, and warns nearby taxis."""

    def __init__(self, index: int, ctx: _Context) -> None:
        self.index = index
        self._ctx = ctx
        self._pending: list[Observation] = []
        self._known: dict[tuple[float, float], None] = {}  # insertion-ordered set
        self._tally = VoteTally(ctx.voting, ctx.quorum, MEMORY)
        self.decisions = 0  # classifications: own readings and peers' reports
        self.readings = 0  # own readings classified
        self.false_alarms = 0  # own spurious readings judged real
        self.false_alarms_heard = 0  # peers' spurious reports accepted as new
        self.fake_alarms_heard = 0  # reports an attacker made up, accepted as new
        self.missed_decisions = 0  # own real readings judged spurious
        self.budget_violations = 0
        self.rejected = 0  # reports whose embedding failed validation
        self.untracked = 0  # tags this process has no hazard for (shards out of step)
        self.sent = 0
        self.decision_s = 0.0
        self.decision_max_s = 0.0

    @property
    def active(self) -> bool:
        """Always: hazards keep appearing, so a taxi never runs out of things to do."""
        return True

    def known(self, x: float, y: float) -> bool:
        return (x, y) in self._known

    def observe(self, obs: Observation) -> None:
        """Queue a reading for the next tick (the fleet senses before the agents act)."""
        self._pending.append(obs)

    def _timed(self, elapsed: float) -> None:
        self.decisions += 1
        self.decision_s += elapsed
        self.decision_max_s = max(self.decision_max_s, elapsed)
        if elapsed > self._ctx.budget_s:
            self.budget_violations += 1

    def on_tick(self, round: int, rng: np.random.Generator) -> list[Send]:
        readings, self._pending = self._pending, []
        model = self._ctx.model
        sends: list[Send] = []
        for obs in readings:
            start = time.perf_counter()
            emb = model.embed(obs.features)
            real = bool(model.scores(emb)[0] >= 0.5)
            self._timed(time.perf_counter() - start)
            self.readings += 1
            if not real:
                if obs.hazard_id is not None:
                    self.missed_decisions += 1
                continue
            if obs.hazard_id is None:
                self.false_alarms += 1
            tag = -1 if obs.hazard_id is None else obs.hazard_id
            sends += self._learn(round, obs.x, obs.y, emb, tag, self._ctx.ttl, obs.time, -1, rng)
        return sends

    def on_message(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        if kind != HAZARD:
            raise ProtocolViolation(f"a taxi does not accept {kind!r}")
        x, y, raw, tag, ttl = self._parse(body)
        start = time.perf_counter()
        try:
            emb = check_embedding(raw, self._ctx.model.embedding_dim)
        except ValueError:
            self.rejected += 1
            return []
        real = bool(self._ctx.model.scores(emb)[0] >= 0.5)
        self._timed(time.perf_counter() - start)
        if (x, y) in self._known or not self._tally.vote((x, y), src, real):
            return []
        return self._learn(round, x, y, emb, tag, ttl - 1, self._ctx.now(), src, rng)

    def _parse(self, body: Any) -> tuple[float, float, Any, int, int]:
        """The report's fields, or ProtocolViolation; the embedding is checked later."""
        if type(body) is not dict or body.keys() != _BODY_KEYS:
            raise ProtocolViolation(f"a hazard report is a map of {sorted(_BODY_KEYS)}")
        if not _int(body["round"]) or body["round"] < 0:
            raise ProtocolViolation("hazard round must be a non-negative int")
        size = self._ctx.size_m
        if not _coordinate(body["x"], size) or not _coordinate(body["y"], size):
            raise ProtocolViolation(f"hazard x and y must be numbers in [0, {size}]")
        if not _int(body["tag"]) or body["tag"] < -2:
            raise ProtocolViolation("hazard tag must be an int >= -2")
        if not _int(body["ttl"]) or not 0 <= body["ttl"] <= self._ctx.ttl:
            raise ProtocolViolation(f"hazard ttl must be an int in [0, {self._ctx.ttl}]")
        return float(body["x"]), float(body["y"]), body["embedding"], body["tag"], body["ttl"]

    def _learn(
        self,
        round: int,
        x: float,
        y: float,
        emb: np.ndarray,
        tag: int,
        ttl: int,
        now: float,
        src: int,
        rng: np.random.Generator,
    ) -> list[Send]:
        """Know the hazard at (x, y) from `now`; warn nearby taxis unless it was known."""
        if (x, y) in self._known:
            return []
        self._known[(x, y)] = None
        if len(self._known) > MEMORY:
            del self._known[next(iter(self._known))]
        if tag < 0:
            if src >= 0:
                self.false_alarms_heard += 1
                if tag == -2:
                    self.fake_alarms_heard += 1
        elif (rec := self._ctx.records.get(tag)) is None:
            self.untracked += 1
        elif self.index in rec.audience:
            # A report can only postdate its hazard; the clamp guards shards out of step.
            t = max(now, rec.appeared_at)
            rec.learned[self.index] = min(t, rec.learned.get(self.index, math.inf))
        if ttl < 0:
            return []
        peers = self._recipients(src, rng)
        body = {"round": round, "x": x, "y": y, "embedding": emb, "tag": tag, "ttl": ttl}
        self.sent += len(peers)
        return [(peer, HAZARD, body) for peer in peers]

    def _recipients(self, src: int, rng: np.random.Generator) -> list[int]:
        ctx = self._ctx
        px, py = ctx.taxis.positions[self.index]
        near = ctx.taxis.within(float(px), float(py), ctx.radius_m)
        near = near[(near != self.index) & (near != src)]
        if near.size > ctx.recipients:
            near = rng.choice(near, size=ctx.recipients, replace=False)
        return [int(i) for i in near]


def _config(scenario: Scenario) -> CityConfig:
    h = scenario.hazards
    values = {name: getattr(h, key) for name, key in _CONFIG_KEYS.items()}
    try:
        return CityConfig(**values)
    except ValueError as exc:
        found = re.match(r"CityConfig\.(\w+) (.*)", str(exc))
        if found is None or found.group(1) not in _CONFIG_KEYS:
            raise ScenarioError(f"hazards: {exc}") from None
        name, reason = found.groups()
        key = _CONFIG_KEYS[name]
        raise ScenarioError(f"hazards.{key} = {values[name]!r}: {reason}") from None


@dataclass
class Hazards:
    """The shared city and taxis of a run, and the cores of this process's taxis."""

    scenario: Scenario
    local: range
    city: City
    taxis: Taxis
    model: HazardModel
    cores: dict[int, TaxiCore]
    records: dict[int, _Record]
    _sense_rng: np.random.Generator
    _time: float = 0.0
    sybils: dict[int, SybilCore] = field(default_factory=dict)
    # hazard id -> awareness latency (None: missed), once it can no longer change
    _settled: dict[int, float | None] = field(default_factory=dict)
    _judges: dict[str, Any] | None = None  # the compound-judges check, worked out once
    _shared: Any = None  # what every taxi core shares: a repaired taxi's new core gets it

    @classmethod
    def build(cls, ctx: BuildContext) -> Hazards:
        scenario, local, now, roster = ctx.scenario, ctx.local, ctx.now, ctx.roster
        config = _config(scenario)
        h, seed, n = scenario.hazards, scenario.run.seed, scenario.fleet.count
        try:
            AwarenessTracker(h.radius_m, h.share)  # the checks `results` will rely on
        except ValueError as exc:
            raise ScenarioError(f"hazards: {exc}") from None
        city = City(config, generator(seed, Stream.CITY))
        taxis = Taxis(n, config, generator(seed, Stream.TAXIS))
        model = HazardModel.fit(config, generator(seed, Stream.SENSING, 0))
        records: dict[int, _Record] = {}
        shared = _Context(
            model=model,
            taxis=taxis,
            records=records,
            now=now,
            size_m=config.size_m,
            radius_m=h.radius_m,
            recipients=scenario.gossip.fanout * RECIPIENTS_PER_FANOUT,
            ttl=scenario.gossip.ttl or DEFAULT_TTL,
            budget_s=h.budget_ms / 1000.0,
            voting=h.voting,
            quorum=h.quorum,
        )
        cores = {i: TaxiCore(i, shared) for i in local if i < n}
        sense_rng = generator(seed, Stream.SENSING, 1)
        work = cls(scenario, local, city, taxis, model, cores, records, sense_rng)
        work._shared = shared
        mine = [i for i in local if roster.is_sybil(i)]
        if mine:
            from swarm.workloads.hazards.attack import HazardAttacker, HazardSybil

            attacker = HazardAttacker(scenario, config, city, taxis, model, roster, HAZARD)
            work.sybils = {i: HazardSybil(i, attacker, shared.ttl, shared.recipients) for i in mine}
        return work

    def step(self, round: int) -> None:
        """Advance the world to the start of `round` and queue the readings of local taxis."""
        now = round * self.scenario.gossip.period
        if now < self._time:
            raise ValueError(f"step({round}) would move time back from {self._time}")
        appeared, expired = self.city.advance(now)
        radius = self.scenario.hazards.radius_m
        for hazard in appeared:
            audience = self.taxis.within(hazard.x, hazard.y, radius)
            mine = frozenset(i for i in map(int, audience) if i in self.local)
            self.records[hazard.id] = _Record(hazard.appeared_at, mine)
        for hazard in expired:
            self.records[hazard.id].expired_at = hazard.expires_at
        dt = now - self._time
        self.taxis.move(dt)
        for obs in sense(self.city, self.taxis, dt, self._sense_rng):  # honest taxis only
            core = self.cores.get(obs.taxi)
            if core is not None:
                core.observe(obs)
        self._time = now

    def attack_partial(self) -> dict[str, Any]:
        """Made-up reports the taxis of this process believed (see `swarm.fleet.attack`)."""
        return {"fake_alarms_heard": sum(c.fake_alarms_heard for c in self.cores.values())}

    # -- metrics ---------------------------------------------------------------------------
    def _counters(self) -> dict[str, int]:
        cores = self.cores.values()
        return {key: sum(getattr(c, key) for c in cores) for key in _COUNTERS}

    def sample(self, round: int = 0, in_flight: int = 0) -> Part:
        """Additive per-process figures for one metrics row (no wall-clock figures)."""
        active = [self.records[h.id] for h in self.city.active]
        counters = self._counters()
        return {
            "hazards_active": len(active),  # the same in every process: merged by max
            "aware_sum": sum(len(r.learned) for r in active),
            "audience_sum": sum(len(r.audience) for r in active),
            **{column: counters[key] for key, column in _ROW_COLUMNS.items()},
        }

    def judges(self) -> dict[str, Any]:
        """Voting measured beside its law (`compound_judges`): the same for the whole run."""
        if self._judges is None:
            found = compound_judges(
                _config(self.scenario), generator(self.scenario.run.seed, Stream.SENSING, 2)
            )
            measured, independent = found["measured"], found["independent"]
            self._judges = {
                "k": measured["k"],
                "member_accuracy": measured["mean_member_accuracy"],
                "majority": measured["majority"],
                "majority_law": measured["majority_law"],
                "error_correlation": measured["error_correlation"],
                "independent_majority": independent["majority"],
            }
        return self._judges

    def live_status(self) -> Status:
        """Awareness latency so far, for a live dashboard (this process's audiences).

        A hazard's latency is settled once the share knew it or it expired, so each
        status looks again only at hazards still pending: cheap however long the run.
        """
        h = self.scenario.hazards
        tracker = AwarenessTracker(h.radius_m, h.share)
        pending = 0
        for hid, rec in self.records.items():
            if hid in self._settled or not rec.audience:
                continue
            tracker.record(hid, rec.appeared_at, rec.audience)
            for taxi, t in rec.learned.items():
                tracker.learned(hid, taxi, t)
            if rec.expired_at is not None:
                tracker.expired(hid, rec.expired_at)
            reached = tracker.reached_at(hid)
            if reached is not None:
                self._settled[hid] = reached - rec.appeared_at
            elif rec.expired_at is not None:
                self._settled[hid] = None
            else:
                pending += 1
        latencies = [v for v in self._settled.values() if v is not None]
        return {
            "judges": self.judges(),
            "awareness": {
                **latency_percentiles(latencies),
                "reached": len(latencies),
                "missed": len(self._settled) - len(latencies),
                "pending": pending,
            },
        }

    def asleep(self, index: int) -> bool:
        return False

    def respawn(self, index: int) -> TaxiCore:
        """Back knowing no hazard: its warnings and votes are lost; the car kept driving."""
        self.cores[index] = core = TaxiCore(index, self._shared)
        return core

    def position(self, index: int) -> tuple[float, float] | None:
        """Where the taxi has driven to, in the city (m)."""
        if not 0 <= index < self.scenario.fleet.count:
            half = self.scenario.hazards.size_m / 2  # a Sybil has no car: the city centre
            return half, half
        x, y = self.taxis.positions[index]
        return float(x), float(y)

    def marked(self, index: int) -> bool:
        """Warned of (or sure of) a hazard that is still there."""
        core = self.cores.get(index)
        return core is not None and any(core.known(h.x, h.y) for h in self.city.active)

    def meters(self) -> Iterator[tuple[int, EnergyMeter]]:
        return iter(())  # taxis run on the car's power

    def set_fanout(self, fanout: int) -> int:
        return 0  # a taxi warns the taxis around it, not a fanout of peers

    def set_aggregator(self, rule: str) -> int:
        return 0

    def slow_down(self, index: int, factor: float, *, throttle: bool = False) -> bool:
        return False  # no compute time is modelled

    @property
    def aggregator(self) -> str | None:
        return None

    @staticmethod
    def merge(parts: Sequence[Part], n: int) -> tuple[Row, bool]:
        return merge_sample(parts, n), False

    @staticmethod
    def results(scenario: Scenario, parts: Sequence[Partial], rows: Sequence[Row]) -> Results:
        return results(scenario, parts, rows[-1]["round"] if rows else 0)

    def partial_results(self) -> Partial:
        """End-of-run figures of this process, in a form `results` merges exactly.

        `hazards` rows are [id, appeared_at, expired_at or None, local audience members,
        [[taxi, learned_at], ...]]; the shards' audiences are disjoint, so their union is
        the whole audience.
        """
        cores = self.cores.values()
        return {
            "n": len(self.cores),
            **self._counters(),
            "sent_max": max((c.sent for c in cores), default=0),
            "decision_s": sum(c.decision_s for c in cores),
            "decision_max_s": max((c.decision_max_s for c in cores), default=0.0),
            "hazards": [
                [
                    hid,
                    rec.appeared_at,
                    rec.expired_at,
                    sorted(rec.audience),
                    [[taxi, t] for taxi, t in sorted(rec.learned.items())],
                ]
                for hid, rec in self.records.items()
            ],
        }


def merge_sample(parts: Sequence[Part], n: int) -> dict[str, Any]:
    """The hazards columns of a merged metrics row.

    aware_fraction is the share of (taxi, active hazard) pairs of the audiences in which
    the taxi knows the hazard; None when no active hazard has an audience.
    """
    aware = sum(p["aware_sum"] for p in parts)
    audience = sum(p["audience_sum"] for p in parts)
    row: dict[str, Any] = {
        "hazards_active": max((p["hazards_active"] for p in parts), default=0),
        "aware": aware,
        "audience": audience,
        "aware_fraction": aware / audience if audience else None,
    }
    for column in _ROW_COLUMNS.values():
        row[column] = sum(p[column] for p in parts)
    return row


def results(scenario: Scenario, parts: Sequence[Partial], rounds: int) -> Results:
    """The summary's hazards results: awareness latency, outcomes, decisions and traffic."""
    h, n = scenario.hazards, scenario.fleet.count
    hazards: dict[int, list[Any]] = {}
    learned: dict[int, list[tuple[int, float]]] = {}
    for part in parts:
        for hid, appeared_at, expired_at, audience, times in part["hazards"]:
            entry = hazards.setdefault(hid, [appeared_at, expired_at, set()])
            entry[2].update(audience)
            learned.setdefault(hid, []).extend((taxi, t) for taxi, t in times)
    tracker = AwarenessTracker(h.radius_m, h.share)
    for hid in sorted(hazards):
        appeared_at, expired_at, audience = hazards[hid]
        tracker.record(hid, appeared_at, audience)
        for taxi, t in learned[hid]:
            tracker.learned(hid, taxi, t)
        if expired_at is not None:
            tracker.expired(hid, expired_at)
    summary = tracker.summary()
    total = {key: sum(p[key] for p in parts) for key in _COUNTERS}
    decisions = total["decisions"]
    readings = total["readings"]
    wrong = total["false_alarms"] + total["missed_decisions"]
    with_audience = int(summary["with_audience"] or 0)
    reached = int(summary["reached"] or 0)
    return {
        "awareness_latency": {key: summary[key] for key in ("p50", "p90", "p99")},
        # each reached hazard's latency, in the order they appeared: the distribution
        "awareness_latencies": [float(t) for t in tracker.latencies()],
        "share": h.share,
        "radius_m": h.radius_m,
        "simulated_s": rounds * scenario.gossip.period,
        "hazards": summary["hazards"],
        "with_audience": with_audience,
        "without_audience": summary["without_audience"],
        "reached": summary["reached"],
        "missed": summary["missed"],
        "pending": summary["pending"],
        "reached_fraction": reached / with_audience if with_audience else None,
        "false_alarms": total["false_alarms"],
        "false_alarms_heard": total["false_alarms_heard"],
        "missed_decisions": total["missed_decisions"],
        "readings": readings,
        "decisions": decisions,
        "decision_accuracy": 1.0 - wrong / readings if readings else None,
        "budget_ms": h.budget_ms,
        "budget_violations": total["budget_violations"],
        "decision_ms": {
            "mean": 1000.0 * sum(p["decision_s"] for p in parts) / decisions if decisions else None,
            "max": 1000.0 * max((p["decision_max_s"] for p in parts), default=0.0),
        },
        "rejected": total["rejected"],
        "untracked": total["untracked"],
        "messages": total["sent"],
        "messages_per_taxi": total["sent"] / n if n else 0.0,
        "messages_per_taxi_max": max((p["sent_max"] for p in parts), default=0),
        "voting": h.voting,
        "compound_judges": compound_judges(
            _config(scenario), generator(scenario.run.seed, Stream.SENSING, 2)
        ),
    }


_IMPLEMENTS: type[Workload] = Hazards  # mypy checks the class against the protocol
