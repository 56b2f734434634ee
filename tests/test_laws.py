"""Analytic laws: exact against hand-computed numbers, and strict about their inputs."""

from __future__ import annotations

import math

import pytest

from swarm import laws


@pytest.mark.parametrize(("n", "expected"), [(1, 0.0), (2, 1000.0), (4, 1500.0), (8, 1750.0)])
def test_ring_allreduce_bytes_per_node_exact(n: int, expected: float) -> None:
    assert laws.ring_allreduce_bytes_per_node(n, 1000) == expected


def test_ring_allreduce_bytes_approach_twice_the_model() -> None:
    assert laws.ring_allreduce_bytes_per_node(1000, 1e9) < 2e9
    assert math.isclose(laws.ring_allreduce_bytes_per_node(1000, 1e9), 1.998e9)


def test_ring_allreduce_seconds_by_hand() -> None:
    # n = 4, 1 MB model, 8 Mbit/s, 10 ms: 6 steps * 0.01 + 1.5e6 B * 8 / 8e6 = 0.06 + 1.5
    assert math.isclose(laws.ring_allreduce_seconds(4, 1e6, 8e6, 0.01), 1.56)
    assert laws.ring_allreduce_seconds(1, 1e6, 8e6, 0.01) == 0.0
    assert laws.ring_allreduce_seconds(2, 1e6, 8e6, 0.0) == 1.0


def test_parameter_server_bytes_by_hand() -> None:
    full = laws.parameter_server_bytes(10, 100.0)
    assert full == {
        "clients": 10,
        "client_upload": 100.0,
        "client_download": 100.0,
        "uploaded": 1000.0,
        "downloaded": 1000.0,
        "server_total": 2000.0,
    }
    assert laws.parameter_server_bytes(10, 100.0, fraction=0.3)["clients"] == 3
    assert laws.parameter_server_bytes(10, 100.0, fraction=0.3)["server_total"] == 600.0
    assert laws.parameter_server_bytes(100, 1.0, fraction=0.001)["clients"] == 1
    assert laws.parameter_server_bytes(1, 5.0)["uploaded"] == 5.0


def test_gossip_rounds_fanout_one_is_push_rounds_complete() -> None:
    for n in [1, 2, 3, 10, 100, 1000, 12_345, 10**6]:
        assert laws.gossip_rounds(n) == laws.push_rounds_complete(n)
        assert laws.gossip_rounds(n, 1) == laws.push_rounds_complete(n)


def test_push_rounds_complete_is_unchanged() -> None:
    assert laws.push_rounds_complete(1) == 0.0
    assert laws.push_rounds_complete(1024) == 10 + math.log(1024)


def test_gossip_rounds_higher_fanout_by_hand() -> None:
    # n = 81, f = 2: log3(81) + ln(81)/2 = 4 + 2.197...
    assert math.isclose(laws.gossip_rounds(81, 2), 4 + math.log(81) / 2)
    assert laws.gossip_rounds(1, 5) == 0.0
    assert laws.gossip_rounds(1000, 4) < laws.gossip_rounds(1000, 2) < laws.gossip_rounds(1000)


def test_bisection_saturation_by_hand() -> None:
    # 64 nodes, 32 send 1 Gbit/s each across 8 links of 10 Gbit/s: 32 / 80 = 0.4
    assert math.isclose(laws.bisection_saturation(64, 8, 10e9, 1e9), 0.4)
    # Odd n: 3 of 7 nodes send; 3 * 2 / 2 = 3, oversubscribed three times
    assert laws.bisection_saturation(7, 1, 2.0, 2.0) == 3.0
    assert laws.bisection_saturation(1, 1, 1.0, 5.0) == 0.0
    assert laws.bisection_saturation(10, 2, 1.0, 0.0) == 0.0


