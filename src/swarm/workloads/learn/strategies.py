"""How a fleet learns together: gossip averaging and federated averaging (the ring
all-reduce is in `allreduce`).

Each strategy is a sans-I/O core with the gossip cores' interface (`on_tick` once per
round, `on_message` per arrival, both returning sends), so learning agents run on the
embedded broker and over MQTT alike. Every update that arrives from a peer is decoded
and checked (shape, dtype, finite values) before it touches a model; a rejected one is
counted in `rejected` and dropped, so NaN from a faulty or hostile peer never poisons the
fleet model. What a device sends is compressed with its own `Compressor`; `update_bytes`
counts the array bytes of those payloads, the figure compression divides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from swarm import wire
from swarm.devices.energy import EnergyMeter
from swarm.devices.profiles import DeviceProfile
from swarm.protocols.gossip.core import ProtocolViolation, Send
from swarm.protocols.gossip.topology import Topology
from swarm.workloads.learn import SPEC
from swarm.workloads.learn.accounting import DeviceCheckpoints
from swarm.workloads.learn.compression import (
    Compressor,
    UpdateRejected,
    array_bytes,
    decompress,
)
from swarm.workloads.learn.learner import Learner
from swarm.workloads.learn.pool import TrainingPool
from swarm.workloads.learn.robust import Entry, RobustServer

__all__ = ["FedAvgCore", "GossipLearningCore", "LearningCore"]

STALL_LIMIT = 3  # ticks an all-reduce iteration may wait before it is given up
MAX_SAMPLES = 10**9  # a peer claiming more samples than this is lying
# The largest magnitude an update may hold: what float32 carries. An int8 payload's float64
# zero point and scale could otherwise deliver finite values near 1e308, whose sums and
# sample-weighted sums overflow to inf inside the averaging.
MAX_VALUE = float(np.finfo(np.float32).max)
for _kind in SPEC.kinds:
    wire.register_kind(_kind, SPEC.codes[_kind])


def _frozen(array: np.ndarray) -> np.ndarray:
    out = np.array(array)  # a copy of our own
    out.setflags(write=False)
    return out


def _round_of(body: Any) -> int:
    if type(body) is not dict or type(body.get("round")) is not int or body["round"] < 0:
        raise ProtocolViolation("a learning message is a map with a non-negative int 'round'")
    return body["round"]


class LearningCore:
    """A local learner on a shard of data, plus what every strategy counts."""

    def __init__(
        self,
        index: int,
        learner: Learner,
        X: np.ndarray,
        y: np.ndarray,
        *,
        compression: str = "none",
        topk_ratio: float = 0.1,
        epochs: int = 1,
        batch_size: int = 32,
        profile: DeviceProfile | None = None,
        period: float = 1.0,
        pool: TrainingPool | None = None,
        disk: DeviceCheckpoints | None = None,
    ) -> None:
        self.index = index
        self.disk = disk  # where it saves its model every checkpoint.interval, if anywhere
        # Where local training is queued to run with other agents' (see `prepare`).
        self.pool = pool
        # The device this learner runs on: training takes flop / its FLOP/s of simulated
        # time (sends wait for it: `pending_delay`), and every joule is metered.
        self.profile = profile
        self.period = period
        self.meter = EnergyMeter(profile) if profile is not None else None
        self.pending_delay = 0.0
        self.compute_s = 0.0  # simulated seconds spent training, in all
        self.learner = learner
        # The shard, read-only: no one changes a device's data behind its learner's back,
        # so the learner may check it once rather than at every local step.
        self.X, self.y = _frozen(X), _frozen(y)
        self.compression = compression
        self.topk_ratio = topk_ratio
        self.epochs = epochs
        self.batch_size = batch_size
        self.size = learner.size
        self.update_bytes = 0  # array bytes of the (compressed) updates this agent sent
        self.updates_sent = 0
        self.rejected = 0  # peer updates refused: wrong shape, dtype, NaN or inf
        self.samples_trained = 0
        self.active = True  # learning runs to the round limit

    @property
    def depleted(self) -> bool:
        """A device whose battery ran out neither trains nor talks any more."""
        return self.meter is not None and self.meter.depleted

    @property
    def resting(self) -> bool:
        """Flat, or below its battery reserve ([battery] reserve): it does no work."""
        return self.meter is not None and self.meter.resting

    def idle_round(self) -> None:
        if self.meter is not None:
            self.meter.idle(self.period)

    def start_round(self, round: int) -> None:
        """The round's idle power, and the device's checkpoint when one is due (its sends
        wait for it, at compute power)."""
        self.idle_round()
        disk = self.disk
        if disk is None or self.depleted:
            return
        now = round * self.period
        if disk.due(self.index, now):
            seconds = disk.save(self.index, now, self.learner.get_params())
            self.pending_delay += seconds
            if self.meter is not None:
                self.meter.compute(seconds)

    def train(self, rng: np.random.Generator, *, defer: bool = False) -> None:
        """Local training on the shard; with `defer`, queued in the pool until its flush
        (the figures below depend only on the sample count, known at once)."""
        if self.pool is None:
            samples = self.learner.train(
                self.X, self.y, epochs=self.epochs, batch_size=self.batch_size, rng=rng
            )
        else:
            samples = self.pool.add(self.learner, self.X, self.y, self.epochs, self.batch_size, rng)
            if not defer:
                self.pool.flush()
        self.samples_trained += samples
        if self.profile is not None and self.meter is not None:
            seconds = self.profile.compute_seconds(samples * self.learner.flops_per_sample())
            self.compute_s += seconds
            self.pending_delay += seconds
            self.meter.compute(seconds)

    def pack(self, compressor: Compressor, vector: np.ndarray) -> dict[str, Any]:
        return self.sent(compressor.compress(vector))

    def sent(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Count (and charge the radio for) one message carrying `payload`."""
        nbytes = array_bytes(payload)
        self.update_bytes += nbytes
        self.updates_sent += 1
        if self.meter is not None:
            self.meter.send(nbytes)
        return payload

    def unpack(self, payload: Any, size: int) -> np.ndarray | None:
        try:
            vector = decompress(payload, size)
        except UpdateRejected:
            self.rejected += 1
            return None
        if np.abs(vector).max() > MAX_VALUE:
            self.rejected += 1
            return None
        if self.meter is not None:
            self.meter.receive(array_bytes(payload))
        return vector

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        return self.learner.accuracy(X, y)

    def on_tick(self, round: int, rng: np.random.Generator) -> list[Send]:
        raise NotImplementedError

    def on_message(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        raise NotImplementedError


class GossipLearningCore(LearningCore):
    """Train locally, then push the model to `fanout` neighbours, who average with it.

    With top-k compression only the sent coordinates are averaged (the others carry no
    news), so sparse gossip still pulls models together.
    """

    def __init__(self, *args: Any, topology: Topology, fanout: int = 1, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.topology = topology
        self.fanout = fanout
        self.compressor = Compressor(self.compression, self.size, self.topk_ratio)
        self._prepared = False  # whether this activation's local work is done or queued
        self._asleep = False  # whether the device was depleted when it was

    def prepare(self, round: int, rng: np.random.Generator) -> None:
        """The round's local work: idle time, then training, queued in the pool so that
        the whole fleet's training runs as one batch before the first agent sends."""
        self._prepared = True
        self.start_round(round)
        self._asleep = self.resting
        if not self._asleep:
            self.train(rng, defer=True)

    def on_tick(self, round: int, rng: np.random.Generator) -> list[Send]:
        if not self._prepared:  # no preparation phase (agents act one at a time)
            self.prepare(round, rng)
        self._prepared = False
        if self._asleep:
            return []
        if self.pool is not None:
            self.pool.flush()
        params = self.learner.get_params()
        peers = self.topology.sample(self.index, rng, self.fanout)
        if self.compression != "topk":
            # A dense encoding depends on the parameters alone: encode them once for
            # every peer (each message still counts its bytes).
            update = self.compressor.compress(params)
            return [
                (peer, "model", {"round": round, "update": self.sent(update)}) for peer in peers
            ]
        sends: list[Send] = []
        for peer in peers:
            # A fresh top-k selection per message: error feedback on parameters (rather
            # than on updates) would resend old values.
            self.compressor = Compressor(self.compression, self.size, self.topk_ratio)
            update = self.pack(self.compressor, params)
            sends.append((peer, "model", {"round": round, "update": update}))
        return sends

    def on_message(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        if kind != "model":
            raise ProtocolViolation(f"gossip learning does not accept {kind!r}")
        _round_of(body)
        if self.resting:
            return []
        payload = body.get("update")
        theirs = self.unpack(payload, self.size)
        if theirs is None:
            return []
        mine = self.learner.get_params()
        if payload["mode"] == "topk":  # the sender's mode: a dense payload carries every value
            sent = np.asarray(payload["indices"], dtype=np.int64)
            mine[sent] = (mine[sent] + theirs[sent]) / 2
        else:
            mine += theirs
            mine *= 0.5  # halving is exact: the same bits as (mine + theirs) / 2
        self.learner.set_params(mine)
        return []


class FedAvgCore(LearningCore):
    """Federated averaging (McMahan et al. 2017) with an aggregator agent.

    Each round the aggregator samples `fraction_fit` of the clients and sends them the
    global model; each trains from it and returns its compressed update (new minus
    global) with its sample count; the aggregator applies the sample-weighted mean of
    the updates that arrived by its next tick, or what its `server`'s robust rule makes
    of them. The model the aggregator sends is the server's downlink and is not
    compressed; `update_bytes` counts the clients' uplink.

    No single point of failure: a client not asked for `PROBE_AFTER` ticks sends the
    aggregator a `beat`, which a live aggregator answers with one. With no answer within
    `ELECTION_AFTER` more ticks the client takes the next of `candidates` (the honest
    agents in index order) as the aggregator, and becomes it when that is itself; a
    client asked by a later candidate than its own follows it. A dead aggregator so costs
    PROBE_AFTER + ELECTION_AFTER rounds per dead candidate, and nothing while it lives
    but a beat each way per client every few rounds a client goes unasked.
    """

    def __init__(
        self,
        *args: Any,
        aggregator: int,
        clients: list[int],
        fraction_fit: float = 0.5,
        server: RobustServer | None = None,
        admitted: Callable[[int, float], bool] | None = None,
        candidates: list[int] | None = None,
        backup: int = 0,
        deadline: int = 1,
        selection: str = "random",
        intensity: Callable[[int, float], float] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(*args, **kw)
        self.aggregator = aggregator
        # How the aggregator picks a round's clients (learn.selection): at random; the best
        # charged first, as they last reported; or those on the cleanest grid at the
        # moment (`intensity(client, t)`, gCO2e/kWh). Ties are broken at random.
        if selection == "green" and intensity is None:
            raise ValueError("green selection needs the grid's intensity per client")
        self.selection = selection
        self.intensity = intensity
        self.reported: dict[int, float] = {}  # client -> battery share it last reported
        # Ticks a round may last: the aggregator applies what arrived once every asked
        # client answered (or, with backups, the needed number did), or at the deadline.
        # 1: every round is one tick; stragglers' updates come late and are counted so.
        self.deadline = deadline
        self._waited = 0
        # Backup workers (Chen et al. 2016, "Revisiting distributed synchronous SGD"):
        # ask `backup` clients more than needed, and aggregate as soon as the needed
        # number of updates arrived; the slowest ones then come late and are counted so.
        self.backup = backup
        self._need = 0
        self.members = [aggregator, *clients]  # everyone the job may ask (Sybils included)
        self.candidates = candidates if candidates is not None else [aggregator]
        self.silent = 0  # ticks since the aggregator last asked or answered this client
        self.elections = 0  # times this member moved on to the next candidate
        self.clients = clients
        self.fraction_fit = fraction_fit
        # The rule that combines updates (FedAvg's weighted mean unless a defense is set),
        # and the fleet's admission control: who may be asked in round r (Sybils join late).
        self.server = server if server is not None else RobustServer()
        self.admitted = admitted
        self.compressor = Compressor(self.compression, self.size, self.topk_ratio)
        self._downlink = Compressor("none", self.size)
        self._round = -1
        self._waiting: set[int] = set()
        self._entries: list[Entry] = []
        self.rounds_applied = 0
        self.unasked = 0  # updates for a past round or from a client not asked

    @property
    def is_aggregator(self) -> bool:
        return self.index == self.aggregator

    def _later(self, member: int) -> bool:
        """Whether `member` comes after our aggregator among the candidates."""
        return later_candidate(self.candidates, member, self.aggregator)

    def _elect(self) -> None:
        """The aggregator did not answer: the next candidate after it takes over."""
        self.aggregator = next_candidate(self.candidates, self.aggregator)
        self.elections += 1
        self.silent = 0
        if self.is_aggregator:  # ask everyone else; dead members simply never answer
            self.clients = [m for m in self.members if m != self.index]
            self._round, self._waiting, self._entries = -1, set(), []

    def on_tick(self, round: int, rng: np.random.Generator) -> list[Send]:
        self.start_round(round)
        if self.resting:
            return []
        if not self.is_aggregator:
            self.silent += 1
            if self.silent == PROBE_AFTER:
                return [(self.aggregator, "beat", {"round": round})]
            if self.silent < PROBE_AFTER + ELECTION_AFTER:
                return []
            self._elect()
            if not self.is_aggregator:
                return []
        elif self._waiting and self._waited < self.deadline - 1:
            self._waited += 1  # a synchronous round: the asked clients have not all answered
            return []
        self._apply()
        self._waited = 0
        clients = self.clients
        if self.admitted is not None:
            now = round * self.period
            clients = [c for c in clients if self.admitted(c, now)]
        k = max(1, round_half_up(self.fraction_fit * len(clients)))
        self._need = k
        asked = min(len(clients), k + self.backup)
        chosen = self._choose(clients, asked, round, rng)
        self._round, self._waiting = round, set(chosen)
        model = self._downlink.compress(self.learner.get_params())
        return [(c, "fit", {"round": round, "model": model}) for c in chosen]

    def _choose(
        self, clients: list[int], asked: int, round: int, rng: np.random.Generator
    ) -> list[int]:
        if self.selection == "random":
            return sorted(int(c) for c in rng.choice(clients, size=asked, replace=False))
        shuffled = [int(clients[int(i)]) for i in rng.permutation(len(clients))]
        if self.selection == "green":
            assert self.intensity is not None
            now, price = round * self.period, self.intensity
            ranked = sorted(shuffled, key=lambda c: price(c, now))
        else:  # battery: unknown clients count as full
            ranked = sorted(shuffled, key=lambda c: -self.reported.get(c, 1.0))
        return sorted(ranked[:asked])

    def battery_share(self) -> float:
        """What this device reports of its battery: 1 for mains or unmetered devices."""
        meter = self.meter
        if meter is None or meter.profile.mains or meter.profile.battery_j <= 0:
            return 1.0
        return max(0.0, min(1.0, meter.remaining_j / meter.profile.battery_j))

    def _apply(self) -> None:
        step = self.server.combine(self._entries) if self._entries else None
        if step is not None:
            self.learner.set_params(self.learner.get_params() + step)
            self.rounds_applied += 1
        self._entries = []
        self._waiting = set()

    def on_message(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        number = _round_of(body)
        if self.resting:
            return []
        if kind == "beat":
            if self.is_aggregator:
                return [(src, "beat", {"round": number})]  # "still here"
            if src == self.aggregator:
                self.silent = 0
            return []
        if kind == "fit" and self.is_aggregator and self._later(src):
            # We came back (repaired) to find a later candidate serving: step down to it.
            self.aggregator, self.clients, self.silent = src, [], 0
        if kind == "fit" and not self.is_aggregator:
            if src != self.aggregator and self._later(src):
                self.aggregator, self.silent = src, 0  # another client elected it first
            global_model = self.unpack(body.get("model"), self.size)
            if global_model is None or src != self.aggregator:
                return []
            self.silent = 0
            self.learner.set_params(global_model)
            self.train(rng)
            delta = self.learner.get_params() - global_model
            update = self.pack(self.compressor, delta)
            reply = {"round": number, "update": update, "samples": len(self.y)}
            if self.selection == "battery":
                reply["battery"] = self.battery_share()
            return [(src, "update", reply)]
        if kind == "update" and self.is_aggregator:
            samples = body.get("samples")
            if type(samples) is not int or not 1 <= samples <= MAX_SAMPLES:
                self.rejected += 1
                return []
            battery = body.get("battery")
            if battery is not None:
                if type(battery) is not float or not 0.0 <= battery <= 1.0:
                    self.rejected += 1  # a battery share is a float in [0, 1]
                    return []
                self.reported[src] = battery
            if number != self._round or src not in self._waiting:
                self.unasked += 1  # late (a past round) or unasked: not an error, just stale
                return []
            delta = self.unpack(body.get("update"), self.size)
            if delta is None:
                return []
            self._waiting.discard(src)
            self._entries.append(Entry(src, samples, delta))
            if not self._waiting or (self.backup and len(self._entries) >= self._need):
                self._apply()
            return []
        raise ProtocolViolation(f"fedavg does not accept {kind!r} here")


PROBE_AFTER = 3  # ticks unasked before a client checks that its aggregator lives
ELECTION_AFTER = 2  # ticks without an answer before it moves to the next candidate


def later_candidate(order: Sequence[int], member: int, than: int) -> bool:
    """Whether `member` comes after `than` in the order of who may serve (a server that
    is not a candidate comes before them all)."""
    return member in order and (than not in order or order.index(member) > order.index(than))


def next_candidate(order: Sequence[int], current: int) -> int:
    """Who serves when `current` stops answering: the next in `order`, round the end."""
    at = order.index(current) if current in order else -1
    return order[(at + 1) % len(order)]


def round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5))
