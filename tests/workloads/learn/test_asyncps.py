"""The asynchronous parameter server: updates applied on arrival, their staleness counted
and (with `inverse`) weighed down, at most one local epoch per client per round, and a
client whose model was lost asks again."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from test_strategies import make_cores, over_wire

from swarm.devices.profiles import load_profiles
from swarm.protocols.gossip.core import ProtocolViolation
from swarm.workloads.learn.asyncps import AsyncCore
from swarm.workloads.learn.strategies import PROBE_AFTER


def job(n: int, **kw: Any) -> list[AsyncCore]:
    return make_cores(AsyncCore, n, server=0, clients=list(range(1, n)), **kw)


def run(cores: list[AsyncCore], rounds: range, *, lose: set[int] = frozenset()) -> int:
    """Tick and deliver in lockstep; messages to the agents in `lose` vanish. Returns the
    number of messages delivered."""
    rngs = [np.random.default_rng(3 + i) for i in range(len(cores))]
    delivered = 0
    for r in rounds:
        pending = [
            (c.index, peer, kind, over_wire(kind, body))
            for c in cores
            for peer, kind, body in c.on_tick(r, rngs[c.index])
        ]
        while pending:
            src, dst, kind, body = pending.pop(0)
            if dst in lose:
                continue
            delivered += 1
            out = cores[dst].on_message(r, src, kind, body, rngs[dst])
            pending += [(dst, p, k, over_wire(k, b)) for p, k, b in out]
    return delivered


def test_each_client_trains_once_per_round_and_every_update_is_applied() -> None:
    cores = job(4)
    run(cores, range(5))
    server = cores[0]
    assert server.version == len(server.staleness) == 3 * 5  # 3 clients, 5 rounds
    # Within a round the three updates arrive one after another: 0, 1 and 2 behind.
    assert sorted(set(server.staleness)) == [0, 1, 2]
    assert all(np.isfinite(c.learner.get_params()).all() for c in cores)


@pytest.mark.parametrize("weighting", ["none", "inverse"])
def test_a_stale_update_counts_its_staleness_and_is_weighed_by_it(weighting: str) -> None:
    server = job(3, weighting=weighting)[0]
    rng = np.random.default_rng(0)
    server.on_tick(0, rng)
    delta = np.full(server.size, 0.5, np.float32)

    def update(version: int) -> dict[str, Any]:
        payload = {"mode": "none", "values": delta}
        return over_wire("update", {"round": version, "update": payload, "samples": 10})

    for _ in range(3):  # client 1 moves the model on three times
        server.on_message(0, 1, "update", update(server.version), rng)
    before = server.learner.get_params()
    server.on_message(0, 2, "update", update(0), rng)  # client 2 trained from version 0
    assert server.staleness[-1] == 3
    step = server.learner.get_params() - before
    scale = 1 / (1 + 3) if weighting == "inverse" else 1.0
    assert np.allclose(step, scale * 0.5)


def test_a_client_whose_model_was_lost_asks_again() -> None:
    cores = job(3)
    run(cores, range(1), lose={2})  # the first model never reaches client 2
    assert cores[2]._trained_round == -1  # never heard from its server yet
    run(cores, range(1, 1 + PROBE_AFTER + 2))
    assert cores[2]._trained_round >= PROBE_AFTER  # it beat, got the model, trained


@pytest.mark.parametrize(
    ("src", "body", "counter"),
    [
        (1, {"round": 99, "samples": 5}, "unknown"),  # a model from the future
        (1, {"round": 0, "samples": 0}, "rejected"),
        (1, {"round": 0, "samples": "5"}, "rejected"),
        (7, {"round": 0, "samples": 5}, "unknown"),  # not a client
    ],
)
def test_the_server_refuses_impossible_updates(src: int, body: dict, counter: str) -> None:
    server = job(3)[0]
    rng = np.random.default_rng(0)
    server.on_tick(0, rng)
    payload = {"mode": "none", "values": np.zeros(server.size, np.float32)}
    before = server.learner.get_params()
    assert (
        server.on_message(0, src, "update", over_wire("update", {**body, "update": payload}), rng)
        == []
    )
    assert getattr(server, counter) == 1 and server.version == 0
    assert np.array_equal(server.learner.get_params(), before)


def test_a_client_takes_models_from_its_server_only() -> None:
    client = job(3)[1]
    model = {"mode": "none", "values": np.zeros(client.size, np.float32)}
    with pytest.raises(ProtocolViolation):
        client.on_message(
            0, 2, "fit", over_wire("fit", {"round": 0, "model": model}), np.random.default_rng(0)
        )


def test_a_slow_client_does_not_ask_again_while_it_trains() -> None:
    """A straggler whose epoch takes 20 rounds: one update in flight, no beats meanwhile."""
    profile = dataclasses.replace(load_profiles({})["gpu"], flops=1.0)  # epochs take ages
    cores = job(3, profile=profile)
    sends = run(cores, range(1))
    assert sends > 0
    client = cores[1]
    assert client._busy_until > 10
    rng = np.random.default_rng(0)
    for r in range(1, 10):
        assert client.on_tick(r, rng) == []


def test_a_model_that_arrives_while_the_client_trains_waits_for_it() -> None:
    """A straggler still training when a second model reaches it (a probe's answer, a
    repaired server's first broadcast) keeps that model for later: one training at a time."""
    profile = dataclasses.replace(load_profiles({})["gpu"], flops=1.0)
    client = job(3, profile=profile)[1]
    rng = np.random.default_rng(0)
    model = {"mode": "none", "values": np.zeros(client.size, np.float32)}
    assert client.on_message(0, 0, "fit", over_wire("fit", {"round": 0, "model": model}), rng)
    trained = client.samples_trained
    assert client.on_message(1, 0, "fit", over_wire("fit", {"round": 1, "model": model}), rng) == []
    assert client.samples_trained == trained and client._base is not None


def lockstep(cores: list[AsyncCore], rounds: range, dead: set[int]) -> None:
    """Like `run`, but the members in `dead` neither act nor hear anything."""
    rngs = [np.random.default_rng(7 + i) for i in range(len(cores))]
    for r in rounds:
        pending = [
            (c.index, peer, kind, over_wire(kind, body))
            for c in cores
            if c.index not in dead
            for peer, kind, body in c.on_tick(r, rngs[c.index])
        ]
        while pending:
            src, dst, kind, body = pending.pop(0)
            if dst in dead:
                continue
            out = cores[dst].on_message(r, src, kind, body, rngs[dst])
            pending += [(dst, p, k, over_wire(k, b)) for p, k, b in out]


def test_a_dead_server_is_replaced_by_the_next_candidate_and_steps_down_when_back() -> None:
    from swarm.workloads.learn.strategies import ELECTION_AFTER

    cores = job(4, candidates=[0, 1, 2, 3])
    lockstep(cores, range(3), dead=set())
    assert cores[0].version > 0
    lockstep(cores, range(3, 3 + PROBE_AFTER + ELECTION_AFTER + 3), dead={0})
    assert all(c.server == 1 for c in cores[1:])  # every client moved to agent 1
    assert cores[1].is_server and cores[1].version > 0 and cores[1].elections == 1
    served = cores[1].version
    back = job(4, candidates=[0, 1, 2, 3])[0]  # agent 0 repaired: fresh, thinks it serves
    cores[0] = back
    lockstep(cores, range(20, 30), dead=set())
    assert not back.is_server and back.server == 1  # told by the clients, it stepped down
    assert back._trained_round > 20  # and learns as agent 1's client
    assert cores[1].version > served and back.version == 0


def test_a_fit_from_an_earlier_candidate_is_answered_with_the_current_server() -> None:
    client = job(3, candidates=[0, 1, 2])[2]
    client.server = 1
    model = {"mode": "none", "values": np.zeros(client.size, np.float32)}
    sends = client.on_message(
        5, 0, "fit", over_wire("fit", {"round": 0, "model": model}), np.random.default_rng(0)
    )
    assert sends == [(0, "beat", {"round": 0, "server": 1})]
    assert client._trained_round == -1  # it did not train from the old server's model
