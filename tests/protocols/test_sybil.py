"""The Sybil attacker's shared machinery: when identities join, what the scenario allows,
how an eclipse rewrites the overlay, and the cores that flood or swallow messages.

The roster is the schedule every shard of a run computes alone, so its join times are
checked exactly; the junk a flooding Sybil sends must be well-formed (accepted by the
honest core it is aimed at), or the flood would only measure the decoder.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarm import wire
from swarm.fleet import Fleet
from swarm.placement import overlay, place_agents
from swarm.protocols.gossip import aggregation, dissemination
from swarm.protocols.gossip.core import Send
from swarm.protocols.gossip.topology import Topology, build_topology
from swarm.protocols.sybil import (
    ECLIPSE_MAX_COMPLETE,
    EclipseCore,
    FloodCore,
    Roster,
    SybilCore,
    eclipse,
    sybil_ids,
)
from swarm.scenario import Scenario, ScenarioError, from_dict, load
from swarm.workloads.gossip.workload import gossip_junk


def gossip_scenario(
    agents: int = 10, gossip: dict[str, Any] | None = None, **sybil: Any
) -> Scenario:
    """A small plain-gossip fleet with a [sybil] section (flooding unless `sybil` says)."""
    return from_dict(
        {
            "fleet": {"count": agents},
            "gossip": gossip or {},
            "sybil": {"behaviour": "flood", **sybil},
        }
    )


def over_wire(kind: str, body: Any) -> Any:
    """The body as a peer receives it: packed and decoded by the real wire format."""
    return wire.decode(wire.pack(kind, "s0", 1, 0.0, 1, body)).body


# --------------------------------------------------------------------------- roster


def test_identities_join_at_start_when_creating_them_is_free() -> None:
    roster = Roster.of(gossip_scenario(10, count=3, start=7.5))
    assert roster.join_times == [7.5, 7.5, 7.5]
    assert (roster.honest, roster.count, roster.total) == (10, 3, 13)
    assert roster.sybils == range(10, 13)


def test_identity_cost_delays_the_kth_identity_to_start_plus_k_plus_one_costs() -> None:
    roster = Roster.of(gossip_scenario(count=4, start=10.0, identity_cost=2.5))
    assert roster.join_times == [12.5, 15.0, 17.5, 20.0]


def test_admission_rate_spaces_joins_by_its_inverse() -> None:
    roster = Roster.of(gossip_scenario(count=4, start=3.0, admission_rate=0.5))
    assert roster.join_times == [3.0, 5.0, 7.0, 9.0]


def test_admission_rate_and_identity_cost_together_take_the_later_of_the_two() -> None:
    # Created at 1, 2, 3, 4 (cost 1); admitted at most one per 2 s: 1, 3, 5, 7.
    slow_door = Roster.of(gossip_scenario(count=4, identity_cost=1.0, admission_rate=0.5))
    assert slow_door.join_times == [1.0, 3.0, 5.0, 7.0]
    # Created at 3, 6, 9 (cost 3); the door (one per second) is never the bottleneck.
    slow_maker = Roster.of(gossip_scenario(count=3, identity_cost=3.0, admission_rate=1.0))
    assert slow_maker.join_times == [3.0, 6.0, 9.0]
    # Mixed: created at 2.5, 3, 3.5, 4 (start 2, cost 0.5); door every 1 s from the first.
    mixed = Roster.of(gossip_scenario(count=4, start=2.0, identity_cost=0.5, admission_rate=1.0))
    assert mixed.join_times == [2.5, 3.5, 4.5, 5.5]


@given(
    count=st.integers(1, 30),
    start=st.floats(0.0, 1e4),
    cost=st.floats(0.0, 100.0),
    rate=st.floats(0.0, 100.0),
)
def test_join_times_are_the_earliest_the_cost_and_the_door_allow(
    count: int, start: float, cost: float, rate: float
) -> None:
    roster = Roster.of(
        gossip_scenario(count=count, start=start, identity_cost=cost, admission_rate=rate)
    )
    times = roster.join_times
    assert len(times) == count
    gap = 1.0 / rate if rate > 0 else 0.0
    for k, t in enumerate(times):
        created = start + (k + 1) * cost
        assert t >= created  # never before the attacker has made it
        if k:
            assert t >= times[k - 1] + gap * (1 - 1e-12)  # at most `rate` per second
            # ... and no later than one of the two constraints forces
            assert t == created or t == pytest.approx(times[k - 1] + gap, rel=1e-12)
        else:
            assert t == created
    if rate > 0:
        # In any window of one second, at most ceil(rate) identities are admitted.
        for t in times:
            inside = sum(t <= u < t + 1.0 - 1e-9 for u in times)
            assert inside <= math.ceil(rate)


def test_admitted_and_joined_follow_the_join_times_and_honest_agents_are_always_in() -> None:
    roster = Roster.of(
        gossip_scenario(5, count=3, start=4.0, identity_cost=1.0, admission_rate=1.0)
    )
    assert roster.join_times == [5.0, 6.0, 7.0]
    for now in (0.0, 4.99, 5.0, 6.5, 100.0):
        assert all(roster.admitted(i, now) for i in range(5))  # honest: from the start
        assert roster.joined(now) == sum(t <= now for t in roster.join_times)
    assert roster.joined(0.0) == 0 and roster.joined(5.0) == 1 and roster.joined(7.0) == 3
    assert not roster.admitted(5, 4.99)
    assert roster.admitted(5, 5.0)
    assert not roster.admitted(6, 5.99) and roster.admitted(6, 6.0)
    assert not roster.admitted(7, 6.99) and roster.admitted(7, 7.0)
    assert [roster.is_sybil(i) for i in range(8)] == [False] * 5 + [True] * 3


def test_a_fleet_without_sybils_has_an_empty_roster() -> None:
    roster = Roster.of(gossip_scenario(6))
    assert roster.count == 0 and roster.total == 6 and roster.sybils == range(6, 6)
    assert roster.joined(1e9) == 0
    assert all(roster.admitted(i, 0.0) and not roster.is_sybil(i) for i in range(6))


def test_sybil_ids_are_zero_padded_and_distinct() -> None:
    assert sybil_ids(3) == ["s0", "s1", "s2"]
    ids = sybil_ids(11)
    assert ids[0] == "s00" and ids[-1] == "s10" and len(set(ids)) == 11
    assert sybil_ids(0) == []


# --------------------------------------------------------------------------- cross-checks


@pytest.mark.parametrize(
    ("name", "data", "keys"),
    [
        (
            "fake-hazard on learn",
            {"sybil": {"behaviour": "fake-hazard"}},
            ["sybil.behaviour", "fleet.workload"],
        ),
        (
            "suppress on learn",
            {"sybil": {"behaviour": "suppress"}},
            ["sybil.behaviour", "fleet.workload"],
        ),
        (
            "allreduce with sybils",
            {"learn": {"strategy": "allreduce"}},
            ["sybil.count", "learn.strategy"],
        ),
        (
            "eclipse on fedavg",
            {"sybil": {"behaviour": "eclipse"}},
            ["sybil.behaviour", "learn.strategy"],
        ),
        (
            "label-flip onto its own class",
            {"sybil": {"behaviour": "label-flip", "source_class": 3, "target_class": 3}},
            ["sybil.target_class", "sybil.source_class"],
        ),
    ],
)
def test_sybil_sections_that_do_not_fit_the_learning_workload_are_refused(
    name: str, data: dict[str, Any], keys: list[str]
) -> None:
    base = load("sybil-fedavg").to_dict()
    for section, values in data.items():
        base[section] |= values
    with pytest.raises(ScenarioError) as info:
        from_dict(base)
    for key in keys:
        assert key in str(info.value), name


@pytest.mark.parametrize(
    ("sybil", "gossip", "keys"),
    [
        ({"behaviour": "sign-flip"}, {}, ["sybil.behaviour", "fleet.workload"]),
        ({"behaviour": "fake-hazard"}, {}, ["sybil.behaviour", "fleet.workload"]),
        ({"behaviour": "eclipse", "victim": 10}, {}, ["sybil.victim", "fleet.count"]),
        ({"behaviour": "eclipse", "victim": 99}, {}, ["sybil.victim"]),
        ({"behaviour": "eclipse", "count": 2}, {"fanout": 3}, ["gossip.fanout"]),
    ],
)
def test_sybil_sections_that_do_not_fit_the_gossip_workload_are_refused(
    sybil: dict[str, Any], gossip: dict[str, Any], keys: list[str]
) -> None:
    sybil = {"count": 3, **sybil}
    with pytest.raises(ScenarioError) as info:
        from_dict({"fleet": {"count": 10}, "gossip": gossip, "sybil": sybil})
    message = str(info.value)
    assert "\n" not in message
    for key in keys:
        assert key in message


def test_eclipse_on_hazards_is_refused() -> None:
    data = load("edge-guardian-sybil").to_dict()
    data["sybil"]["behaviour"] = "eclipse"
    with pytest.raises(ScenarioError, match=r"sybil\.behaviour.*fleet\.workload"):
        from_dict(data)


def test_the_limits_of_the_sybil_checks_are_allowed() -> None:
    # The last agent may be the victim; a fanout equal to the Sybil count fits the view.
    s = from_dict(
        {
            "fleet": {"count": 10},
            "gossip": {"fanout": 2},
            "sybil": {"count": 2, "behaviour": "eclipse", "victim": 9},
        }
    )
    assert s.sybil.victim == 9
    # An eclipse of a gossip-learning peer is fine.
    s = load("sybil-fedavg", ["learn.strategy=gossip", "sybil.behaviour=eclipse"])
    assert s.learn.strategy == "gossip"
    # Label-flip between two different classes is fine.
    s = load("sybil-fedavg", ["sybil.behaviour=label-flip", "sybil.target_class=7"])
    assert (s.sybil.source_class, s.sybil.target_class) == (0, 7)
    # Without Sybils the behaviour is never checked against the workload.
    s = load("sybil-fedavg", ["sybil.count=0", "sybil.behaviour=fake-hazard"])
    assert s.sybil.count == 0


# --------------------------------------------------------------------------- eclipse


def edge_set(topology: Topology) -> set[tuple[int, int]]:
    return {(i, int(j)) for i in range(topology.n) for j in topology.neighbors(i) if i < int(j)}


def without(edges: set[tuple[int, int]], victim: int) -> set[tuple[int, int]]:
    return {(u, v) for u, v in edges if victim not in (u, v)}


@pytest.mark.parametrize(
    ("name", "n", "victim", "sybils"),
    [
        ("complete", 13, 4, range(10, 13)),
        ("complete", 6, 0, range(5, 6)),
        ("ring", 13, 0, range(10, 13)),
        ("ring", 30, 7, range(25, 30)),
        ("regular", 24, 11, range(20, 24)),
        ("small-world", 40, 3, range(36, 40)),
    ],
)
def test_eclipse_gives_the_victim_only_sybil_neighbours_and_keeps_every_other_edge(
    name: str, n: int, victim: int, sybils: range
) -> None:
    topology = build_topology(name, n, np.random.default_rng(5), degree=4)
    before = edge_set(topology)
    after_topology = eclipse(topology, victim, sybils)
    assert after_topology.n == n
    assert after_topology.neighbors(victim).tolist() == list(sybils)
    after = edge_set(after_topology)
    assert without(after, victim) == without(before, victim)
    assert after - without(before, victim) == {(victim, s) for s in sybils}
    # The graph stays undirected: every Sybil sees the victim.
    for s in sybils:
        assert victim in after_topology.neighbors(s).tolist()
    # Sampling the victim's peers now only ever yields Sybils.
    rng = np.random.default_rng(0)
    drawn = {p for _ in range(50) for p in after_topology.sample(victim, rng, 1)}
    assert drawn <= set(sybils)


def test_eclipse_of_a_complete_overlay_keeps_everyone_else_fully_connected() -> None:
    n, victim, sybils = 12, 2, range(9, 12)
    topology = eclipse(Topology("complete", n), victim, sybils)
    for i in range(n):
        if i == victim:
            continue
        expected = [j for j in range(n) if j != i and (j != victim or i in sybils)]
        assert topology.neighbors(i).tolist() == expected
    assert topology.edges == n * (n - 1) // 2 - (n - 1) + len(sybils)


def test_eclipse_refuses_a_complete_overlay_too_large_to_rewrite() -> None:
    big = Topology("complete", ECLIPSE_MAX_COMPLETE + 1)
    with pytest.raises(ValueError, match=r"sybil\.behaviour.*network\.topology"):
        eclipse(big, 0, range(ECLIPSE_MAX_COMPLETE - 2, ECLIPSE_MAX_COMPLETE + 1))
    # Built from a scenario, the same refusal is a scenario error a user can act on.
    scenario = gossip_scenario(ECLIPSE_MAX_COMPLETE - 2, behaviour="eclipse", count=3, victim=0)
    with pytest.raises(ScenarioError, match=r"sybil\.behaviour.*network\.topology"):
        overlay(scenario, place_agents(scenario), Roster.of(scenario))
    # A sparse overlay of the same size is rewritten.
    ring = build_topology("ring", ECLIPSE_MAX_COMPLETE + 1, np.random.default_rng(0))
    out = eclipse(ring, 0, range(ECLIPSE_MAX_COMPLETE - 2, ECLIPSE_MAX_COMPLETE + 1))
    assert out.neighbors(0).tolist() == list(
        range(ECLIPSE_MAX_COMPLETE - 2, ECLIPSE_MAX_COMPLETE + 1)
    )


def test_the_fleet_builds_the_eclipsed_overlay_over_honest_agents_and_sybils() -> None:
    s = from_dict(
        {
            "fleet": {"count": 12},
            "gossip": {"fanout": 2},
            "network": {"topology": "regular", "degree": 4},
            "sybil": {"count": 3, "behaviour": "eclipse", "victim": 5},
        }
    )
    fleet = Fleet(s)
    assert fleet.topology.n == 15
    assert fleet.topology.neighbors(5).tolist() == [12, 13, 14]
    assert all(5 not in fleet.topology.neighbors(i).tolist() for i in range(12))
    assert all(isinstance(fleet.sybil_cores[i], EclipseCore) for i in range(12, 15))


# --------------------------------------------------------------------------- cores


class Recording(SybilCore):
    """A Sybil that sends one message to agent 0 per round and records its calls."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.acted: list[int] = []
        self.heard: list[tuple[int, int, str]] = []

    def act(self, round: int, rng: np.random.Generator) -> list[Send]:
        self.acted.append(round)
        return [(0, "push", [])]

    def hear(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        self.heard.append((round, src, kind))
        return [(src, "push", [])]


def late_roster() -> Roster:
    """5 honest agents; Sybil 5 joins at 3 s, Sybil 6 at 6 s."""
    roster = Roster.of(gossip_scenario(5, count=2, identity_cost=3.0))
    assert roster.join_times == [3.0, 6.0]
    return roster


@pytest.mark.parametrize(("period", "first"), [(1.0, 3), (0.5, 6), (2.0, 2)])
def test_a_sybil_is_silent_and_deaf_until_its_admission_round(period: float, first: int) -> None:
    core = Recording(5, late_roster(), period)
    rng = np.random.default_rng(0)
    for r in range(first):
        assert core.on_tick(r, rng) == []
        assert core.on_message(r, 1, "push", [], rng) == []
    assert core.acted == [] and core.heard == []
    assert core.sent == 0 and core.received == 0
    assert core.on_tick(first, rng) == [(0, "push", [])]
    assert core.on_message(first, 2, "push", [], rng) == [(2, "push", [])]
    assert core.acted == [first] and core.heard == [(first, 2, "push")]
    assert core.sent == 2 and core.received == 1
    assert core.active


def test_an_eclipsing_sybil_swallows_everything_once_admitted() -> None:
    core = EclipseCore(6, late_roster(), 1.0)
    rng = np.random.default_rng(0)
    for r in range(10):
        assert core.on_tick(r, rng) == []
        assert core.on_message(r, 0, "push", [[1, 0, b""]], rng) == []
    assert core.sent == 0
    assert core.received == 4  # rounds 6..9: what it was sent after admission


def test_a_flooding_sybil_sends_rate_junk_messages_to_honest_agents_only() -> None:
    s = gossip_scenario(8, count=4, flood_rate=25, identity_cost=1.0)
    roster = Roster.of(s)
    junk = gossip_junk(s)
    core = FloodCore(10, roster, 1.0, 25, junk)  # the third Sybil: joins at 3 s
    rng = np.random.default_rng(1)
    assert all(core.on_tick(r, rng) == [] for r in range(3))
    targets: set[int] = set()
    for r in range(3, 8):
        sends = core.on_tick(r, rng)
        assert len(sends) == 25
        for target, kind, _ in sends:
            assert type(target) is int and 0 <= target < roster.honest
            assert kind == dissemination.PUSH
            targets.add(target)
    assert core.sent == 5 * 25
    assert len(targets) == roster.honest  # spread over the whole honest fleet


def honest_core(protocol: str, me: int, topology: Topology) -> Any:
    if protocol in aggregation.PROTOCOLS:
        return aggregation.PROTOCOLS[protocol](me, topology, 0.5)
    return dissemination.PROTOCOLS[protocol](me, topology)


@pytest.mark.parametrize("protocol", ["push", "rumor", "pull", "push-pull", "push-sum", "average"])
def test_gossip_junk_is_accepted_by_the_honest_core_of_the_protocol(protocol: str) -> None:
    s = gossip_scenario(8, gossip={"protocol": protocol}, count=2)
    junk = gossip_junk(s)
    topology = build_topology("complete", 10, np.random.default_rng(0))
    core = honest_core(protocol, 3, topology)
    rng = np.random.default_rng(2)
    kinds = set()
    for r in range(20):
        kind, body = junk(r, rng)
        kinds.add(kind)
        # The honest core takes it as a peer's message: no ProtocolViolation.
        core.on_message(r, 8, kind, over_wire(kind, body), rng)
    assert len(kinds) == 1
    if protocol in dissemination.PROTOCOLS:
        assert len(core.store) == 20  # every junk message carried a fresh rumor
    elif protocol == "push-sum":
        assert core.w == pytest.approx(21.0)  # each message added weight 1
        assert math.isfinite(core.estimate)
    else:
        assert core.x != 0.5 and math.isfinite(core.x)  # each offer moved the value
