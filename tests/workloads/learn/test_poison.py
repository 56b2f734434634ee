"""Poisoning Sybils: the vectors the attacker crafts, the FedAvg and gossip Sybil cores
that send them, and the server's admission control that keeps late Sybils out.

Every fleet here is built the way a run builds it (`Learning.build` from a scenario), on
six honest GPUs and a few Sybils, so the attacker trains the same learners on the same
data as in a real run. Its reference learners draw from their own generators, so the
honest updates it bases a vector on are recomputed on a deep copy taken beforehand.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from swarm import wire
from swarm.protocols.gossip.core import ProtocolViolation
from swarm.protocols.gossip.topology import build_topology
from swarm.protocols.sybil import Roster
from swarm.scenario import ScenarioError, load
from swarm.workloads.base import BuildContext
from swarm.workloads.learn.compression import decompress
from swarm.workloads.learn.poison import (
    DEFAULT_MAGNITUDE,
    REFERENCES,
    Attacker,
    FedAvgSybil,
    GossipSybil,
)
from swarm.workloads.learn.strategies import MAX_SAMPLES, FedAvgCore
from swarm.workloads.learn.workload import Learning

HONEST = 6


def build(*overrides: str, topology: str = "complete") -> Learning:
    """A sybil-fedavg fleet of 6 honest agents and 2 Sybils, with `overrides` on top."""
    s = load(
        "sybil-fedavg",
        [f"fleet.count={HONEST}", "sybil.count=2", "sybil.compare_clean=false", *overrides],
    )
    roster = Roster.of(s)
    graph = build_topology(topology, roster.total, np.random.default_rng(0), degree=4)
    return Learning.build(BuildContext.of(s, topology=graph))


def over_wire(kind: str, body: Any) -> Any:
    """The body as a peer receives it: packed and decoded by the real wire format."""
    return wire.decode(wire.pack(kind, "a0", 1, 0.0, 1, body)).body


def fit(round: int, values: np.ndarray) -> dict[str, Any]:
    """A server's "fit" call carrying `values` as the global model, as a client receives it."""
    model = {"mode": "none", "values": np.asarray(values, np.float32)}
    return over_wire("fit", {"round": round, "model": model})


def attacker_of(learning: Learning) -> Attacker:
    attackers = {id(core.attacker) for core in learning.sybils.values()}
    assert len(attackers) == 1  # one attacker shared by every Sybil of the process
    return next(iter(learning.sybils.values())).attacker


def a_model(learning: Learning, seed: int = 0) -> np.ndarray:
    """A non-trivial global model: what the server might send in a later round."""
    size = learning.cores[0].size
    return 0.05 * np.random.default_rng(seed).normal(size=size)


