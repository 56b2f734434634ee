"""The mesh workload: hearables relay readings of a shared field over a duty-cycled mesh.

A `Workload` (see `swarm.workloads.base`): the fleet asks it for cores, calls
`Mesh.step` before the agents act in each round, and asks for the figures its metrics
rows and summary report.

The world is a true scalar field over the fleet's area, in [0, 1], made of a few plane
waves that drift with period `mesh.field_period`. Each round a device is awake with
probability `mesh.duty_cycle`; an awake device reads the field where it stands (plus
noise of `mesh.noise` field ranges) and sends its freshest `mesh.entries` view entries,
its own reading first, to `gossip.fanout` random topology neighbours. Its radio is off
while it sleeps, so a message reaching a sleeping device is lost (counted `slept`).

Every process draws the field, who is awake and every reading from the seed, for the
whole fleet, so all shards agree on them; only views, batteries and messages are local.
Figures use round time (round * gossip.period), never the wall clock, and every sum is
an integer (errors in fixed point), so one process and N shards report the same bytes.

Energy model, per device, from its class profile (devices.toml):
- awake rounds charge idle_w for gossip.period; asleep rounds charge SLEEP_SHARE of that
  (the radio is off; a clock and a sensor keep running);
- each message sent charges tx_j_per_byte and each message heard rx_j_per_byte for
  ENVELOPE_BYTES plus the msgpack size of the body, per recipient (BLE links are unicast);
- a device whose battery runs flat stops reading, sending and hearing for good.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from swarm import wire
from swarm.devices.energy import EnergyMeter
from swarm.protocols.gossip.core import Core, ProtocolViolation, Send
from swarm.protocols.gossip.topology import Topology
from swarm.scenario import Scenario, ScenarioError
from swarm.seeding import Stream, generator
from swarm.workloads.base import BuildContext, Part, Partial, Results, Row, Status, Workload
from swarm.workloads.mesh import SPEC
from swarm.workloads.mesh.section import SLEEP_SHARE

__all__ = [
    "DRIFT_BINS",
    "ENVELOPE_BYTES",
    "MESH",
    "SLEEP_SHARE",
    "Field",
    "Mesh",
    "MeshCore",
    "merge_sample",
    "results",
]

MESH = wire.register_kind("mesh", SPEC.codes["mesh"])  # the one message kind of this workload
# Plane waves summed into the field; few enough to stay smooth, enough to not look flat.
COMPONENTS = 3
# The swarm envelope around a body (version, kind code, sender index, sequence, time in
# microseconds, hops): 14 bytes for agent 150's 300th message at t = 120 s, measured
# with wire.pack (11 to 17 over a run's range of indices, counters and times).
ENVELOPE_BYTES = 14
# A reading may be stamped one round ahead of the receiver: shards on a real broker are
# not in perfect step. Later rounds are a protocol violation.
ROUND_SLACK = 1
# drift_bits compares histograms over DRIFT_BINS equal bins of the field's range [0, 1]
# (values outside fall in the edge bins), each bin smoothed by SMOOTHING counts so that
# an empty bin costs a finite number of bits.
DRIFT_BINS = 16
SMOOTHING = 0.5
# Errors are summed in fixed point (units of 2**-20 field ranges) so that sums are exact
# in any order, hence equal across shardings; an error above ERROR_CAP counts as the cap.
ERROR_SCALE = 1 << 20
ERROR_CAP = 1e3
_BODY_KEYS = frozenset({"entries"})


class Field:
    """The true field: COMPONENTS plane waves, periodic in time with `period`, in [0, 1].

    Every shard builds it from the same seed and evaluates it for the whole fleet, with
    element-wise operations only (no BLAS), so every process gets the same bits.
    """

    def __init__(
        self, positions: np.ndarray, scale_km: float, period: float, rng: np.random.Generator
    ) -> None:
        k = COMPONENTS
        angle = rng.uniform(0.0, 2 * math.pi, k)
        wavelength = scale_km * rng.uniform(2.0, 6.0, k)  # wider than a neighbourhood
        phase = rng.uniform(0.0, 2 * math.pi, k)
        weights = rng.uniform(0.5, 1.0, k)
        wave = 2 * math.pi / wavelength
        x, y = positions[:, 0], positions[:, 1]
        self._space = [
            x * (wave[c] * math.cos(angle[c])) + y * (wave[c] * math.sin(angle[c])) + phase[c]
            for c in range(k)
        ]
        # Harmonics of 1 / period: the sum repeats exactly every `period` seconds.
        self._omega = [2 * math.pi * (c + 1) / period for c in range(k)]
        self._weights = (weights / weights.sum()).tolist()

    def at(self, t: float) -> np.ndarray:
        """The field at every device at simulated time `t` (seconds)."""
        total = np.zeros_like(self._space[0])
        for space, omega, weight in zip(self._space, self._omega, self._weights, strict=True):
            total += weight * np.sin(space + omega * t)
        return 0.5 + 0.5 * total


class _Views:
    """Every local device's view entries in flat arrays, so figures over them are vectorised.

    One slot per (device, source) ever known; a slot is only ever overwritten by a fresher
    entry. `version` changes with every write, so derived figures can be cached.
    """

    __slots__ = ("hops", "round", "size", "source", "value", "version")

    def __init__(self, capacity: int = 1024) -> None:
        self.source = np.zeros(capacity, dtype=np.int32)
        self.value = np.zeros(capacity, dtype=np.float64)
        self.round = np.zeros(capacity, dtype=np.int64)
        self.hops = np.zeros(capacity, dtype=np.int16)
        self.size = 0
        self.version = 0

    def add(self, source: int, value: float, round: int, hops: int) -> int:
        if self.size == self.source.size:
            for name in ("source", "value", "round", "hops"):
                old = getattr(self, name)
                grown = np.zeros(2 * old.size, dtype=old.dtype)
                grown[: old.size] = old
                setattr(self, name, grown)
        slot = self.size
        self.size += 1
        self.source[slot] = source
        self.set(slot, value, round, hops)
        return slot

    def set(self, slot: int, value: float, round: int, hops: int) -> None:
        self.value[slot] = value
        self.round[slot] = round
        self.hops[slot] = hops
        self.version += 1


@dataclass(slots=True)
class _Context:
    """What every core of a process shares: the graph, the views and this round's world."""

    topology: Topology
    views: _Views
    n: int
    fanout: int
    entries: int
    max_hops: int
    awake: np.ndarray
    round: int = -1  # the last round stepped
    truth: np.ndarray | None = None
    reached: set[tuple[int, int]] = field(default_factory=set)  # (round, source) heard


