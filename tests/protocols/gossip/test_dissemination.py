"""Push, pull, push-pull and rumor mongering, driven round by round without an event loop."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from gossip_sim import (
    Packet,
    Sim,
    chooser_strategy,
    connected_topologies,
    everyone_knows,
    in_order,
    informed,
    quiet,
    shuffled,
)
from hypothesis import given
from hypothesis import strategies as st

from swarm import laws, wire
from swarm.protocols.gossip.aggregation import AVG_OFFER, PUSH_SUM
from swarm.protocols.gossip.core import ProtocolViolation
from swarm.protocols.gossip.dissemination import (
    MAX_RUMORS_PER_MESSAGE,
    PROTOCOLS,
    Dissemination,
    Pull,
    Push,
    PushPull,
    RumorMongering,
)
from swarm.protocols.gossip.topology import Topology, build_topology

RUMOR_ID = 0xC0FFEE
DATA = b"\x00payload\xff"
# Kinds whose body is a list of [id, hops, data] rumors.
CARRIERS = {"push", "pull-reply", "exchange", "exchange-reply", "rumor"}


def complete(n: int) -> Topology:
    return build_topology("complete", n, np.random.default_rng(0))


def fleet(cls: type[Dissemination], topo: Topology, **kw: Any) -> list[Any]:
    return [cls(i, topo, **kw) for i in range(topo.n)]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def through_wire(kind: str, body: Any) -> Any:
    """The body as a peer's core would see it after the network."""
    return wire.decode(wire.pack(kind, "peer", 1, 0.0, 0, body)).body


def deliver(core: Any, round: int, src: int, kind: str, body: Any) -> list[Any]:
    return core.on_message(round, src, kind, through_wire(kind, body), rng())


def rumor_ids(packet: Packet) -> list[int]:
    return [item[0] for item in packet.body] if packet.kind in CARRIERS else []


def informed_rounds(cores: list[Any], rumor_id: int = RUMOR_ID) -> list[int | None]:
    return [c.informed_round(rumor_id) for c in cores]


def assert_synchronous(sim: Sim) -> None:
    """Nothing sent in round r carries a rumor its sender learned after r began."""
    for packet in sim.sent:
        for rumor_id in rumor_ids(packet):
            learned = sim.cores[packet.src].informed_round(rumor_id)
            assert learned is not None and learned <= packet.round, (packet, learned)


# --------------------------------------------------------------------- complete graph


@pytest.mark.parametrize("name", ["push", "pull", "push-pull"])
def test_everyone_is_informed_on_a_complete_graph(name: str) -> None:
    cores = fleet(PROTOCOLS[name], complete(256))
    cores[17].inject(RUMOR_ID, DATA, 0)
    sim = Sim(cores, seed=3, choose=shuffled(3))
    last = sim.run(60, until=everyone_knows(RUMOR_ID))
    assert informed(cores, RUMOR_ID) == set(range(256))
    assert all(c.store[RUMOR_ID].data == DATA for c in cores)
    assert max(informed_rounds(cores)) == last + 1
    assert cores[17].informed_round(RUMOR_ID) == 0


def test_push_rounds_to_all_is_log2_plus_ln_of_n() -> None:
    n = 256
    rounds = []
    for seed in range(10):
        cores = fleet(Push, complete(n))
        cores[seed].inject(RUMOR_ID, DATA, 0)
        Sim(cores, seed=seed, choose=shuffled(seed)).run(80, until=everyone_knows(RUMOR_ID))
        learned = informed_rounds(cores)
        assert None not in learned
        rounds.append(max(learned))
    assert abs(np.mean(rounds) - laws.push_rounds_complete(n)) <= 3, rounds


def test_push_pull_beats_pull_beats_push_to_inform_everyone() -> None:
    # Pull closes the last gap faster than push; push-pull does both at once.
    means = {}
    for name in ("push", "pull", "push-pull"):
        rounds = []
        for seed in range(5):
            cores = fleet(PROTOCOLS[name], complete(256))
            cores[0].inject(RUMOR_ID, DATA, 0)
            Sim(cores, seed=seed).run(80, until=everyone_knows(RUMOR_ID))
            rounds.append(max(informed_rounds(cores)))
        means[name] = np.mean(rounds)
    assert means["push-pull"] < means["pull"] < means["push"], means


# -------------------------------------------------------------------- synchronous rounds