def count_calls(attacker: Attacker, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the attacker's (expensive) training of its reference learners."""
    calls: list[int] = []
    original = attacker.honest_rows

    def counted(start: np.ndarray, *, deltas: bool) -> np.ndarray:
        calls.append(1)
        return original(start, deltas=deltas)

    monkeypatch.setattr(attacker, "honest_rows", counted)
    return calls


# --------------------------------------------------------------------------- crafted vectors


@pytest.mark.parametrize(
    ("behaviour", "sybils", "craft"),
    [
        ("sign-flip", 2, lambda rows: -4.0 * rows.mean(axis=0)),
        ("scale", 2, lambda rows: 10.0 * rows.mean(axis=0)),
        ("shift", 5, lambda rows: rows.mean(axis=0) - 1.5 * rows.std(axis=0)),
    ],
)
def test_the_crafted_update_is_the_behaviours_function_of_the_reference_updates(
    behaviour: str, sybils: int, craft: Any
) -> None:
    learning = build(f"sybil.behaviour={behaviour}", f"sybil.count={sybils}")
    attacker = attacker_of(learning)
    assert attacker.magnitude == DEFAULT_MAGNITUDE[behaviour]
    start = a_model(learning)
    shadow = copy.deepcopy(attacker)
    vector = attacker.crafted(0, start, deltas=True)
    rows = shadow.honest_rows(start, deltas=True)
    assert rows.shape == (min(sybils, REFERENCES), start.size)
    assert np.abs(rows).max() > 1e-3  # the references did train
    np.testing.assert_allclose(vector, craft(rows), rtol=1e-12, atol=1e-15)


def test_a_shifted_update_stays_inside_the_honest_spread() -> None:
    learning = build("sybil.behaviour=shift", "sybil.count=5")
    attacker = attacker_of(learning)
    start = a_model(learning)
    rows = copy.deepcopy(attacker).honest_rows(start, deltas=True)
    vector = attacker.crafted(0, start, deltas=True)
    mean, std = rows.mean(axis=0), rows.std(axis=0)
    slack = 1e-12
    assert np.all(vector >= mean - 1.5 * std - slack)
    assert np.all(vector <= mean + 1.5 * std + slack)
    assert np.any(vector < mean - slack)  # and it does shift


def test_magnitude_overrides_the_behaviours_default() -> None:
    learning = build("sybil.magnitude=2.5")
    attacker = attacker_of(learning)
    start = a_model(learning)
    rows = copy.deepcopy(attacker).honest_rows(start, deltas=True)
    np.testing.assert_allclose(
        attacker.crafted(0, start, deltas=True), -2.5 * rows.mean(axis=0), rtol=1e-12
    )


def test_every_sybil_sends_the_same_vector_computed_once_per_round(monkeypatch) -> None:
    learning = build()
    attacker = attacker_of(learning)
    calls = count_calls(attacker, monkeypatch)
    size = learning.cores[0].size
    call = fit(3, np.zeros(size))
    rng = np.random.default_rng(0)
    replies = [learning.sybils[i].on_message(3, 0, "fit", call, rng) for i in (6, 7)]
    values = [decompress(r[0][2]["update"], size) for r in replies]
    assert np.array_equal(values[0], values[1])
    assert len(calls) == 1  # collusion is shared state: trained once for both
    # Another round, or another model in the same round, is computed afresh.
    learning.sybils[6].on_message(3, 0, "fit", fit(3, np.ones(size)), rng)
    assert len(calls) == 2
    learning.sybils[7].on_message(4, 0, "fit", fit(4, np.zeros(size)), rng)
    assert len(calls) == 3


def test_a_sign_flipped_update_points_against_what_honest_clients_send() -> None:
    learning = build("learn.fraction_fit=1.0")
    server = learning.cores[0]
    rng = np.random.default_rng(1)
    sends = server.on_tick(0, rng)
    assert sorted(peer for peer, _, _ in sends) == [1, 2, 3, 4, 5, 6, 7]
    updates = {}
    for peer, kind, body in sends:
        core = learning.cores.get(peer) or learning.sybils[peer]
        [(dst, reply_kind, reply)] = core.on_message(0, 0, kind, over_wire(kind, body), rng)
        assert (dst, reply_kind) == (0, "update")
        updates[peer] = decompress(over_wire(reply_kind, reply)["update"], server.size)
    honest = np.mean([updates[i] for i in range(1, HONEST)], axis=0)
    for sybil in (6, 7):
        assert updates[sybil] @ honest < 0
        assert np.linalg.norm(updates[sybil]) > 2 * np.linalg.norm(honest)  # boosted


# --------------------------------------------------------------------------- label-flip


def test_label_flip_trains_the_same_rows_with_the_source_class_relabelled() -> None:
    flipped = attacker_of(
        build("sybil.behaviour=label-flip", "sybil.source_class=3", "sybil.target_class=8")
    )
    # "scale" with magnitude 1 sends the plain mean of honest training on the same rows.
    plain = attacker_of(build("sybil.behaviour=scale", "sybil.magnitude=1"))
    for (Xf, yf), (Xp, yp) in zip(flipped.shards, plain.shards, strict=True):
        assert np.array_equal(Xf, Xp)
        assert (yp == 3).any() and not (yf == 3).any()
        assert np.array_equal(yf, np.where(yp == 3, 8, yp))
    start = np.zeros(flipped.learners[0].size)
    poisoned = flipped.crafted(0, start, deltas=True)
    honest = plain.crafted(0, start, deltas=True)
    assert np.abs(poisoned - honest).max() > 1e-2
    # The poisoned update teaches the model to read a 3 as an 8.
    learning = build()
    data = learning.dataset
    threes = data.X_test[data.y_test == 3]
    learner = learning.cores[1].learner
    learner.set_params(start + poisoned)
    as_eight_poisoned = float(np.mean(learner.predict(threes) == 8))
    learner.set_params(start + honest)
    as_eight_honest = float(np.mean(learner.predict(threes) == 8))
    assert as_eight_poisoned > as_eight_honest + 0.3


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["sybil.source_class=10"], "sybil.source_class = 10"),
        (["sybil.target_class=12"], "sybil.target_class = 12"),
        (["learn.dataset=breast_cancer", "sybil.target_class=2"], "sybil.target_class = 2"),
    ],
)
def test_label_flip_between_classes_the_dataset_lacks_is_a_scenario_error(
    overrides: list[str], key: str
) -> None:
    with pytest.raises(ScenarioError) as info:
        build("sybil.behaviour=label-flip", *overrides)
    assert key in str(info.value)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- FedAvg Sybils


