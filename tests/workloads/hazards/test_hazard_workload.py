"""The hazards workload driven without the fleet: a synchronous loop delivers every send at once."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
import pytest

from swarm.protocols.gossip.core import ProtocolViolation
from swarm.scenario import Scenario, ScenarioError, from_dict
from swarm.seeding import Stream, generator
from swarm.workloads.base import BuildContext
from swarm.workloads.hazards.city import kind_means
from swarm.workloads.hazards.workload import (
    DEFAULT_TTL,
    HAZARD,
    WALL_CLOCK_KEYS,
    Hazards,
    merge_sample,
    results,
)

N = 60
ROUNDS = 100


def scenario(seed: int = 1, rounds: int = ROUNDS, **hazards: Any) -> Scenario:
    # A small, busy city, so that 100 rounds see several hazards with audiences.
    settings = {"size_m": 2000.0, "hazard_rate": 0.2, "hazard_lifetime": 60.0, "radius_m": 600.0}
    return from_dict(
        {
            "fleet": {"count": N, "workload": "hazards", "mix": {"taxi": 1.0}},
            "hazards": settings | hazards,
            "gossip": {"period": 1.0, "fanout": 2},
            "run": {"rounds": rounds, "seed": seed},
        }
    )


def drive(s: Scenario, shards: int = 1) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run every shard in lockstep; return the merged results and metrics rows.

    Cores are visited in index order and sends are delivered first in, first out, so the
    order of events does not depend on how the taxis are split into shards.
    """
    n, period = s.fleet.count, s.gossip.period
    clock = [0.0]
    parts = [
        Hazards.build(BuildContext.of(s, range(k, n, shards), lambda: clock[0]))
        for k in range(shards)
    ]
    cores = dict(sorted((i, c) for hz in parts for i, c in hz.cores.items()))
    assert list(cores) == list(range(n))
    rngs = {i: generator(s.run.seed, Stream.AGENTS, i) for i in cores}
    rows = []
    for r in range(s.max_rounds):
        clock[0] = r * period
        for hz in parts:
            hz.step(r)
        queue = deque((i, send) for i, core in cores.items() for send in core.on_tick(r, rngs[i]))
        while queue:
            src, (dst, kind, body) = queue.popleft()
            sends = cores[dst].on_message(r, src, kind, body, rngs[dst])
            queue.extend((dst, send) for send in sends)
        rows.append(merge_sample([hz.sample() for hz in parts], n))
    return results(s, [hz.partial_results() for hz in parts], s.max_rounds), rows


def deterministic(res: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in res.items() if k not in WALL_CLOCK_KEYS}


@pytest.fixture(scope="module")
def single() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return drive(scenario())


def test_hazards_are_detected_and_awareness_latency_is_measured(single) -> None:
    res, rows = single
    assert res["hazards"] > 5 and res["with_audience"] > 0
    assert res["reached"] > 0
    assert res["reached"] + res["missed"] + res["pending"] == res["with_audience"]
    lat = res["awareness_latency"]
    assert set(lat) == {"p50", "p90", "p99"}
    assert all(math.isfinite(v) and v >= 0 for v in lat.values())
    assert lat["p50"] <= lat["p90"] <= lat["p99"]
    assert res["decisions"] >= res["readings"] > 0
    assert res["messages"] > 0 and res["messages_per_taxi"] == res["messages"] / N
    assert res["rejected"] == 0 and res["untracked"] == 0
    assert 0.8 < res["decision_accuracy"] <= 1.0
    assert rows[-1]["warnings_sent"] == res["messages"]
    assert any(row["aware_fraction"] is not None and row["aware_fraction"] > 0 for row in rows)
    for row in rows:
        assert row["aware"] <= row["audience"]


def test_same_seed_gives_the_same_results_and_another_seed_does_not(single) -> None:
    again = drive(scenario())
    assert deterministic(again[0]) == deterministic(single[0])
    assert again[1] == single[1]
    assert deterministic(drive(scenario(seed=2))[0]) != deterministic(single[0])


def test_two_shards_report_what_one_process_reports(single) -> None:
    res, rows = drive(scenario(), shards=2)
    assert deterministic(res) == deterministic(single[0])
    assert rows == single[1]


def test_no_hazards_gives_no_latency() -> None:
    res, _ = drive(scenario(hazard_rate=1e-9))
    assert res["hazards"] == 0
    assert res["awareness_latency"] == {"p50": None, "p90": None, "p99": None}
    assert res["reached_fraction"] is None


def test_a_decision_over_budget_is_counted() -> None:
    res, _ = drive(scenario(rounds=30, budget_ms=1e-9))
    assert res["decisions"] > 0
    assert res["budget_violations"] == res["decisions"]
    assert res["decision_ms"]["max"] >= res["decision_ms"]["mean"] > 0


# -- one core ------------------------------------------------------------------------------