def test_push_passes_a_rumor_on_only_from_the_round_after_it_was_heard() -> None:
    core = Push(1, complete(4))
    assert core.on_tick(2, rng()) == []
    assert deliver(core, 3, 0, "push", [[RUMOR_ID, 1, DATA]]) == []
    assert core.informed_round(RUMOR_ID) == 4
    assert core.on_tick(3, rng()) == []
    assert core.rumor_messages == 0
    [(peer, kind, body)] = core.on_tick(4, rng())
    assert kind == "push" and peer != 1
    assert body == [[RUMOR_ID, 2, DATA]]
    assert core.rumor_messages == 1


def test_pull_reply_never_carries_a_rumor_learned_in_the_same_round() -> None:
    topo = complete(4)
    holder, asker = Pull(0, topo), Pull(1, topo)
    holder.inject(RUMOR_ID, DATA, 0)
    # Round 5: the asker learns from the holder, then is itself asked.
    [(_, kind, digest)] = asker.on_tick(5, rng())
    assert kind == "pull" and digest == []
    [reply] = deliver(holder, 5, 1, "pull", digest)
    assert reply == (1, "pull-reply", [[RUMOR_ID, 1, DATA]])
    assert deliver(asker, 5, 1, reply[1], reply[2]) == []
    assert asker.informed_round(RUMOR_ID) == 6
    assert deliver(asker, 5, 2, "pull", []) == []
    assert deliver(asker, 6, 2, "pull", []) == [(2, "pull-reply", [[RUMOR_ID, 2, DATA]])]
    # An asker that already has it gets nothing back.
    assert deliver(asker, 6, 2, "pull", [RUMOR_ID]) == []


def test_push_pull_answers_with_what_it_knew_when_the_round_began() -> None:
    topo = complete(4)
    a, b = PushPull(0, topo), PushPull(1, topo)
    a.inject(RUMOR_ID, DATA, 0)
    [(_, kind, offer)] = a.on_tick(2, rng())
    assert kind == "exchange" and offer == [[RUMOR_ID, 1, DATA]]
    # b knew nothing when round 2 began: it learns, but has nothing to answer.
    assert deliver(b, 2, 0, kind, offer) == []
    assert b.informed_round(RUMOR_ID) == 3
    assert deliver(b, 2, 3, "exchange", []) == []
    assert deliver(b, 3, 3, "exchange", []) == [(3, "exchange-reply", [[RUMOR_ID, 2, DATA]])]
    # A partner never gets back what it offered.
    assert deliver(b, 3, 0, "exchange", [[RUMOR_ID, 1, DATA]]) == []


def test_rumor_heard_this_round_is_not_reported_as_known() -> None:
    core = RumorMongering(1, complete(4))
    assert deliver(core, 0, 0, "rumor", [[RUMOR_ID, 1, DATA]]) == []
    assert deliver(core, 0, 2, "rumor", [[RUMOR_ID, 1, DATA]]) == []
    assert deliver(core, 1, 2, "rumor", [[RUMOR_ID, 1, DATA]]) == [(2, "feedback", [RUMOR_ID])]


# -------------------------------------------------------------------------------- ttl


@pytest.mark.parametrize("name", ["push", "pull", "push-pull", "rumor"])
@pytest.mark.parametrize("topo_name", ["ring", "regular", "complete"])
def test_ttl_one_reaches_only_the_origins_direct_contacts(name: str, topo_name: str) -> None:
    topo = build_topology(topo_name, 40, rng(1), degree=4)
    cores = fleet(PROTOCOLS[name], topo, ttl=1)
    origin = 5
    cores[origin].inject(RUMOR_ID, DATA, 0)
    sim = Sim(cores, seed=2, choose=shuffled(2), record=True)
    sim.run(25)
    contacts = {
        p.src if p.dst == origin else p.dst
        for p in sim.sent
        if origin in (p.src, p.dst) and RUMOR_ID in rumor_ids(p)
    }
    reached = informed(cores, RUMOR_ID) - {origin}
    assert reached and reached == contacts
    assert reached <= set(topo.neighbors(origin).tolist())
    # No one but the origin ever sends it on.
    assert {p.src for p in sim.sent if RUMOR_ID in rumor_ids(p)} == {origin}


@pytest.mark.parametrize("ttl", [2, 3])
def test_a_rumor_travels_at_most_ttl_hops(ttl: int) -> None:
    topo = build_topology("ring", 30, rng())
    cores = fleet(Push, topo, ttl=ttl, fanout=2)
    cores[0].inject(RUMOR_ID, DATA, 0)
    Sim(cores, seed=1).run(40)
    ring_distance = {min(i, 30 - i) for i in informed(cores, RUMOR_ID)}
    assert ring_distance == set(range(ttl + 1))