def test_a_fedavg_sybil_answers_a_fit_with_the_crafted_update_the_server_accepts() -> None:
    learning = build("learn.fraction_fit=1.0")
    server = learning.cores[0]
    sybil = learning.sybils[6]
    assert isinstance(sybil, FedAvgSybil)
    rng = np.random.default_rng(2)
    sends = server.on_tick(0, rng)
    fit = next(body for peer, _, body in sends if peer == 6)
    global_model = decompress(over_wire("fit", fit)["model"], server.size)
    expected = copy.deepcopy(sybil.attacker).crafted(0, global_model, deltas=True)

    [(dst, kind, reply)] = sybil.on_message(0, 0, "fit", over_wire("fit", fit), rng)
    assert (dst, kind) == (0, "update")
    reply = over_wire(kind, reply)
    assert reply["round"] == 0
    assert type(reply["samples"]) is int and 1 <= reply["samples"] <= MAX_SAMPLES
    assert reply["samples"] == len(sybil.attacker.shards[0][1])
    np.testing.assert_array_equal(
        decompress(reply["update"], server.size), expected.astype(np.float32)
    )
    assert sybil.sent == 1 and sybil.received == 1

    # The honest server takes it like any client's update.
    server.on_message(0, 6, "update", reply, rng)
    assert server.rejected == 0 and server.unasked == 0
    for peer, fit_kind, body in sends:
        if peer == 6:
            continue
        core = learning.cores.get(peer) or learning.sybils[peer]
        for _, k, b in core.on_message(0, 0, fit_kind, over_wire(fit_kind, body), rng):
            server.on_message(0, peer, k, over_wire(k, b), rng)
    assert server.rounds_applied == 1 and server.rejected == 0


def garbage(size: int) -> list[tuple[str, Any]]:
    good = {"mode": "none", "values": np.zeros(size, np.float32)}
    return [
        ("update", {"round": 0, "update": good, "samples": 5}),  # not a fit
        ("model", {"round": 0, "update": good}),
        ("fit", None),
        ("fit", [0, good]),
        ("fit", {"model": good}),  # no round
        ("fit", {"round": "0", "model": good}),
        ("fit", {"round": 0.0, "model": good}),
        ("fit", {"round": 0}),  # no model
        ("fit", {"round": 0, "model": None}),
        ("fit", {"round": 0, "model": [0.0] * size}),
        ("fit", {"round": 0, "model": {"mode": "none", "values": np.zeros(size - 1, "f4")}}),
        ("fit", {"round": 0, "model": {"mode": "none", "values": np.zeros(size, "f8")}}),
        ("fit", {"round": 0, "model": {"mode": "none", "values": np.full(size, np.nan, "f4")}}),
        ("fit", {"round": 0, "model": {"mode": "none", "values": np.full(size, np.inf, "f4")}}),
        ("fit", {"round": 0, "model": {"mode": "zip", "values": np.zeros(size, "f4")}}),
        ("fit", {"round": 0, "model": {"mode": "none"}}),
        (
            "fit",
            {
                "round": 0,
                "model": {
                    "mode": "topk",
                    "indices": np.array([size], np.uint16),
                    "values": np.ones(1, np.float32),
                },
            },
        ),
    ]


def test_a_fedavg_sybil_ignores_garbage_without_raising(monkeypatch) -> None:
    learning = build()
    sybil = learning.sybils[7]
    calls = count_calls(sybil.attacker, monkeypatch)
    rng = np.random.default_rng(3)
    for kind, body in garbage(sybil.size):
        assert sybil.on_message(0, 0, kind, over_wire(kind, body), rng) == [], (kind, body)
    assert calls == [] and sybil.sent == 0


