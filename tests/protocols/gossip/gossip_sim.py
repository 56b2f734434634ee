"""A round simulator for sans-I/O gossip cores, with no event loop and no broker.

Each round every core ticks, then every message sent (and every reply it triggers, and so
on) is delivered before the round ends. Which pending event goes next is up to a chooser
(in order, last first, seeded shuffle, or drawn by hypothesis); ticks can be mixed in
with deliveries. Messages may be lost or duplicated. Every body travels as bytes through
`swarm.wire.pack` and `swarm.wire.decode`, exactly as between agents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from swarm import wire
from swarm.protocols.gossip.topology import Topology, build_topology


@dataclass(slots=True)
class Packet:
    """One message copy between two cores."""

    round: int
    src: int
    dst: int
    kind: str
    payload: bytes

    @property
    def body(self) -> Any:
        return wire.decode(self.payload).body


@dataclass(slots=True)
class Tick:
    """A core's turn to act in the round (only queued when ticks are interleaved)."""

    node: int


Event = Packet | Tick
# Given the pending events, the index of the one to run next.
Chooser = Callable[[Sequence[Event]], int]


# ------------------------------------------------------------------------------- choosers


def in_order() -> Chooser:
    return lambda pending: 0


def last_first() -> Chooser:
    return lambda pending: len(pending) - 1


def shuffled(seed: int) -> Chooser:
    rng = np.random.default_rng(seed)
    return lambda pending: int(rng.integers(len(pending)))


def drawn(data: st.DataObject, budget: int = 64, seed: int = 0) -> Chooser:
    """Hypothesis picks the first `budget` events; a seeded shuffle picks the rest.

    The budget keeps long runs within hypothesis' data limits while leaving the early
    (most consequential) interleavings to the search and the shrinker.
    """
    rng = np.random.default_rng(seed)
    left = [budget]

    def choose(pending: Sequence[Event]) -> int:
        if len(pending) == 1:
            return 0
        if left[0] > 0:
            left[0] -= 1
            return data.draw(st.integers(0, len(pending) - 1), label="next event")
        return int(rng.integers(len(pending)))

    return choose


def kinds_first(first: Iterable[str], seed: int) -> Chooser:
    """Deliver pending messages of the `first` kinds (in shuffled order) before any other."""
    rng = np.random.default_rng(seed)
    early = frozenset(first)

    def choose(pending: Sequence[Event]) -> int:
        picks = [i for i, e in enumerate(pending) if type(e) is Packet and e.kind in early]
        if not picks:
            return int(rng.integers(len(pending)))
        return picks[int(rng.integers(len(picks)))]

    return choose


def chooser_strategy(data: st.DataObject) -> Chooser:
    """A delivery order for a property test: fixed, seeded or driven by hypothesis."""
    mode = data.draw(st.sampled_from(["in-order", "last-first", "shuffled", "drawn"]))
    seed = data.draw(st.integers(0, 2**32 - 1), label="order seed")
    if mode == "in-order":
        return in_order()
    if mode == "last-first":
        return last_first()
    if mode == "shuffled":
        return shuffled(seed)
    return drawn(data, seed=seed)


# ----------------------------------------------------------------------------- topologies

TORUS_SIZES = (9, 12, 15, 16, 18, 20, 24, 25)


@st.composite
def connected_topologies(draw: st.DrawFn, max_n: int = 24) -> Topology:
    """A small connected topology of any kind but geo, with a size valid for that kind."""
    name = draw(
        st.sampled_from(["complete", "ring", "torus", "hypercube", "regular", "small-world"])
    )
    seed = draw(st.integers(0, 2**16), label="topology seed")
    degree, rewire = 4, 0.1
    if name == "complete":
        n = draw(st.integers(2, max_n))
    elif name == "ring":
        n = draw(st.integers(3, max_n))
    elif name == "torus":
        n = draw(st.sampled_from([m for m in TORUS_SIZES if m <= max_n]))
    elif name == "hypercube":
        n = draw(st.sampled_from([m for m in (2, 4, 8, 16, 32) if m <= max_n]))
    elif name == "regular":
        degree = draw(st.sampled_from([3, 4]))
        n = draw(st.integers(degree + 1, max_n))
        n += (n * degree) % 2  # n x degree must be even
    else:
        degree = draw(st.sampled_from([2, 4]))
        n = draw(st.integers(degree + 1, max_n))
        rewire = draw(st.floats(0.0, 0.3))
    topo = build_topology(name, n, np.random.default_rng(seed), degree=degree, rewire=rewire)
    assume(topo.is_connected())
    return topo


