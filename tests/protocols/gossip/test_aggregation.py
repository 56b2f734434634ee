"""Push-sum and pairwise averaging: convergence, conservation of mass, hostile bodies."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from gossip_sim import (
    Event,
    Packet,
    Sim,
    chooser_strategy,
    connected_topologies,
    kinds_first,
    shuffled,
)
from hypothesis import given
from hypothesis import strategies as st

from swarm import wire
from swarm.protocols.gossip.aggregation import (
    AVG_BUSY,
    AVG_OFFER,
    AVG_REPLY,
    PROTOCOLS,
    PUSH_SUM,
    Aggregation,
    PairwiseAverage,
    PushSum,
)
from swarm.protocols.gossip.core import ProtocolViolation
from swarm.protocols.gossip.topology import Topology, build_topology

REL = 1e-9


def complete(n: int) -> Topology:
    return build_topology("complete", n, np.random.default_rng(0))


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def fleet(cls: type[Aggregation], topo: Topology, values: Any, **kw: Any) -> list[Any]:
    return [cls(i, topo, values[i], **kw) for i in range(topo.n)]


def estimates(cores: list[Any]) -> np.ndarray:
    return np.array([np.asarray(c.estimate, dtype=float) for c in cores])


def total(parts: list[Any]) -> Any:
    acc: Any = 0.0
    for part in parts:
        acc = acc + part
    return acc


def close(a: Any, b: Any, scale: Any) -> bool:
    return bool(np.all(np.abs(np.asarray(a) - np.asarray(b)) <= REL * np.asarray(scale)))


def through_wire(kind: str, body: Any) -> Any:
    return wire.decode(wire.pack(kind, "peer", 1, 0.0, 0, body)).body


# ------------------------------------------------------------------------ convergence


@pytest.mark.parametrize("name", ["push-sum", "average"])
def test_estimates_converge_to_the_true_mean_on_a_complete_graph(name: str) -> None:
    n = 128
    values = rng(4).random(n)
    truth = values.mean()
    cores = fleet(PROTOCOLS[name], complete(n), [float(v) for v in values])
    start = estimates(cores).var()
    sim = Sim(cores, seed=4, choose=shuffled(4))
    sim.run(30, until=lambda s: estimates(s.cores).var() < 1e-6 * start)
    assert estimates(cores).var() < 1e-6 * start, sim.round
    assert np.abs(estimates(cores) - truth).max() < 1e-2 * math.sqrt(start)
    sim.run(30)
    assert np.abs(estimates(cores) - truth).max() < 1e-6 * math.sqrt(start)
    assert close(total([c.mass for c in cores]), values.sum(), n)


@pytest.mark.parametrize("name", ["push-sum", "average"])
def test_variance_falls_geometrically_on_a_regular_graph(name: str) -> None:
    n = 200
    values = rng(1).normal(size=n)
    cores = fleet(PROTOCOLS[name], build_topology("regular", n, rng(2), degree=6), values)
    variances = [estimates(cores).var()]
    sim = Sim(cores, seed=5)
    for _ in range(50):
        sim.run_round()
        variances.append(estimates(cores).var())
    assert variances[-1] < 1e-6 * variances[0]
    # Every ten rounds cut the variance by at least a factor of ten.
    assert all(b < a / 10 for a, b in zip(variances[::10], variances[10::10], strict=False))


@pytest.mark.parametrize("offers_first", [False, True], ids=["shuffled", "offers-first"])
@pytest.mark.parametrize(("topo_name", "fanout"), [("complete", 3), ("regular", 2), ("regular", 5)])
def test_pairwise_average_converges_with_several_partners(
    topo_name: str, fanout: int, offers_first: bool
) -> None:
    # Offers first, then replies, is what a fleet with a constant latency does: every
    # initiator's replies come back computed from the value it had when it offered.
    n = 60
    values = rng(6).random(n)
    topo = build_topology(topo_name, n, rng(6), degree=6)
    cores = fleet(PairwiseAverage, topo, list(values), fanout=fanout)
    choose = kinds_first([AVG_OFFER], 6) if offers_first else shuffled(6)
    Sim(cores, seed=6, choose=choose).run(40)
    assert estimates(cores).var() < 1e-6 * values.var()
    assert np.abs(estimates(cores) - values.mean()).max() < 1e-2 * values.std()


# ------------------------------------------------------------------------ numpy arrays


@pytest.mark.parametrize("name", ["push-sum", "average"])
def test_numpy_vectors_average_elementwise(name: str) -> None:
    n = 32
    values = rng(7).normal(size=(n, 5)) * [1.0, 10.0, 100.0, 1e-3, 1e6]
    cores = fleet(PROTOCOLS[name], complete(n), list(values))
    sim = Sim(cores, seed=7, choose=shuffled(7), record=True)
    sim.run(60)
    bodies = [p.body for p in sim.sent]
    assert bodies and all(type(b[0]) is np.ndarray and b[0].shape == (5,) for b in bodies)
    for core in cores:
        assert core.estimate.shape == (5,) and core.estimate.dtype == np.float64
    spread = values.std(axis=0)
    assert np.all(np.abs(estimates(cores) - values.mean(axis=0)) <= 1e-6 * spread)
    assert close(total([c.mass for c in cores]), values.sum(axis=0), n * np.abs(values).max(0))
    # The initial values were not modified in place.
    assert np.array_equal(np.array([c.initial for c in cores]), values)


@pytest.mark.parametrize("name", ["push-sum", "average"])
def test_arrays_travel_bit_for_bit(name: str) -> None:
    topo = complete(2)
    a = PROTOCOLS[name](0, topo, np.array([0.1, 1e-300, -2.5, 3e300, 7.0]))
    b = PROTOCOLS[name](1, topo, np.zeros(5))
    [(peer, kind, body)] = a.on_tick(0, rng())
    sent = [np.array(x, copy=True) if isinstance(x, np.ndarray) else x for x in body]
    received = through_wire(kind, body)
    assert peer == 1 and received[0].tobytes() == sent[0].tobytes()
    b.on_message(0, 0, kind, received, rng())


@pytest.mark.parametrize("name", ["push-sum", "average"])
def test_integer_values_average_as_floats(name: str) -> None:
    # Integer inputs (counts, indices) must not truncate the shares peers send.
    n = 6
    values = [np.arange(3) * i for i in range(n)]
    cores = fleet(PROTOCOLS[name], complete(n), values)
    sim = Sim(cores, seed=1, choose=shuffled(1), interleave_ticks=True)
    sim.run(40)
    assert np.allclose(total([c.mass for c in cores]), [0, 15, 30])
    assert np.allclose(estimates(cores), [0, 2.5, 5])


# ----------------------------------------------------------- conservation (hypothesis)

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@st.composite
def initial_values(draw: st.DrawFn, n: int) -> list[Any]:
    kind = draw(st.sampled_from(["float", "int", "float array", "int array"]))
    if kind == "float":
        return draw(st.lists(finite, min_size=n, max_size=n))
    if kind == "int":
        return draw(st.lists(st.integers(-1000, 1000), min_size=n, max_size=n))
    elements = finite if kind == "float array" else st.integers(-1000, 1000)
    rows = draw(st.lists(st.lists(elements, min_size=3, max_size=3), min_size=n, max_size=n))
    return list(np.array(rows, dtype=float if kind == "float array" else np.int64))


def in_flight(sim: Sim, kind: str, index: int) -> list[Any]:
    return [e.body[index] for e in sim.pending if type(e) is Packet and e.kind == kind]


def scale_of(values: list[Any]) -> Any:
    return np.sum([np.abs(np.asarray(v, dtype=float)) for v in values], axis=0) + 1e-300


@given(st.data())
def test_push_sum_conserves_mass_in_any_delivery_order(data: st.DataObject) -> None:
    topo = data.draw(connected_topologies())
    values = data.draw(initial_values(topo.n))
    fanout = data.draw(st.integers(1, min(3, topo.min_degree)), label="fanout")
    cores = fleet(PushSum, topo, values, fanout=fanout)
    s0, w0, scale = total(values), float(topo.n), scale_of(values)
    checks = [0]

    def conserved(sim: Sim, event: Event | None) -> None:
        s = total([c.s for c in sim.cores] + in_flight(sim, PUSH_SUM, 0))
        w = total([c.w for c in sim.cores] + in_flight(sim, PUSH_SUM, 1))
        assert close(s, s0, scale), (s, s0)
        assert close(w, w0, w0), (w, w0)
        checks[0] += 1

    sim = Sim(
        cores,
        seed=data.draw(st.integers(0, 2**32 - 1), label="seed"),
        choose=chooser_strategy(data),
        interleave_ticks=data.draw(st.booleans(), label="interleave ticks"),
        observe=conserved,
    )
    sim.run(data.draw(st.integers(1, 6), label="rounds"))
    assert checks[0] >= topo.n
    assert all(c.w > 0 and np.all(np.isfinite(c.estimate)) for c in cores)


@given(st.data())
def test_pairwise_average_conserves_mass_when_exchanges_overlap(data: st.DataObject) -> None:
    topo = data.draw(connected_topologies())
    values = data.draw(initial_values(topo.n))
    fanout = data.draw(st.integers(1, min(3, topo.min_degree)), label="fanout")
    atomic = data.draw(st.booleans(), label="atomic exchanges")
    cores = fleet(PairwiseAverage, topo, values, fanout=fanout, atomic=atomic)
    x0, scale = total(values), scale_of(values)
    offers_first = data.draw(st.booleans(), label="all offers before any reply")
    order_seed = data.draw(st.integers(0, 2**32 - 1), label="reply order seed")
    choose = kinds_first([AVG_OFFER], order_seed) if offers_first else chooser_strategy(data)

    def conserved(sim: Sim, event: Event | None) -> None:
        # A partner has moved by d; its reply, still in flight, carries the -d for the
        # initiator. Offers carry no mass.
        x = total([c.x for c in sim.cores]) - total(in_flight(sim, AVG_REPLY, 0))
        assert close(x, x0, scale), (x, x0)

    sim = Sim(
        cores,
        seed=data.draw(st.integers(0, 2**32 - 1), label="seed"),
        choose=choose,
        interleave_ticks=data.draw(st.booleans(), label="interleave ticks"),
        observe=conserved,
    )
    sim.run(data.draw(st.integers(1, 6), label="rounds"))
    assert close(total([c.mass for c in cores]), x0, scale)


def test_concurrent_exchanges_through_one_node_conserve_mass() -> None:
    # Node 0 offers to 1 and 2 while 1, 2 and 3 offer to it; every reply is delivered
    # only after every offer, last first.
    topo = complete(4)
    cores = fleet(PairwiseAverage, topo, [1.0, 10.0, 100.0, 1000.0], fanout=3)
    sim = Sim(cores, seed=0, choose=kinds_first([AVG_OFFER], 0), record=True)
    sim.run_round()
    offers = [p for p in sim.sent if p.kind == AVG_OFFER]
    assert sum(p.dst == 0 for p in offers) == 3 and sum(p.src == 0 for p in offers) == 3
    assert close(sum(c.x for c in cores), 1111.0, 1111.0)
    assert all(c.x != c.initial for c in cores)


def test_an_atomic_exchange_declines_offers_while_it_waits_and_nobody_moves() -> None:
    a, b, c = (PairwiseAverage(i, complete(3), float(v), atomic=True) for i, v in enumerate("148"))
    [(partner, kind, body)] = a.on_tick(0, rng(1))
    assert kind == AVG_OFFER and body == [1.0]
    other = c if partner == 1 else b  # the node a is not waiting for
    assert a.on_message(0, other.me, AVG_OFFER, [other.x], rng()) == [(other.me, AVG_BUSY, [])]
    assert a.x == 1.0 and a.declined == 1
    with pytest.raises(ProtocolViolation, match="not exchanging with"):
        a.on_message(0, other.me, AVG_REPLY, [0.5], rng())
    with pytest.raises(ProtocolViolation, match="pending offer"):
        a.on_message(0, other.me, AVG_BUSY, [], rng())
    assert a.on_tick(1, rng()) == []  # still waiting in the next round: no second offer
    # The partner declines too: the exchange ends with both values where they were.
    assert a.on_message(1, partner, AVG_BUSY, [], rng()) == []
    assert a.x == 1.0 and a.on_message(1, other.me, AVG_OFFER, [other.x], rng())[0][1] == AVG_REPLY


def test_an_atomic_exchange_whose_reply_is_lost_is_given_up_after_a_round() -> None:
    a = PairwiseAverage(0, complete(3), 1.0, atomic=True)
    assert a.on_tick(0, rng(1))
    assert a.on_tick(1, rng(1)) == []
    assert a.on_tick(2, rng(1))  # a reply missing for a whole round was lost: offer again


# --------------------------------------------------------------------- message loss


@pytest.mark.parametrize("shape", [(), (4,)])
def test_push_sum_loses_exactly_the_lost_shares(shape: tuple[int, ...]) -> None:
    n = 40
    values = rng(3).random((n, *shape)) + 1.0
    cores = fleet(PushSum, complete(n), [v if shape else float(v) for v in values])
    sim = Sim(cores, seed=3, choose=shuffled(3), loss=0.2, fault_seed=9)
    sim.run(10)
    assert sim.lost
    lost_s = total([p.body[0] for p in sim.lost])
    lost_w = sum(p.body[1] for p in sim.lost)
    s = total([c.s for c in cores])
    w = sum(c.w for c in cores)
    assert np.all(lost_s > 0) and lost_w > 0
    assert close(values.sum(axis=0) - s, lost_s, values.sum(axis=0))
    assert close(n - w, lost_w, n)


def test_lost_replies_break_pairwise_conservation_by_the_lost_deltas() -> None:
    n = 30
    values = rng(8).random(n)
    cores = fleet(PairwiseAverage, complete(n), list(values))
    sim = Sim(cores, seed=8, choose=shuffled(8), loss=0.2, fault_seed=2)
    sim.run(8)
    lost_deltas = sum(p.body[0] for p in sim.lost if p.kind == AVG_REPLY)
    assert lost_deltas != 0
    assert close(sum(c.x for c in cores) - values.sum(), lost_deltas, n)


# ------------------------------------------------------------------- malformed bodies

NOT_FINITE = [math.nan, math.inf, -math.inf]


def scalar_core(cls: type[Aggregation]) -> Any:
    return cls(0, complete(4), 2.5)


def array_core(cls: type[Aggregation]) -> Any:
    return cls(0, complete(4), np.arange(5, dtype=float))


def state(core: Any) -> Any:
    if isinstance(core, PushSum):
        return (np.array(core.s, copy=True), core.w)
    return (np.array(core.x, copy=True),)


def assert_rejected(core: Any, kind: str, body: Any, wire_ok: bool = True) -> None:
    before = state(core)
    if wire_ok:
        body = through_wire(kind, body)
    with pytest.raises(ProtocolViolation):
        core.on_message(1, 2, kind, body, rng())
    after = state(core)
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def bad_values(shaped: bool) -> list[Any]:
    """Values that do not fit a core holding a float (or an array of shape (5,))."""
    common: list[Any] = [
        *NOT_FINITE,
        None,
        "1.5",
        b"1.5",
        True,
        [1.0],
        {"v": 1.0},
        np.array([1.0, math.nan, 0, 0, 0]),
        np.array([1.0, math.inf, 0, 0, 0]),
        np.array([-math.inf] * 5),
        np.zeros(4),
        np.zeros((5, 1)),
        np.zeros((1, 5)),
        np.zeros(()),
        np.zeros(5, dtype=np.complex128),
        np.zeros(5, dtype=bool),
    ]
    return [*common, 1.0, 3] if shaped else [*common, np.zeros(5)]


def unwireable_values() -> list[Any]:
    """Values no peer can put on the wire, handed to the core directly."""
    return [
        np.array(["a", "b", "c", "d", "e"]),
        np.array([1.0, 2.0, 3.0, 4.0, 5.0], dtype=object),
        np.array([b"x"] * 5),
        (1.0, 1.0),
    ]


@pytest.mark.parametrize("shaped", [False, True], ids=["float", "array"])
def test_push_sum_rejects_bad_values(shaped: bool) -> None:
    make = array_core if shaped else scalar_core
    for value in bad_values(shaped):
        assert_rejected(make(PushSum), PUSH_SUM, [value, 0.5])
    for value in unwireable_values():
        assert_rejected(make(PushSum), PUSH_SUM, [value, 0.5], wire_ok=False)


@pytest.mark.parametrize("shaped", [False, True], ids=["float", "array"])
@pytest.mark.parametrize("kind", [AVG_OFFER, AVG_REPLY])
def test_pairwise_rejects_bad_values(shaped: bool, kind: str) -> None:
    make = array_core if shaped else scalar_core
    for value in bad_values(shaped):
        assert_rejected(make(PairwiseAverage), kind, [value])
    for value in unwireable_values():
        assert_rejected(make(PairwiseAverage), kind, [value], wire_ok=False)


@pytest.mark.parametrize("weight", [0.0, -0.0, -1.0, -5e-324, *NOT_FINITE, True, None, "1", [1.0]])
def test_push_sum_rejects_weights_that_are_not_positive_finite_floats(weight: Any) -> None:
    assert_rejected(scalar_core(PushSum), PUSH_SUM, [1.0, weight])
    assert_rejected(array_core(PushSum), PUSH_SUM, [np.ones(5), weight])


@pytest.mark.parametrize(
    "body", [None, 1.0, "s", {}, {"s": 1.0, "w": 1.0}, [], [1.0], [1.0, 0.5, 0.5], [[1.0, 0.5]]]
)
def test_push_sum_rejects_bodies_of_the_wrong_shape(body: Any) -> None:
    assert_rejected(scalar_core(PushSum), PUSH_SUM, body)


@pytest.mark.parametrize("body", [None, 1.0, "x", {}, {"x": 1.0}, [], [1.0, 2.0], [[1.0]]])
@pytest.mark.parametrize("kind", [AVG_OFFER, AVG_REPLY])
def test_pairwise_rejects_bodies_of_the_wrong_shape(kind: str, body: Any) -> None:
    assert_rejected(scalar_core(PairwiseAverage), kind, body)


def test_each_protocol_rejects_the_others_kinds() -> None:
    assert_rejected(scalar_core(PushSum), AVG_OFFER, [1.0, 0.5])
    assert_rejected(scalar_core(PushSum), AVG_REPLY, [1.0])
    assert_rejected(scalar_core(PairwiseAverage), PUSH_SUM, [1.0])
    assert_rejected(scalar_core(PairwiseAverage), "metrics", [1.0])
    assert_rejected(scalar_core(PushSum), "metrics", [1.0, 0.5])


@pytest.mark.parametrize("cls", [PushSum, PairwiseAverage])
def test_good_bodies_are_accepted(cls: type[Aggregation]) -> None:
    core = scalar_core(cls)
    if cls is PushSum:
        assert core.on_message(0, 1, PUSH_SUM, through_wire(PUSH_SUM, [1.5, 0.5]), rng()) == []
        assert (core.s, core.w) == (4.0, 1.5)
        core.on_message(0, 1, PUSH_SUM, [2, 5e-324], rng())  # int share, tiny weight
        assert core.s == 6.0
    else:
        assert core.on_message(0, 1, AVG_OFFER, [4.5], rng()) == [(1, AVG_REPLY, [1.0])]
        assert core.x == 3.5
        assert core.on_message(0, 1, AVG_REPLY, [0.5], rng()) == []
        assert core.x == 3.0
    shaped = array_core(cls)
    body = [np.ones(5, dtype=np.int32), 1.0] if cls is PushSum else [np.ones(5, np.float32)]
    shaped.on_message(0, 1, PUSH_SUM if cls is PushSum else AVG_OFFER, body, rng())
    assert shaped.estimate.dtype == np.float64