@pytest.fixture
def hz() -> Hazards:
    """Taxi 0 at (100, 100) with taxis 1-3 close by; everyone else across the city."""
    hz = Hazards.build(BuildContext.of(scenario(), range(N), lambda: 5.0))
    for i in range(N):
        hz.taxis.place(i, 1900.0, 1900.0)
    for i, x in enumerate([100.0, 150.0, 200.0, 250.0]):
        hz.taxis.place(i, x, 100.0)
    return hz


def report(hz: Hazards, features: np.ndarray, **changes: Any) -> dict[str, Any]:
    body = {"round": 5, "x": 120.0, "y": 80.0, "tag": -1, "ttl": DEFAULT_TTL}
    return body | {"embedding": hz.model.embed(features)} | changes


def real(hz: Hazards) -> np.ndarray:
    features = kind_means(hz.model.n_features)[0]
    assert hz.model.scores(hz.model.embed(features))[0] > 0.9
    return features


def spurious(hz: Hazards) -> np.ndarray:
    features = np.zeros(hz.model.n_features)
    assert hz.model.scores(hz.model.embed(features))[0] < 0.1
    return features


def test_a_report_is_relayed_once_to_nearby_taxis_with_one_hop_less(hz: Hazards) -> None:
    core, rng = hz.cores[0], np.random.default_rng(0)
    sends = core.on_message(5, 2, HAZARD, report(hz, real(hz)), rng)
    assert sorted(peer for peer, _, _ in sends) == [1, 3]  # not itself, not the sender
    assert all(kind == HAZARD and body["ttl"] == DEFAULT_TTL - 1 for _, kind, body in sends)
    assert core.known(120.0, 80.0) and core.sent == 2
    assert core.on_message(5, 3, HAZARD, report(hz, real(hz)), rng) == []  # known already
    assert hz.cores[1].on_message(5, 0, HAZARD, report(hz, real(hz), ttl=0), rng) == []
    assert hz.cores[1].known(120.0, 80.0)  # learned, but the report goes no further
    assert core.false_alarms_heard == 1  # tag -1: a spurious reading someone judged real


def test_the_decision_ignores_the_ground_truth_tag(hz: Hazards) -> None:
    rng = np.random.default_rng(0)
    sends = hz.cores[0].on_message(5, 2, HAZARD, report(hz, spurious(hz), tag=0), rng)
    assert sends == [] and not hz.cores[0].known(120.0, 80.0)
    assert hz.cores[0].decisions == 1


MALFORMED = {
    "not a map": lambda good: None,
    "a list": lambda good: list(good.values()),
    "missing fields": lambda good: {"round": 5},
    "an extra field": lambda good: good | {"extra": 1},
    "negative round": lambda good: good | {"round": -1},
    "bool round": lambda good: good | {"round": True},
    "float round": lambda good: good | {"round": 5.0},
    "NaN x": lambda good: good | {"x": math.nan},
    "x outside": lambda good: good | {"x": -1.0},
    "y outside": lambda good: good | {"y": 1e9},
    "string x": lambda good: good | {"x": "120"},
    "tag below -2": lambda good: good | {"tag": -3},
    "float tag": lambda good: good | {"tag": 1.5},
    "no tag": lambda good: good | {"tag": None},
    "ttl too large": lambda good: good | {"ttl": DEFAULT_TTL + 1},
    "negative ttl": lambda good: good | {"ttl": -1},
    "bool ttl": lambda good: good | {"ttl": False},
}


@pytest.mark.parametrize("make", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_report_is_a_protocol_violation(hz: Hazards, make: Any) -> None:
    body = make(report(hz, real(hz)))
    with pytest.raises(ProtocolViolation):
        hz.cores[0].on_message(5, 2, HAZARD, body, np.random.default_rng(0))
    assert hz.cores[0].sent == 0


def test_an_unknown_kind_is_a_protocol_violation(hz: Hazards) -> None:
    with pytest.raises(ProtocolViolation):
        hz.cores[0].on_message(5, 2, "push", report(hz, real(hz)), np.random.default_rng(0))


@pytest.mark.parametrize(
    "embedding",
    [
        np.full(8, np.nan, dtype=np.float32),
        np.zeros(7, dtype=np.float32),
        np.zeros((2, 4), dtype=np.float32),
        "not a vector",
        [1e40] * 8,
    ],
)
def test_a_bad_embedding_is_rejected_not_a_violation(hz: Hazards, embedding: Any) -> None:
    core = hz.cores[0]
    body = report(hz, real(hz)) | {"embedding": embedding}
    assert core.on_message(5, 2, HAZARD, body, np.random.default_rng(0)) == []
    assert core.rejected == 1 and not core.known(120.0, 80.0)


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "value"), [("speed_mps", 0.0), ("size_m", -5.0)])
def test_a_bad_hazards_value_is_a_scenario_error_naming_the_key(key: str, value: float) -> None:
    with pytest.raises(ScenarioError, match=rf"hazards\.{key}\b"):
        Hazards.build(BuildContext.of(scenario(**{key: value}), range(N)))