# ------------------------------------------------------------------- rumor mongering


def ticks_until_quiet(core: RumorMongering, seed: int, limit: int = 1000) -> int:
    """Rounds in which a lone core sends (nobody answers), until it loses interest."""
    g = rng(seed)
    sending = 0
    for round in range(limit):
        if not core.active:
            return sending
        sending += bool(core.on_tick(round, g))
    raise AssertionError("never lost interest")


@pytest.mark.parametrize("k", [1, 2, 5])
def test_blind_counter_stops_after_k_contacts(k: int) -> None:
    core = RumorMongering(0, complete(8), feedback=False, stop="counter", k=k)
    core.inject(RUMOR_ID, DATA, 0)
    assert core.active
    assert ticks_until_quiet(core, 0) == k
    assert core.rumor_messages == k
    assert core.on_tick(99, rng()) == []


def test_blind_counter_counts_every_peer_of_a_round() -> None:
    core = RumorMongering(0, complete(8), feedback=False, stop="counter", k=3, fanout=2)
    core.inject(RUMOR_ID, DATA, 0)
    assert len(core.on_tick(0, rng())) == 2
    assert core.active
    assert len(core.on_tick(1, rng())) == 2
    assert not core.active


@pytest.mark.parametrize("k", [1, 3])
def test_feedback_counter_stops_only_after_k_peers_already_knew(k: int) -> None:
    core = RumorMongering(0, complete(8), feedback=True, stop="counter", k=k)
    core.inject(RUMOR_ID, DATA, 0)
    for round in range(10):  # pushes to peers that did not know: no feedback, no stop
        assert len(core.on_tick(round, rng(round))) == 1
    assert core.active
    for i in range(k):
        assert core.active
        assert deliver(core, 10, 1 + i, "feedback", [RUMOR_ID]) == []
    assert not core.active
    assert core.on_tick(11, rng()) == []


def test_feedback_is_sent_only_in_feedback_mode() -> None:
    for feedback, expect in ((True, [(3, "feedback", [RUMOR_ID])]), (False, [])):
        core = RumorMongering(1, complete(4), feedback=feedback)
        core.inject(RUMOR_ID, DATA, 0)
        assert deliver(core, 2, 3, "rumor", [[RUMOR_ID, 1, DATA], [7, 1, b""]]) == expect
        assert core.informed_round(7) == 3


@pytest.mark.parametrize("k", [1, 4])
def test_coin_loses_interest_with_probability_one_over_k(k: int) -> None:
    trials = 1500
    counts = []
    for seed in range(trials):
        core = RumorMongering(0, complete(8), feedback=False, stop="coin", k=k)
        core.inject(RUMOR_ID, DATA, 0)
        counts.append(ticks_until_quiet(core, seed))
    # Contacts until the first success of a 1/k coin: geometric with mean k.
    assert min(counts) == 1
    assert abs(np.mean(counts) - k) < 4 * np.sqrt((k * k - k) / trials) + 1e-9


def test_rumor_mongering_rejects_an_unknown_stop_rule() -> None:
    with pytest.raises(ValueError, match="stop"):
        RumorMongering(0, complete(4), stop="timer")