def test_a_fedavg_sybil_is_silent_before_it_is_admitted(monkeypatch) -> None:
    learning = build("sybil.start=4", "sybil.identity_cost=1")  # joins at 5 and 6 s
    sybil = learning.sybils[6]
    calls = count_calls(sybil.attacker, monkeypatch)
    call = fit(4, np.zeros(sybil.size))
    rng = np.random.default_rng(4)
    assert sybil.on_message(4, 0, "fit", call, rng) == []
    assert sybil.on_tick(4, rng) == []
    assert calls == [] and sybil.received == 0
    assert len(sybil.on_message(5, 0, "fit", call, rng)) == 1


# --------------------------------------------------------------------------- admission


@pytest.mark.parametrize("period", [1.0, 0.5])
def test_the_server_never_asks_a_client_before_it_is_admitted(period: float) -> None:
    # Sybils 6, 7, 8 join at 3, 4 and 5 s (start 2, one identity per second).
    learning = build(
        "sybil.count=3",
        "sybil.start=2",
        "sybil.identity_cost=1",
        "learn.fraction_fit=1.0",
        f"gossip.period={period}",
    )
    server = learning.cores[0]
    assert isinstance(server, FedAvgCore)
    joins = {6: 3.0, 7: 4.0, 8: 5.0}
    rng = np.random.default_rng(5)
    for r in range(int(7 / period)):
        asked = {peer for peer, _, _ in server.on_tick(r, rng)}
        now = r * period
        assert asked == set(range(1, HONEST)) | {s for s, t in joins.items() if t <= now}


def test_a_sampled_round_never_picks_a_sybil_that_has_not_joined() -> None:
    # One identity admitted every 4 s from 1 s on: 1, 5 (5 Sybils: 1, 5, 9, 13, 17).
    learning = build("sybil.count=5", "sybil.start=1", "sybil.admission_rate=0.25")
    server = learning.cores[0]
    joins = dict(zip(range(6, 11), (1.0, 5.0, 9.0, 13.0, 17.0), strict=True))
    rng = np.random.default_rng(6)
    asked_ever: set[int] = set()
    for r in range(40):
        asked = {peer for peer, _, _ in server.on_tick(r, rng)}
        assert all(joins[p] <= r for p in asked if p in joins), (r, asked)
        asked_ever |= asked
    assert set(joins) <= asked_ever  # once in, they are asked like anyone


# --------------------------------------------------------------------------- gossip Sybils


def test_a_gossip_sybil_pushes_the_crafted_model_to_its_neighbours() -> None:
    learning = build("learn.strategy=gossip", "gossip.fanout=2", topology="regular")
    sybil = learning.sybils[7]
    assert isinstance(sybil, GossipSybil)
    rng = np.random.default_rng(7)
    model = sybil.model.copy()
    expected = copy.deepcopy(sybil.attacker).crafted(0, model, deltas=False)
    sends = sybil.on_tick(0, rng)
    neighbours = set(sybil.topology.neighbors(7).tolist())
    assert len(sends) == 2 and len({p for p, _, _ in sends}) == 2
    for peer, kind, body in sends:
        assert peer in neighbours and kind == "model"
        body = over_wire(kind, body)
        assert body["round"] == 0
        np.testing.assert_array_equal(
            decompress(body["update"], model.size), expected.astype(np.float32)
        )
        # An honest peer takes it as a model to average with.
        if peer < HONEST:
            learning.cores[peer].on_message(0, 7, kind, body, rng)
            assert learning.cores[peer].rejected == 0


def test_a_gossip_sybil_averages_what_it_hears_and_refuses_other_kinds() -> None:
    learning = build("learn.strategy=gossip")
    sybil = learning.sybils[6]
    rng = np.random.default_rng(8)
    size = sybil.model.size
    assert not sybil.model.any()  # it starts where honest learners start: zeros
    theirs = np.full(size, 2.0, np.float32)
    body = over_wire("model", {"round": 0, "update": {"mode": "none", "values": theirs}})
    assert sybil.on_message(0, 1, "model", body, rng) == []
    np.testing.assert_allclose(sybil.model, np.full(size, 1.0))
    bad = {"round": 0, "update": {"mode": "none", "values": np.full(size, np.nan, "f4")}}
    assert sybil.on_message(0, 1, "model", over_wire("model", bad), rng) == []
    np.testing.assert_allclose(sybil.model, np.full(size, 1.0))
    with pytest.raises(ProtocolViolation):
        sybil.on_message(0, 1, "fit", {"round": 0}, rng)