def _number(value: Any) -> bool:
    """A finite int or float (ints beyond 2**53 would not survive float conversion)."""
    if type(value) is float:
        return math.isfinite(value)
    return type(value) is int and -(2**53) <= value <= 2**53


class MeshCore:
    """One hearable: reads the field when awake, keeps the freshest entry per source, relays."""

    def __init__(self, index: int, ctx: _Context, meter: EnergyMeter) -> None:
        self.index = index
        self.meter = meter
        self._ctx = ctx
        self._slots: dict[int, int] = {}  # source -> slot in ctx.views (own entry included)
        self._remote: list[int] = []  # slots of other sources
        self._pending: float | None = None  # this round's reading, while awake
        self.readings = 0  # own readings taken
        self.messages = 0  # messages sent (one per recipient)
        self.heard = 0  # messages received while awake and powered
        self.slept = 0  # messages that arrived while the radio was off
        self.unpowered = 0  # messages that arrived after the battery ran flat
        self.beyond = 0  # entries dropped because they would exceed mesh.max_hops
        # mesh.power_budget: joules a round awake may cost at worst, the watts allowed on
        # average (0: no budget), the seconds lived so far and the wake-ups given up.
        self.wake_cost = 0.0
        self.budget_w = 0.0
        self.elapsed = 0.0
        self.skipped = 0

    @property
    def active(self) -> bool:
        """Always: the field keeps changing, so there is always something to relay."""
        return True

    @property
    def depleted(self) -> bool:
        return self.meter.depleted

    def view(self) -> dict[int, tuple[float, int, int]]:
        """source -> (value, round measured, hops) for every source this device knows."""
        v = self._ctx.views
        return {
            s: (float(v.value[slot]), int(v.round[slot]), int(v.hops[slot]))
            for s, slot in self._slots.items()
        }

    def begin_round(self, awake: bool, reading: float, period: float) -> None:
        """Charge the round's idle draw; queue `reading` if awake and still powered."""
        self._pending = None
        if self.meter.depleted:
            return
        # Awake only if even the worst case keeps the mean draw within budget: then spent
        # <= budget x time at every round boundary (sleeping draws less than the budget).
        if awake and self.meter.resting:  # below its reserve: the radio stays off
            awake = False
            self._ctx.awake[self.index] = False
        allowance = self.budget_w * (self.elapsed + period)
        if awake and self.budget_w > 0 and self.meter.spent_j + self.wake_cost > allowance:
            awake = False
            self.skipped += 1
            self._ctx.awake[self.index] = False  # its radio stays off: messages slept
        self.elapsed += period
        if self.meter.idle(period if awake else period * SLEEP_SHARE) and awake:
            self._pending = reading

    def on_tick(self, round: int, rng: np.random.Generator) -> list[Send]:
        reading, self._pending = self._pending, None
        if reading is None or self.meter.depleted:
            return []
        ctx = self._ctx
        self.readings += 1
        self._store(self.index, reading, ctx.round, 0)
        body = self._body()
        nbytes = ENVELOPE_BYTES + len(msgpack.packb(body))
        sends: list[Send] = []
        for peer in ctx.topology.sample(self.index, rng, ctx.fanout):
            if not self.meter.send(nbytes):
                break  # ran flat mid-send: this and later copies never leave
            sends.append((peer, MESH, body))
        self.messages += len(sends)
        return sends

    def on_message(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        if kind != MESH:
            raise ProtocolViolation(f"a hearable does not accept {kind!r}")
        entries = self._parse(src, body)
        ctx = self._ctx
        if not ctx.awake[self.index]:
            self.slept += 1
            return []
        if self.meter.depleted or not self.meter.receive(ENVELOPE_BYTES + len(msgpack.packb(body))):
            self.unpowered += 1
            return []
        self.heard += 1
        first = entries[0]
        ctx.reached.add((first[2], first[0]))  # the sender's own reading reached someone
        for source, value, measured, hops in entries:
            if source == self.index:
                continue  # a device's own reading is fresher than any relayed copy
            if hops + 1 > ctx.max_hops:
                self.beyond += 1
                continue
            self._store(source, value, measured, hops + 1)
        return []

    def _parse(self, src: int, body: Any) -> list[tuple[int, float, int, int]]:
        """The entries as (source, value, round, hops), or ProtocolViolation."""
        ctx = self._ctx
        if type(body) is not dict or body.keys() != _BODY_KEYS:
            raise ProtocolViolation(f"a mesh message is a map of {sorted(_BODY_KEYS)}")
        raw = body["entries"]
        if type(raw) is not list or not 1 <= len(raw) <= ctx.entries:
            raise ProtocolViolation(f"mesh entries must be a list of 1 to {ctx.entries} entries")
        latest = max(ctx.round, 0) + ROUND_SLACK
        seen: set[int] = set()
        out: list[tuple[int, float, int, int]] = []
        for position, entry in enumerate(raw):
            if type(entry) is not list or len(entry) != 4:
                raise ProtocolViolation("a mesh entry is [source, value, round, hops]")
            source, value, measured, hops = entry
            if type(source) is not int or not 0 <= source < ctx.n or source in seen:
                raise ProtocolViolation(f"entry sources must be distinct ints in [0, {ctx.n})")
            if not _number(value):
                raise ProtocolViolation("an entry value must be a finite number")
            if type(measured) is not int or not 0 <= measured <= latest:
                raise ProtocolViolation(f"an entry round must be an int in [0, {latest}]")
            if type(hops) is not int or not 0 <= hops <= ctx.max_hops:
                raise ProtocolViolation(f"entry hops must be an int in [0, {ctx.max_hops}]")
            # The sender's own fresh reading comes first; relayed entries travelled a hop.
            if (position == 0) != (hops == 0) or (position == 0 and source != src):
                raise ProtocolViolation("the first entry, and only it, is the sender's own")
            seen.add(source)
            out.append((source, float(value), measured, hops))
        return out

    def _store(self, source: int, value: float, measured: int, hops: int) -> None:
        """Keep the entry if it is fresher than ours (same round: if it took fewer hops)."""
        views = self._ctx.views
        slot = self._slots.get(source)
        if slot is None:
            slot = views.add(source, value, measured, hops)
            self._slots[source] = slot
            if source != self.index:
                self._remote.append(slot)
            return
        known = int(views.round[slot])
        if measured > known or (measured == known and hops < int(views.hops[slot])):
            views.set(slot, value, measured, hops)

    def _body(self) -> dict[str, Any]:
        """Own entry first, then the freshest relayable entries (ties: fewer hops, source)."""
        ctx = self._ctx
        views = ctx.views
        own = self._slots[self.index]
        entries: list[list[Any]] = [[self.index, float(views.value[own]), int(views.round[own]), 0]]
        room = ctx.entries - 1
        if room and self._remote:
            slots = np.asarray(self._remote, dtype=np.intp)
            slots = slots[views.hops[slots] < ctx.max_hops]  # would arrive beyond max_hops
            order = np.lexsort((views.source[slots], views.hops[slots], -views.round[slots]))
            chosen = slots[order[:room]]
            entries += map(
                list,
                zip(
                    views.source[chosen].tolist(),
                    views.value[chosen].tolist(),
                    views.round[chosen].tolist(),
                    views.hops[chosen].tolist(),
                    strict=True,
                ),
            )
        return {"entries": entries}


@dataclass(slots=True)
class _Snapshot:
    """Figures of the local views against the truth of the last stepped round."""

    entries: int  # entries about other sources
    age_sum: int  # rounds, over those entries
    error_sum: int  # ERROR_SCALE units, over those entries
    truth_hist: list[int]  # the truth at those entries' sources
    view_hist: list[int]  # those entries' values
    ages: np.ndarray  # entries by age in rounds
    hop_count: np.ndarray  # all entries (own ones at hop 0) by hops
    hop_error: list[int]  # their error sums by hops, ERROR_SCALE units


def _histogram(values: np.ndarray) -> list[int]:
    bins = np.clip(np.floor(values * DRIFT_BINS), 0, DRIFT_BINS - 1).astype(np.intp)
    return np.bincount(bins, minlength=DRIFT_BINS).tolist()


def _add_counts(total: np.ndarray, more: np.ndarray) -> np.ndarray:
    if more.size > total.size:
        total, more = more, total
    total = total.copy()
    total[: more.size] += more
    return total


class Mesh:
    """The shared field and duty cycles of a run, and the cores of this process's devices."""

    def __init__(
        self,
        scenario: Scenario,
        local: range,
        topology: Topology,
        truth: Field,
        ctx: _Context,
        cores: dict[int, MeshCore],
        now: Callable[[], float],
    ) -> None:
        self.scenario = scenario
        self.local = local
        self.topology = topology
        self.field = truth
        self.cores = cores
        self.sybils: dict[int, Core] = {}  # no Sybil behaviour attacks the mesh
        self.now = now  # the fleet's clock; figures use round time so that shards agree
        self._ctx = ctx
        self._snap: _Snapshot | None = None
        self._snap_key: tuple[int, int] = (-1, -1)
        self._accounted = -1  # the last round whose views were added to the run totals
        self._ages = np.zeros(0, dtype=np.int64)
        self._hop_count = np.zeros(ctx.max_hops + 1, dtype=np.int64)
        self._hop_error = [0] * (ctx.max_hops + 1)
        self._profiles: dict[int, Any] = {}  # device profiles, for a repaired device's meter
        self._gone: dict[str, int] = {}  # counts of cores replaced by repaired devices

    @property
    def awake(self) -> np.ndarray:
        """Who has the radio on this round (by agent index)."""
        return self._ctx.awake

    @classmethod
    def build(cls, ctx: BuildContext) -> Mesh:
        """Cores for the devices in `ctx.local` (a mesh admits no Sybils)."""
        scenario, topology, local, now = ctx.scenario, ctx.topology, ctx.local, ctx.now
        placement = ctx.placement
        n, seed = scenario.fleet.count, scenario.run.seed
        if topology.n != n:
            raise ValueError(f"topology has {topology.n} agents, the fleet {n}")
        fanout = scenario.gossip.fanout
        if fanout > topology.min_degree:
            raise ScenarioError(
                f"gossip.fanout = {fanout}: larger than the {topology.min_degree} neighbours "
                f"some devices have on topology {topology.name!r}"
            )
        m = scenario.mesh
        scale = scenario.fleet.region_radius_km or 1.0
        truth = Field(placement.positions, scale, m.field_period, generator(seed, Stream.MESH))
        shared = _Context(
            topology=topology,
            views=_Views(),
            n=n,
            fanout=fanout,
            entries=m.entries,
            max_hops=m.max_hops,
            awake=np.zeros(n, dtype=bool),
        )
        profiles = scenario.profiles()
        cores = {i: MeshCore(i, shared, EnergyMeter(profiles[placement.kinds[i]])) for i in local}
        mesh = cls(scenario, local, topology, truth, shared, cores, now)
        mesh._profiles = {i: profiles[placement.kinds[i]] for i in local}
        for core in cores.values():
            mesh._budget(core)
        return mesh

    def _budget(self, core: MeshCore) -> None:
        """Give a core its power budget, and the worst a round awake can cost it: the idle
        draw, a full message to each of its fanout, and one from every neighbour."""
        budget = self.scenario.mesh.power_budget
        if budget <= 0:
            return
        profile, ctx = self._profiles[core.index], self._ctx
        largest = ENVELOPE_BYTES + 16 + 24 * ctx.entries  # msgpack of a full body, at most
        core.budget_w = budget
        core.wake_cost = (
            profile.idle_w * self.scenario.gossip.period
            + ctx.fanout * largest * profile.tx_j_per_byte
            + ctx.topology.degree(core.index) * largest * profile.rx_j_per_byte
        )

    def awake_at(self, round: int) -> np.ndarray:
        """Who is awake in `round` (every shard draws the same), and the draws after it."""
        rng = generator(self.scenario.run.seed, Stream.MESH, 1, round)
        return self._wake(round, rng)

    def _wake(self, round: int, rng: np.random.Generator) -> np.ndarray:
        """Random wake: each device with probability duty_cycle. Synchronized: all of them
        in the rounds where floor(round x duty_cycle) steps, so their share is the duty
        cycle, evenly spaced. The draw is taken either way, so the readings' noise after
        it is the same whatever the wake."""
        mesh = self.scenario.mesh
        draw = rng.random(self._ctx.n)
        if mesh.wake == "random":
            return draw < mesh.duty_cycle
        d = mesh.duty_cycle
        slot = math.floor((round + 1) * d + 1e-9) > math.floor(round * d + 1e-9)
        return np.full(self._ctx.n, slot)

    def step(self, round: int) -> None:
        """Close the last round's books, then draw who is awake and what they read in `round`."""
        ctx = self._ctx
        if round <= ctx.round:
            raise ValueError(f"step({round}) after step({ctx.round})")
        if ctx.round >= 0 and self._accounted != ctx.round:
            self._ages, self._hop_count, self._hop_error = self._totals()
            self._accounted = ctx.round
        s, n = self.scenario, ctx.n
        rng = generator(s.run.seed, Stream.MESH, 1, round)
        awake = self._wake(round, rng)  # as awake_at draws it
        noise = rng.standard_normal(n)
        period = s.gossip.period
        truth = self.field.at(round * period)
        readings = (truth + s.mesh.noise * noise).tolist()
        ctx.round, ctx.awake, ctx.truth = round, awake, truth
        flags = awake.tolist()
        for i, core in self.cores.items():
            core.begin_round(flags[i], readings[i], period)

    # -- metrics ---------------------------------------------------------------------------
    def _snapshot(self) -> _Snapshot:
        ctx, views = self._ctx, self._ctx.views
        key = (views.version, ctx.round)
        if self._snap is not None and key == self._snap_key:
            return self._snap
        size, top = views.size, ctx.max_hops + 1
        if ctx.truth is None or size == 0:
            empty = [0] * DRIFT_BINS
            snap = _Snapshot(
                0,
                0,
                0,
                empty,
                list(empty),
                np.zeros(0, np.int64),
                np.zeros(top, np.int64),
                [0] * top,
            )
        else:
            source = views.source[:size]
            value = views.value[:size]
            hops = views.hops[:size].astype(np.intp)
            truth = ctx.truth[source]
            error = np.minimum(np.abs(value - truth), ERROR_CAP)
            units = np.rint(error * ERROR_SCALE).astype(np.int64)
            hop_error = np.zeros(top, dtype=np.int64)
            np.add.at(hop_error, hops, units)
            remote = hops > 0
            ages = np.maximum(ctx.round - views.round[:size][remote], 0)
            snap = _Snapshot(
                entries=int(remote.sum()),
                age_sum=int(ages.sum()),
                error_sum=int(units[remote].sum()),
                truth_hist=_histogram(truth[remote]),
                view_hist=_histogram(value[remote]),
                ages=np.bincount(ages),
                hop_count=np.bincount(hops, minlength=top).astype(np.int64),
                hop_error=hop_error.tolist(),
            )
        self._snap, self._snap_key = snap, key
        return snap

    def _totals(self) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """The run totals with the last stepped round added, unless it is already in them."""
        if self._ctx.round < 0 or self._accounted == self._ctx.round:
            return self._ages, self._hop_count, self._hop_error
        snap = self._snapshot()
        return (
            _add_counts(self._ages, snap.ages),
            self._hop_count + snap.hop_count,
            [a + b for a, b in zip(self._hop_error, snap.hop_error, strict=True)],
        )

    def _counters(self) -> dict[str, int]:
        """Cumulative counts of this process's devices, those of replaced cores included."""
        counts = self._core_counters(self.cores.values())
        return {key: value + self._gone.get(key, 0) for key, value in counts.items()}

    @staticmethod
    def _core_counters(cores: Iterable[MeshCore]) -> dict[str, int]:
        return {
            "readings": sum(c.readings for c in cores),
            "messages": sum(c.messages for c in cores),
            "heard": sum(c.heard for c in cores),
            "slept": sum(c.slept for c in cores),
            "unpowered": sum(c.unpowered for c in cores),
            "beyond_hops": sum(c.beyond for c in cores),
            "depleted": sum(c.depleted for c in cores),
            "energy_nj": sum(round(c.meter.spent_j * 1e9) for c in cores),
        }

    def sample(self, round: int = 0, in_flight: int = 0) -> Part:
        """Additive figures of this process's views after the last stepped round."""
        snap = self._snapshot()
        awake = self._ctx.awake
        return {
            "mesh_n": len(self.cores),
            "mesh_period": self.scenario.gossip.period,  # the same everywhere: not summed
            "mesh_awake": sum(1 for i, c in self.cores.items() if awake[i] and not c.depleted),
            "mesh_entries": snap.entries,
            "mesh_age_sum": snap.age_sum,
            "mesh_error_sum": snap.error_sum,
            "mesh_truth_hist": snap.truth_hist,
            "mesh_view_hist": snap.view_hist,
            **{f"mesh_{key}": value for key, value in self._counters().items()},
        }

    def attack_partial(self) -> Partial:
        return {}  # no Sybil behaviour attacks the mesh

    def live_status(self) -> Status:
        return {}

    def asleep(self, index: int) -> bool:
        return index < self._ctx.awake.size and not self._ctx.awake[index]

    def respawn(self, index: int) -> MeshCore:
        """Back with an empty view and a full battery (a swapped or recharged device); the
        entries its old view held stay in the figures, as a crashed device's do."""
        old = self.cores.get(index)
        if old is not None:  # what it counted and spent stays in the run's figures
            for key, value in self._core_counters([old]).items():
                self._gone[key] = self._gone.get(key, 0) + value
        self.cores[index] = core = MeshCore(index, self._ctx, EnergyMeter(self._profiles[index]))
        self._budget(core)
        return core

    def position(self, index: int) -> tuple[float, float] | None:
        return None

    def marked(self, index: int) -> bool:
        return False

    def meters(self) -> Iterator[tuple[int, EnergyMeter]]:
        return ((i, c.meter) for i, c in self.cores.items())

    def set_fanout(self, fanout: int) -> int:
        return 0  # the mesh's fanout is fixed by its radios (mesh cores share one context)

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

        `reached` rows are [round, bits]: one bit per device awake in that round (in index
        order, the same in every process), set when a local device heard its reading.
        """
        snap = self._snapshot()
        ages, hop_count, hop_error = self._totals()
        by_round: dict[int, list[int]] = {}
        for measured, source in self._ctx.reached:
            by_round.setdefault(measured, []).append(source)
        reached = []
        for measured in sorted(by_round):
            bits = np.isin(np.flatnonzero(self.awake_at(measured)), by_round[measured])
            reached.append([measured, np.packbits(bits).tobytes()])
        lived = [c for c in self.cores.values() if c.elapsed > 0]
        return {
            "n": len(self.cores),
            # the highest mean draw of a device over its life, and the wake-ups its
            # budget made devices give up
            "power_max_w": max((c.meter.spent_j / c.elapsed for c in lived), default=0.0),
            "budget_skips": sum(c.skipped for c in self.cores.values()),
            **self._counters(),
            "entries": snap.entries,
            "error_sum": snap.error_sum,
            "truth_hist": snap.truth_hist,
            "view_hist": snap.view_hist,
            "ages": ages.tolist(),
            "hop_count": hop_count.tolist(),
            "hop_error": hop_error,
            "reached": reached,
        }


_COUNTERS = ("readings", "messages", "heard", "slept", "unpowered", "beyond_hops", "depleted")


def drift_bits(truth_hist: list[int], view_hist: list[int]) -> float | None:
    """KL(truth || views) in bits over the smoothed histograms; None without entries.

    Both histograms count the same entries: the true value at each entry's source and the
    value the entry holds. 0 means the fleet's views are distributed like the truth; it
    grows as views go stale or noisy. Weighting the truth by the entries keeps coverage
    (which sources are known how often) out of the figure.
    """
    total_p, total_q = sum(truth_hist), sum(view_hist)
    if not total_p or not total_q:
        return None
    bins = len(truth_hist)
    p = [(c + SMOOTHING) / (total_p + bins * SMOOTHING) for c in truth_hist]
    q = [(c + SMOOTHING) / (total_q + bins * SMOOTHING) for c in view_hist]
    return math.fsum(pi * math.log2(pi / qi) for pi, qi in zip(p, q, strict=True))


def merge_sample(parts: Sequence[Part], n: int) -> dict[str, Any]:
    """The mesh columns of a merged metrics row.

    coverage: share of (device, other source) pairs with a view entry; age_of_information:
    mean age of those entries (simulated s); view_error: their mean |value - current
    truth at the source|; drift_bits: see `drift_bits`. None where there are no entries.
    """
    period = parts[0]["mesh_period"]
    entries = sum(p["mesh_entries"] for p in parts)
    truth = [sum(col) for col in zip(*(p["mesh_truth_hist"] for p in parts), strict=True)]
    view = [sum(col) for col in zip(*(p["mesh_view_hist"] for p in parts), strict=True)]
    row: dict[str, Any] = {
        "coverage": entries / (n * (n - 1)) if n > 1 else None,
        "age_of_information": (
            sum(p["mesh_age_sum"] for p in parts) * period / entries if entries else None
        ),
        "view_error": (
            sum(p["mesh_error_sum"] for p in parts) / ERROR_SCALE / entries if entries else None
        ),
        "drift_bits": drift_bits(truth, view),
        "awake": sum(p["mesh_awake"] for p in parts),
        "energy_j": sum(p["mesh_energy_nj"] for p in parts) / 1e9,
    }
    for key in _COUNTERS:
        row[key] = sum(p[f"mesh_{key}"] for p in parts)
    return row


def _percentile(counts: list[int], q: float) -> int:
    """Nearest rank: the smallest value with at least q of the counts at or below it."""
    rank = max(1, math.ceil(q * sum(counts)))
    seen = 0
    for value, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return value
    raise ValueError("no counts")  # pragma: no cover - callers check for counts


def results(scenario: Scenario, parts: Sequence[Partial], rounds: int) -> Results:
    """The summary's mesh results, merged exactly from every process's partial results.

    - delivery_ratio: share of the readings taken that at least one other device heard
      (a reading travels further only through the devices that heard it first);
    - age_of_information: mean, p50, p90 age (simulated s) of the view entries about other
      sources, over every round's views (a time average, not only the last round);
    - error_by_hops[h]: mean |value - current truth at the source| of the entries that
      travelled h hops, over every round (hop 0: devices' own readings); None where empty;
    - drift_bits: `drift_bits` of the views after the last round;
    - coverage, view_error: as in the metrics rows, after the last round;
    - energy_j: joules spent, in total and per device; depleted: devices that ran flat;
      joules_per_reading_reached: energy per reading that reached another device.
    """
    n, period = scenario.fleet.count, scenario.gossip.period
    total = {key: sum(p[key] for p in parts) for key in _COUNTERS}
    energy_j = sum(p["energy_nj"] for p in parts) / 1e9
    bits: dict[int, np.ndarray] = {}
    for part in parts:
        for measured, packed in part["reached"]:
            row = np.frombuffer(packed, dtype=np.uint8)
            bits[measured] = bits[measured] | row if measured in bits else row
    reached = sum(int(np.unpackbits(row).sum()) for row in bits.values())
    ages = np.zeros(0, dtype=np.int64)
    for part in parts:
        ages = _add_counts(ages, np.asarray(part["ages"], dtype=np.int64))
    counts = ages.tolist()
    observed = sum(counts)
    aoi: dict[str, float | None] = {"mean": None, "p50": None, "p90": None}
    if observed:
        aoi = {
            "mean": sum(a * c for a, c in enumerate(counts)) * period / observed,
            "p50": _percentile(counts, 0.5) * period,
            "p90": _percentile(counts, 0.9) * period,
        }
    hop_count = [sum(col) for col in zip(*(p["hop_count"] for p in parts), strict=True)]
    hop_error = [sum(col) for col in zip(*(p["hop_error"] for p in parts), strict=True)]
    entries = sum(p["entries"] for p in parts)
    truth = [sum(col) for col in zip(*(p["truth_hist"] for p in parts), strict=True)]
    view = [sum(col) for col in zip(*(p["view_hist"] for p in parts), strict=True)]
    readings = total["readings"]
    return {
        "delivery_ratio": reached / readings if readings else None,
        "readings": readings,
        "readings_reached": reached,
        "age_of_information": aoi,
        "error_by_hops": [
            e / ERROR_SCALE / c if c else None for e, c in zip(hop_error, hop_count, strict=True)
        ],
        "entries_by_hops": hop_count,
        "drift_bits": drift_bits(truth, view),
        "coverage": entries / (n * (n - 1)),
        "view_error": sum(p["error_sum"] for p in parts) / ERROR_SCALE / entries
        if entries
        else None,
        "energy_j": {"total": energy_j, "per_device_mean": energy_j / n},
        # energy per useful outcome: joules per reading that reached another device
        "joules_per_reading_reached": energy_j / reached if reached else None,
        "device_power_w": {
            "mean": energy_j / (n * rounds * period) if rounds else None,
            "max": max(p["power_max_w"] for p in parts),
        },
        "power_budget_w": scenario.mesh.power_budget,
        "budget_skips": sum(p["budget_skips"] for p in parts),
        "depleted": total["depleted"],
        "slept": total["slept"],
        "unpowered": total["unpowered"],
        "beyond_hops": total["beyond_hops"],
        "messages": total["messages"],
        "messages_per_device": total["messages"] / n,
        "heard": total["heard"],
        "duty_cycle": scenario.mesh.duty_cycle,
        "simulated_s": rounds * period,
    }


_IMPLEMENTS: type[Workload] = Mesh  # mypy checks the class against the protocol