BAD = [
    (laws.ring_allreduce_bytes_per_node, (0, 1.0), "n = 0: must be >= 1"),
    (laws.ring_allreduce_bytes_per_node, (2.0, 1.0), "n = 2.0: expected an integer"),
    (laws.ring_allreduce_bytes_per_node, (True, 1.0), "n = True: expected an integer"),
    (laws.ring_allreduce_bytes_per_node, (2, -1.0), "model_bytes = -1.0: must be >= 0"),
    (laws.ring_allreduce_bytes_per_node, (2, math.inf), "model_bytes = inf: must be finite"),
    (laws.ring_allreduce_seconds, (2, 1.0, 0.0, 0.1), "bandwidth_bps = 0.0: must be > 0"),
    (laws.ring_allreduce_seconds, (2, 1.0, -8.0, 0.1), "bandwidth_bps = -8.0: must be > 0"),
    (laws.ring_allreduce_seconds, (2, 1.0, 8.0, -0.1), "latency_s = -0.1: must be >= 0"),
    (laws.ring_allreduce_seconds, (0, 1.0, 8.0, 0.1), "n = 0: must be >= 1"),
    (laws.parameter_server_bytes, (0, 1.0), "n_clients = 0: must be >= 1"),
    (laws.parameter_server_bytes, (5, -1.0), "model_bytes = -1.0: must be >= 0"),
    (laws.parameter_server_bytes, (5, 1.0, 0.0), "fraction = 0.0: must be > 0"),
    (laws.parameter_server_bytes, (5, 1.0, 1.5), "fraction = 1.5: must be <= 1"),
    (laws.gossip_rounds, (0,), "n = 0: must be >= 1"),
    (laws.gossip_rounds, (10, 0), "fanout = 0: must be >= 1"),
    (laws.bisection_saturation, (0, 1, 1.0, 1.0), "n_nodes = 0: must be >= 1"),
    (laws.bisection_saturation, (4, 0, 1.0, 1.0), "bisection_links = 0: must be >= 1"),
    (laws.bisection_saturation, (4, 1, 0.0, 1.0), "link_bps = 0.0: must be > 0"),
    (laws.bisection_saturation, (4, 1, 1.0, -1.0), "offered_bps_per_node = -1.0: must be >= 0"),
]


@pytest.mark.parametrize(("law", "args", "message"), BAD)
def test_bad_inputs_raise_value_error_naming_the_argument(law, args, message) -> None:
    with pytest.raises(ValueError) as info:
        law(*args)
    assert str(info.value) == message


def test_failure_probability_is_the_exponential_or_weibull_law_of_that_mean() -> None:

    assert laws.failure_probability(100.0, 100.0) == pytest.approx(1 - math.exp(-1))
    assert laws.failure_probability(math.inf, 1e9) == 0.0
    assert laws.failure_probability(100.0, 0.0) == 0.0
    for shape in (0.5, 1.0, 3.0):  # the scale keeps the mean: lambda * Gamma(1 + 1/k)
        scale = laws.weibull_scale(100.0, shape)
        assert scale * math.gamma(1 + 1 / shape) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="shape"):
        laws.weibull_scale(100.0, 0.0)
    with pytest.raises(ValueError, match="t = -1"):
        laws.failure_probability(100.0, -1)


def test_young_and_daly_intervals() -> None:
    assert laws.young_interval(2.0, 100.0) == pytest.approx(20.0)
    # Daly's correction matters as the cost nears the MTBF, and vanishes far from it.
    small = laws.daly_interval(1e-3, 1e6) / laws.young_interval(1e-3, 1e6)
    assert small == pytest.approx(1.0, abs=1e-3)
    x = 2.0 / (2 * 100.0)
    assert laws.daly_interval(2.0, 100.0) == pytest.approx(
        20.0 * (1 + math.sqrt(x) / 3 + x / 9) - 2.0
    )
    assert laws.daly_interval(300.0, 100.0) == 100.0  # cost >= 2M: checkpoint every MTBF
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError):
            laws.young_interval(bad, 100.0)
        with pytest.raises(ValueError):
            laws.daly_interval(1.0, bad)


@pytest.mark.parametrize(("cost", "mtbf"), [(1.0, 100.0), (2.0, 60.0), (10.0, 3600.0)])
def test_the_first_order_goodput_peaks_at_youngs_interval(cost: float, mtbf: float) -> None:
    taus = [laws.young_interval(cost, mtbf) * 2 ** (k / 40) for k in range(-80, 81)]
    best = max(taus, key=lambda tau: laws.checkpoint_goodput(tau, cost, mtbf))
    assert best == pytest.approx(laws.young_interval(cost, mtbf), rel=0.15)