@pytest.mark.parametrize("feedback", [True, False])
@pytest.mark.parametrize("stop", ["counter", "coin"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_rumor_mongering_goes_quiet(feedback: bool, stop: str, k: int) -> None:
    cores = fleet(RumorMongering, complete(200), feedback=feedback, stop=stop, k=k)
    cores[0].inject(RUMOR_ID, DATA, 0)
    sim = Sim(cores, seed=k, choose=shuffled(k))
    last = sim.run(300, until=quiet)
    assert last < 299 and quiet(sim)
    assert sim.sends - sim.delivered == 0  # nothing left in flight
    reached = informed(cores, RUMOR_ID)
    traffic = sum(c.rumor_messages for c in cores) / len(cores)
    # Every informed node but the origin was told by someone: traffic bounds reach.
    assert len(reached) - 1 <= traffic * len(cores)
    # Once quiet, further rounds send nothing.
    before = sim.sends
    sim.run(3)
    assert sim.sends == before


def residue(n: int, seeds: range, **kw: Any) -> tuple[float, float]:
    """Mean fraction never informed, and mean rumor messages per node, once quiet."""
    residues, traffic = [], []
    for seed in seeds:
        cores = fleet(RumorMongering, complete(n), **kw)
        cores[seed % n].inject(RUMOR_ID, DATA, 0)
        sim = Sim(cores, seed=seed, choose=shuffled(seed))
        sim.run(500, until=quiet)
        assert quiet(sim)
        residues.append(1 - len(informed(cores, RUMOR_ID)) / n)
        traffic.append(sum(c.rumor_messages for c in cores) / n)
    return float(np.mean(residues)), float(np.mean(traffic))


@pytest.mark.parametrize("k", [1, 2])
def test_feedback_coin_residue_matches_theory(k: int) -> None:
    s, _ = residue(1000, range(6), feedback=True, stop="coin", k=k)
    assert abs(s - laws.rumor_residue_feedback_coin(k)) <= 0.05, s


def test_feedback_counter_residue_matches_demers_table_1() -> None:
    # Demers et al. 1987, Table 1 (feedback, counter, n = 1000): k = 1 leaves 0.176.
    s, traffic = residue(1000, range(6), feedback=True, stop="counter", k=1)
    assert abs(s - 0.176) <= 0.05, s
    assert abs(traffic - 1.74) <= 0.3, traffic


def test_blind_counter_residue_matches_demers_table_2() -> None:
    # Demers et al. 1987, Table 2 (blind, counter, n = 1000): k = 2 leaves 0.20.
    s, traffic = residue(1000, range(6), feedback=False, stop="counter", k=2)
    assert abs(s - 0.20) <= 0.05, s
    assert abs(traffic - 1.6) <= 0.3, traffic


# --------------------------------------------------------------------- bounded memory


def test_bounded_memory_keeps_the_newest_rumors() -> None:
    core = Push(0, complete(4), memory=4)
    for rumor_id in range(100):
        deliver(core, rumor_id, 1, "push", [[rumor_id, 1, b"%d" % rumor_id]])
        assert len(core.store) <= 4
    assert [r for r in range(100) if core.informed_round(r) is not None] == [96, 97, 98, 99]
    assert core.informed_round(99) == 100


def test_recently_seen_ids_are_not_learned_again() -> None:
    core = Push(0, complete(4), memory=4)
    for rumor_id in range(100):
        deliver(core, 0, 1, "push", [[rumor_id, 1, b""]])
    # Forgotten from the store, but still remembered as seen: a duplicate is ignored.
    for rumor_id in range(90, 100):
        deliver(core, 200, 1, "push", [[rumor_id, 1, b"again"]])
    assert [r for r in range(100) if core.informed_round(r) is not None] == [96, 97, 98, 99]
    assert all(core.store[r].learned == 1 and core.store[r].data == b"" for r in core.store)
    assert len(core.seen) <= 4 * 4


def test_memory_bounds_what_a_message_carries() -> None:
    core = Push(0, complete(4), memory=4)
    for rumor_id in range(10):
        core.inject(rumor_id, b"", 0)
    [(_, _, body)] = core.on_tick(1, rng())
    assert sorted(item[0] for item in body) == [6, 7, 8, 9]


# ------------------------------------------------------------------- malformed bodies

GOOD_RUMORS = [[1, 0, b"ok"]]
BAD_RUMOR_LISTS = {
    "dict": {"id": 1},
    "str": "rumors",
    "bytes": b"rumors",
    "int": 7,
    "none": None,
    "flat triple": [1, 0, b""],
    "item is a map": [{"id": 1, "hops": 0, "data": b""}],
    "short item": [[1, 0]],
    "long item": [[1, 0, b"", 0]],
    "empty item": [[]],
    "negative id": [[-1, 0, b""]],
    "float id": [[1.0, 0, b""]],
    "bool id": [[True, 0, b""]],
    "str id": [["1", 0, b""]],
    "negative hops": [[1, -1, b""]],
    "hops too large": [[1, 65536, b""]],
    "float hops": [[1, 0.5, b""]],
    "str data": [[1, 0, "text"]],
    "none data": [[1, 0, None]],
    "int data": [[1, 0, 3]],
    "huge list": [[i, 0, b""] for i in range(MAX_RUMORS_PER_MESSAGE + 1)],
    "one bad among good": [[1, 0, b"ok"], [2, -1, b""]],
}
BAD_ID_LISTS = {
    "dict": {"ids": [1]},
    "str": "1",
    "int": 1,
    "none": None,
    "negative id": [-1],
    "float id": [1.5],
    "bool id": [False],
    "str id": ["1"],
    "nested": [[1]],
    "huge list": list(range(MAX_RUMORS_PER_MESSAGE + 1)),
    "one bad among good": [1, 2, -3],
}
# (protocol, kind, what its body is)
ACCEPTED = [
    ("push", "push", "rumors"),
    ("pull", "pull", "ids"),
    ("pull", "pull-reply", "rumors"),
    ("push-pull", "exchange", "rumors"),
    ("push-pull", "exchange-reply", "rumors"),
    ("rumor", "rumor", "rumors"),
    ("rumor", "feedback", "ids"),
]
ALL_KINDS = {"push", "pull", "pull-reply", "exchange", "exchange-reply", "rumor", "feedback"}


def cases() -> list[Any]:
    out = []
    for protocol, kind, what in ACCEPTED:
        bad = BAD_RUMOR_LISTS if what == "rumors" else BAD_ID_LISTS
        for label, body in bad.items():
            out.append(pytest.param(protocol, kind, body, id=f"{protocol}-{kind}-{label}"))
    return out


def fresh(protocol: str) -> Dissemination:
    core = PROTOCOLS[protocol](0, complete(4))
    core.inject(5, b"mine", 0)
    return core


def snapshot(core: Any) -> Any:
    return (
        {i: (r.learned, r.hops, r.data, r.hot, r.contacts) for i, r in core.store.items()},
        len(core.seen),
        core.rumor_messages,
    )


@pytest.mark.parametrize(("protocol", "kind", "body"), cases())
def test_malformed_body_is_a_protocol_violation(protocol: str, kind: str, body: Any) -> None:
    core = fresh(protocol)
    before = snapshot(core)
    with pytest.raises(ProtocolViolation):
        deliver(core, 3, 1, kind, body)
    assert snapshot(core) == before
    assert core.informed_round(1) is None


def test_tuples_are_not_lists() -> None:
    # Off the wire containers are lists; anything else is not a body a peer can send.
    with pytest.raises(ProtocolViolation):
        fresh("push").on_message(0, 1, "push", [(1, 0, b"")], rng())
    with pytest.raises(ProtocolViolation):
        fresh("pull").on_message(0, 1, "pull", (1,), rng())


@pytest.mark.parametrize(("protocol", "kind", "what"), ACCEPTED)
def test_well_formed_bodies_are_accepted(protocol: str, kind: str, what: str) -> None:
    core = fresh(protocol)
    body = GOOD_RUMORS if what == "rumors" else [1, 5, 2**64 - 1]
    deliver(core, 3, 1, kind, body)
    deliver(core, 3, 1, kind, [])
    if what == "rumors":
        assert core.informed_round(1) == 4


@pytest.mark.parametrize("protocol", ["push", "pull", "push-pull", "rumor"])
def test_unknown_kind_for_the_protocol_is_a_protocol_violation(protocol: str) -> None:
    accepted = {kind for p, kind, _ in ACCEPTED if p == protocol}
    for kind in [*sorted(ALL_KINDS - accepted), PUSH_SUM, AVG_OFFER, "metrics"]:
        core = fresh(protocol)
        before = snapshot(core)
        with pytest.raises(ProtocolViolation, match="accept"):
            deliver(core, 3, 1, kind, GOOD_RUMORS)
        assert snapshot(core) == before


# ---------------------------------------------------------------- properties (hypothesis)

ANY_ORDER = {"push": Push, "pull": Pull, "push-pull": PushPull}


def scenario(
    data: st.DataObject, *, ttl: int = 0, max_n: int = 24
) -> tuple[type[Dissemination], Topology, dict[str, Any], list[tuple[int, int, int]]]:
    """A protocol, a connected topology, core options and rumors (id, origin, round)."""
    cls = ANY_ORDER[data.draw(st.sampled_from(sorted(ANY_ORDER)), label="protocol")]
    topo = data.draw(connected_topologies(max_n=max_n))
    fanout = data.draw(st.integers(1, min(2, topo.min_degree)), label="fanout")
    count = data.draw(st.integers(1, 3), label="rumors")
    rumors = [
        (1000 + j, data.draw(st.integers(0, topo.n - 1)), data.draw(st.integers(0, 3)))
        for j in range(count)
    ]
    return cls, topo, {"fanout": fanout, "ttl": ttl}, rumors


def simulate(
    cls: type[Dissemination],
    topo: Topology,
    options: dict[str, Any],
    rumors: list[tuple[int, int, int]],
    *,
    seed: int,
    rounds: int,
    after_round: Any = None,
    **sim_options: Any,
) -> Sim:
    cores = fleet(cls, topo, **options)
    sim = Sim(cores, seed=seed, **sim_options)
    ids = [rumor_id for rumor_id, _, _ in rumors]
    for _ in range(rounds):
        for rumor_id, origin, at in rumors:
            if at == sim.round + 1:
                cores[origin].inject(rumor_id, b"%d" % rumor_id, at)
        sim.run_round()
        if after_round is not None:
            after_round(sim)
        if sim.round >= 3 and all(everyone_knows(r)(sim) for r in ids):
            break
    return sim


def outcome(sim: Sim, rumors: list[tuple[int, int, int]]) -> list[list[int | None]]:
    return [informed_rounds(sim.cores, rumor_id) for rumor_id, _, _ in rumors]


@given(st.data())
def test_everyone_is_informed_whatever_the_delivery_order(data: st.DataObject) -> None:
    cls, topo, options, rumors = scenario(data)
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    sim = simulate(
        cls,
        topo,
        options,
        rumors,
        seed=seed,
        rounds=500,
        choose=chooser_strategy(data),
        interleave_ticks=data.draw(st.booleans(), label="interleave ticks"),
        record=True,
    )
    for rumor_id, origin, at in rumors:
        assert informed(sim.cores, rumor_id) == set(range(topo.n))
        assert sim.cores[origin].informed_round(rumor_id) == at
    assert_synchronous(sim)
    # The peers a node picks come from its own generator, and what it sends in a round
    # depends only on what it knew when the round began: the order of deliveries within
    # a round cannot change who learns what when.
    reference = simulate(cls, topo, options, rumors, seed=seed, rounds=500)
    assert outcome(sim, rumors) == outcome(reference, rumors)


@given(st.data())
def test_with_a_ttl_who_learns_when_does_not_depend_on_delivery_order(
    data: st.DataObject,
) -> None:
    ttl = data.draw(st.integers(1, 3), label="ttl")
    cls, topo, options, rumors = scenario(data, ttl=ttl)
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    sim = simulate(
        cls,
        topo,
        options,
        rumors,
        seed=seed,
        rounds=30,
        choose=chooser_strategy(data),
        interleave_ticks=data.draw(st.booleans(), label="interleave ticks"),
        record=True,
    )
    assert_synchronous(sim)
    reference = simulate(cls, topo, options, rumors, seed=seed, rounds=30)
    assert outcome(sim, rumors) == outcome(reference, rumors)


@given(st.data())
def test_the_informed_set_never_shrinks(data: st.DataObject) -> None:
    cls, topo, options, rumors = scenario(data)
    history: list[list[list[int | None]]] = []
    simulate(
        cls,
        topo,
        options,
        rumors,
        seed=data.draw(st.integers(0, 2**32 - 1), label="seed"),
        rounds=60,
        choose=chooser_strategy(data),
        after_round=lambda sim: history.append(outcome(sim, rumors)),
    )
    for before, after in itertools.pairwise(history):
        for old, new in zip(before, after, strict=True):
            # Once a node knows a rumor it keeps it, learned in the same round.
            assert all(o is None or o == n for o, n in zip(old, new, strict=True))
            assert sum(n is not None for n in new) >= sum(o is not None for o in old)


@given(st.data())
def test_duplicated_deliveries_change_nothing(data: st.DataObject) -> None:
    ttl = data.draw(st.sampled_from([0, 0, 1, 2]), label="ttl")
    cls, topo, options, rumors = scenario(data, ttl=ttl)
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rounds = 40
    doubled = simulate(
        cls,
        topo,
        options,
        rumors,
        seed=seed,
        rounds=rounds,
        choose=chooser_strategy(data),
        dup=data.draw(st.floats(0.1, 1.0), label="duplicate probability"),
        fault_seed=data.draw(st.integers(0, 2**16), label="fault seed"),
    )
    once = simulate(cls, topo, options, rumors, seed=seed, rounds=rounds, choose=in_order())
    assert doubled.delivered >= once.delivered
    assert outcome(doubled, rumors) == outcome(once, rumors)
    for a, b in zip(doubled.cores, once.cores, strict=True):
        assert {i: (r.hops, r.data) for i, r in a.store.items()} == {
            i: (r.hops, r.data) for i, r in b.store.items()
        }
