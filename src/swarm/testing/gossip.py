"""Hypothesis strategies and a message-level network for testing sans-I/O gossip cores.

A protocol's invariants must survive every delivery order, loss, duplicate, crash and
forgery, and a round-based simulator only ever shows a few of those. `Network` instead
holds the cores and the messages in flight and lets a test (typically a hypothesis
`RuleBasedStateMachine`) pick each step: tick an agent, deliver, drop or duplicate the
i-th message, crash an agent, inject a message from an id outside the fleet. It keeps
books on everything that will never arrive, so conservation laws can be checked exactly.

>>> import numpy as np
>>> from swarm.protocols.gossip.aggregation import PushSum
>>> from swarm.protocols.gossip.topology import build_topology
>>> topo = build_topology("ring", 4, np.random.default_rng(0))
>>> net = Network([PushSum(i, topo, float(i)) for i in range(4)], seed=1)
>>> sent = net.tick(0)
>>> net.deliver(0)
[]
>>> sum(c.s for c in net.cores), sum(c.w for c in net.cores)
(6.0, 4.0)

Needs hypothesis (the ``test`` extra), like the tests that use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from swarm import wire
from swarm.protocols.gossip.core import Core, ProtocolViolation
from swarm.protocols.gossip.topology import Topology, build_topology

__all__ = [
    "Message",
    "Network",
    "fake_ids",
    "initial_values",
    "topologies",
    "wire_bodies",
]

# ---------------------------------------------------------------------------- strategies

_RANDOM_DEGREES = {"regular": (3, 4), "small-world": (2, 4)}


def _fits(name: str, n: int, degree: int) -> bool:
    """Whether `build_topology(name, n, degree=degree)` can succeed."""
    if name == "complete":
        return n >= 2
    if name == "ring":
        return n >= 3
    if name == "torus":  # rows x cols with both >= 3
        return any(n % r == 0 for r in range(3, math.isqrt(n) + 1))
    if name == "hypercube":
        return n >= 2 and n & (n - 1) == 0
    if name == "regular":
        return degree < n and n * degree % 2 == 0
    return degree < n  # small-world: degree is even by construction


@st.composite
def topologies(
    draw: st.DrawFn,
    min_n: int = 2,
    max_n: int = 16,
    names: Sequence[str] = ("complete", "ring", "torus", "hypercube", "regular", "small-world"),
    connected: bool = True,
) -> Topology:
    """A small topology of one of `names` with between `min_n` and `max_n` agents.

    Only sizes valid for the drawn kind are drawn (a torus needs rows x cols >= 3 x 3),
    and with `connected` a graph that rewiring split is rejected. Geo needs positions
    and regions, so it is not offered.

    >>> from hypothesis import given
    >>> @given(topologies(max_n=8, names=["ring", "complete"]))
    ... def test_every_agent_has_a_peer(topo):
    ...     assert topo.min_degree >= 1
    """
    options = [
        (name, n, degree)
        for name in names
        for degree in _RANDOM_DEGREES.get(name, (4,))
        for n in range(min_n, max_n + 1)
        if _fits(name, n, degree)
    ]
    if not options:
        raise ValueError(f"no topology among {list(names)} has {min_n}..{max_n} agents")
    name, n, degree = draw(st.sampled_from(options), label="topology (name, n, degree)")
    rewire = draw(st.floats(0.0, 0.3), label="rewire") if name == "small-world" else 0.1
    seed = draw(st.integers(0, 2**32 - 1), label="topology seed")
    topo = build_topology(name, n, np.random.default_rng(seed), degree=degree, rewire=rewire)
    if connected:
        assume(topo.is_connected())
    return topo


_VALUE_KINDS = ("float", "int", "float array", "int array")


@st.composite
def initial_values(
    draw: st.DrawFn,
    n: int,
    kinds: Sequence[str] = _VALUE_KINDS,
    shape: tuple[int, ...] = (3,),
    max_abs: float = 1e6,
) -> list[Any]:
    """`n` starting values for averaging cores, all of one drawn kind.

    Kinds: Python floats or ints, or numpy arrays of `shape` (float64 or int64, since
    integer inputs must average as floats). Magnitudes stay within `max_abs` so sums do
    not overflow and float tolerances stay meaningful.

    >>> from hypothesis import given
    >>> @given(initial_values(5, kinds=["float array"], shape=(2,)))
    ... def test_shape(values):
    ...     assert len(values) == 5 and values[0].shape == (2,)
    """
    bad = set(kinds) - set(_VALUE_KINDS)
    if bad or not kinds:
        raise ValueError(f"kinds must be drawn from {_VALUE_KINDS}, got {list(kinds)}")
    kind = draw(st.sampled_from(list(kinds)), label="value kind")
    limit = int(max_abs)
    number = (
        st.integers(-limit, limit)
        if kind.startswith("int")
        else st.floats(-max_abs, max_abs, allow_nan=False, allow_infinity=False)
    )
    if not kind.endswith("array"):
        return draw(st.lists(number, min_size=n, max_size=n))
    size = math.prod(shape)
    flat = draw(st.lists(number, min_size=n * size, max_size=n * size))
    dtype = np.int64 if kind == "int array" else np.float64
    return list(np.array(flat, dtype=dtype).reshape((n, *shape)))


# Strategies are immutable, and building one in every step of a state machine costs
# more than drawing from it: the two below are cached.


@lru_cache(maxsize=64)
def fake_ids(n: int) -> st.SearchStrategy[int]:
    """Agent ids outside a fleet of `n` (0..n-1): what a Sybil claims to be."""
    return st.one_of(st.integers(-(2**31), -1), st.integers(n, 2**31))


@lru_cache(maxsize=16)
def wire_bodies(max_abs: float = 1e6, max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Arbitrary bodies a peer could put on the wire: forgeries and garbage for cores.

    Leaves include NaN, infinities, bools and bytes; finite numbers stay within `max_abs`
    so that a body a core accepts by chance cannot overflow a test's running totals.
    """
    limit = int(max_abs)
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-limit, limit),
        st.floats(-max_abs, max_abs, allow_nan=False),
        st.sampled_from([math.nan, math.inf, -math.inf]),
        st.text(max_size=8),
        st.binary(max_size=8),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.text(max_size=4), inner, max_size=3),
        ),
        max_leaves=max_leaves,
    )