# ------------------------------------------------------------------------------ simulator


def node_rngs(seed: int, n: int) -> list[np.random.Generator]:
    """One independent generator per node, from a single seed."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


@dataclass
class Sim:
    """Drives `cores` round by round; see the module docstring.

    `loss` and `dup` are per-copy probabilities (drawn from `fault_seed`) that a message
    is lost or delivered twice. `record` keeps every message sent in `sent`; lost copies
    are always kept in `lost`. `observe(sim, event)` runs after each event; `pending`
    then holds what is still in flight in the round.
    """

    cores: list[Any]
    seed: int = 0
    choose: Chooser = field(default_factory=in_order)
    interleave_ticks: bool = False
    loss: float = 0.0
    dup: float = 0.0
    fault_seed: int = 0
    record: bool = False
    observe: Callable[[Sim, Event | None], None] | None = None

    round: int = field(init=False, default=-1)
    pending: list[Event] = field(init=False, default_factory=list)
    sent: list[Packet] = field(init=False, default_factory=list)
    lost: list[Packet] = field(init=False, default_factory=list)
    delivered: int = field(init=False, default=0)
    sends: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.rngs = node_rngs(self.seed, len(self.cores))
        self._faults = np.random.default_rng(self.fault_seed)
        self._seq = 0

    # -- sending -----------------------------------------------------------------------
    def _post(self, src: int, sends: list[tuple[int, str, Any]]) -> None:
        for dst, kind, body in sends:
            assert 0 <= dst < len(self.cores) and dst != src, (src, dst, kind)
            self._seq += 1
            payload = wire.pack(kind, f"n{src}", self._seq, float(self.round), 0, body)
            packet = Packet(self.round, src, dst, kind, payload)
            self.sends += 1
            if self.record:
                self.sent.append(packet)
            faults = self._faults
            if self.loss and faults.random() < self.loss:
                self.lost.append(packet)
                continue
            self.pending.append(packet)
            if self.dup and faults.random() < self.dup:
                self.pending.append(packet)

    def _deliver(self, packet: Packet) -> None:
        env = wire.decode(packet.payload)
        src = int(env.src[1:])
        assert (env.kind, src) == (packet.kind, packet.src)
        core = self.cores[packet.dst]
        replies = core.on_message(self.round, src, env.kind, env.body, self.rngs[packet.dst])
        self.delivered += 1
        self._post(packet.dst, replies)

    def _tick(self, node: int) -> None:
        self._post(node, self.cores[node].on_tick(self.round, self.rngs[node]))

    # -- rounds ------------------------------------------------------------------------
    def run_round(self) -> None:
        self.round += 1
        pending = self.pending
        assert not pending
        if self.interleave_ticks:
            pending.extend(Tick(i) for i in range(len(self.cores)))
        else:
            for i in range(len(self.cores)):
                self._tick(i)
                if self.observe is not None:
                    self.observe(self, None)
        while pending:
            event = pending.pop(self.choose(pending))
            if type(event) is Tick:
                self._tick(event.node)
            else:
                self._deliver(event)
            if self.observe is not None:
                self.observe(self, event)

    def run(self, rounds: int, until: Callable[[Sim], bool] | None = None) -> int:
        """Run up to `rounds` rounds, stopping early once `until(sim)` holds after one."""
        for _ in range(rounds):
            self.run_round()
            if until is not None and until(self):
                break
        return self.round


# ------------------------------------------------------------------------------- queries


def informed(cores: Sequence[Any], rumor_id: int, by_round: int | None = None) -> set[int]:
    """Nodes that know `rumor_id` (from `by_round` on, if given)."""
    out = set()
    for i, core in enumerate(cores):
        r = core.informed_round(rumor_id)
        if r is not None and (by_round is None or r <= by_round):
            out.add(i)
    return out


def everyone_knows(rumor_id: int) -> Callable[[Sim], bool]:
    return lambda sim: all(c.informed_round(rumor_id) is not None for c in sim.cores)


def quiet(sim: Sim) -> bool:
    return not any(c.active for c in sim.cores)