# ------------------------------------------------------------------------------- network


@dataclass(slots=True, eq=False)
class Message:
    """One message copy. Copies made by `Network.duplicate` share `id`.

    `body` is what the receiver will get; with the wire on it is the decoded form, and
    each delivery decodes `payload` afresh, so no two receivers share mutable objects.
    """

    id: int
    src: int
    dst: int
    kind: str
    body: Any
    payload: bytes | None = None


class Network:
    """Cores indexed 0..n-1 and the messages between them; every step is the caller's.

    - `tick(agent)` and `deliver(i)` put the sends they return in flight (`in_flight`);
    - `drop(i)` loses a message, `duplicate(i)` appends a second copy of it;
    - `crash(agent)` stops an agent for good: it no longer ticks or receives, and what is
      in flight to it, or later sent to it, is lost;
    - `inject(src, dst, kind, body)` sends from anyone, e.g. a Sybil id outside the fleet.

    `lost` holds every message that will never arrive (dropped, or to a crashed agent);
    `escaped` holds replies addressed outside the fleet (to a Sybil); `rejected` holds
    (message, error) for each delivery the core refused with `ProtocolViolation`, which
    is what an agent counts as malformed and drops. With `through_wire` (the default)
    every body travels through `swarm.wire` exactly as between agents, so its kind must
    be registered; `through_wire=False` hands bodies over as they are.
    """

    def __init__(self, cores: Sequence[Core], seed: int = 0, *, through_wire: bool = True) -> None:
        self.cores = list(cores)
        seeds = np.random.SeedSequence(seed).spawn(len(self.cores))
        self.rngs = [np.random.default_rng(s) for s in seeds]
        self.through_wire = through_wire
        self.round = 0
        self.in_flight: list[Message] = []
        self.lost: list[Message] = []
        self.escaped: list[Message] = []
        self.rejected: list[tuple[Message, ProtocolViolation]] = []
        self.crashed: set[int] = set()
        self.delivered = 0
        self._ids = 0

    def __len__(self) -> int:
        return len(self.cores)

    def live(self) -> list[int]:
        """Agents that have not crashed."""
        return [i for i in range(len(self.cores)) if i not in self.crashed]

    # -- steps ---------------------------------------------------------------------------
    def tick(self, agent: int) -> list[Message]:
        """Run `agent`'s timer; a crashed agent does nothing. Returns the new messages."""
        if agent in self.crashed:
            return []
        return self._post(agent, self.cores[agent].on_tick(self.round, self.rngs[agent]))

    def deliver(self, i: int) -> list[Message]:
        """Hand in-flight message `i` to its receiver; returns the replies it sent.

        A `ProtocolViolation` is recorded in `rejected`, not raised: the message is
        dropped as an agent would drop it.
        """
        msg = self.in_flight.pop(i)
        body = wire.decode(msg.payload).body if msg.payload is not None else msg.body
        core = self.cores[msg.dst]
        try:
            replies = core.on_message(self.round, msg.src, msg.kind, body, self.rngs[msg.dst])
        except ProtocolViolation as exc:
            self.rejected.append((msg, exc))
            return []
        self.delivered += 1
        return self._post(msg.dst, replies)

    def drop(self, i: int) -> Message:
        """Lose in-flight message `i`."""
        msg = self.in_flight.pop(i)
        self.lost.append(msg)
        return msg

    def duplicate(self, i: int) -> Message:
        """Append another copy of in-flight message `i` (same `id`); returns the copy."""
        msg = self.in_flight[i]
        copy = Message(msg.id, msg.src, msg.dst, msg.kind, msg.body, msg.payload)
        self.in_flight.append(copy)
        return copy

    def crash(self, agent: int) -> list[Message]:
        """Stop `agent` for good; returns the in-flight messages to it, now lost."""
        self.crashed.add(agent)
        doomed = [m for m in self.in_flight if m.dst == agent]
        if doomed:
            self.in_flight = [m for m in self.in_flight if m.dst != agent]
            self.lost.extend(doomed)
        return doomed

    def inject(self, src: int, dst: int, kind: str, body: Any) -> Message:
        """Put a message from `src` (any id, in the fleet or not) in flight to `dst`."""
        return self._post(src, [(dst, kind, body)])[0]

    def next_round(self) -> int:
        """Advance the round number the cores see; messages in flight stay in flight."""
        self.round += 1
        return self.round

    def settle(self, max_steps: int = 100_000) -> int:
        """Deliver in order until nothing is in flight; returns the deliveries made."""
        steps = 0
        while self.in_flight:
            if steps >= max_steps:
                raise RuntimeError(f"still {len(self.in_flight)} in flight after {steps}")
            self.deliver(0)
            steps += 1
        return steps

    # -- internals -----------------------------------------------------------------------
    def _post(self, src: int, sends: list[tuple[int, str, Any]]) -> list[Message]:
        out = []
        n = len(self.cores)
        for dst, kind, body in sends:
            self._ids += 1
            payload = None
            if self.through_wire:
                payload = wire.pack(kind, f"n{src}", self._ids, float(self.round), 0, body)
                body = wire.decode(payload).body
            msg = Message(self._ids, src, dst, kind, body, payload)
            out.append(msg)
            if not 0 <= dst < n:
                self.escaped.append(msg)
            elif dst in self.crashed:
                self.lost.append(msg)
            else:
                self.in_flight.append(msg)
        return out
