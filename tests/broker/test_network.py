"""The network model: latency, bandwidth, loss and partitions between endpoints."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from swarm.broker.network import SPEED_OF_LIGHT_KM_S, Endpoint, NetworkModel


def test_the_default_network_is_constant_latency() -> None:
    network = NetworkModel()
    assert network.constant
    assert not network.partitioned
    assert network.delay(Endpoint(), Endpoint(x=5000.0)) == network.latency


@pytest.mark.parametrize(
    "change",
    [
        {"distance_latency": True},
        {"bandwidth": 1000.0},
        {"loss": 0.1, "rng": np.random.default_rng(0)},
    ],
)
def test_any_non_constant_feature_leaves_the_fast_path(change: dict[str, object]) -> None:
    assert not NetworkModel(**change).constant  # type: ignore[arg-type]


def test_a_partition_leaves_the_fast_path_until_healed() -> None:
    network = NetworkModel()
    network.partition([[0], [1]])
    assert network.partitioned
    assert not network.constant
    network.heal()
    assert not network.partitioned
    assert network.constant


def test_distance_latency_adds_propagation_and_hops() -> None:
    network = NetworkModel(latency=0.01, distance_latency=True)
    a, b = Endpoint(x=0.0, y=0.0), Endpoint(x=3000.0, y=4000.0)  # 5,000 km apart
    expected = 0.01 + 5000.0 / (0.67 * 299_792.458) + 11 * 0.0005  # 1 + 5000 // 500 hops
    assert network.delay(a, b) == pytest.approx(expected, rel=1e-12)
    assert network.delay(b, a) == network.delay(a, b)
    assert network.delay(a, Endpoint()) == pytest.approx(0.01 + 0.0005, rel=1e-12)


def test_distance_latency_grows_with_distance() -> None:
    network = NetworkModel(latency=0.002, distance_latency=True, hop_km=250.0, hop_delay=0.001)
    origin = Endpoint()
    delays = [network.delay(origin, Endpoint(x=float(km))) for km in range(0, 20_000, 100)]
    assert all(d is not None for d in delays)
    assert all(a < b for a, b in itertools.pairwise(delays))  # type: ignore[operator]
    far = network.delay(origin, Endpoint(x=10_000.0))
    hops = 1 + 10_000 // 250
    light = 10_000.0 / (0.67 * SPEED_OF_LIGHT_KM_S)
    assert far == pytest.approx(0.002 + light + hops * 0.001, rel=1e-12)


def test_light_fraction_scales_the_propagation_part() -> None:
    slow = NetworkModel(latency=0.0, distance_latency=True, hop_delay=0.0, light_fraction=0.5)
    fast = NetworkModel(latency=0.0, distance_latency=True, hop_delay=0.0, light_fraction=1.0)
    a, b = Endpoint(), Endpoint(y=1000.0)
    assert slow.delay(a, b) == pytest.approx(2 * fast.delay(a, b), rel=1e-12)  # type: ignore[operator]
    assert fast.delay(a, b) == pytest.approx(1000.0 / SPEED_OF_LIGHT_KM_S, rel=1e-12)


def test_serialization_queues_messages_behind_each_other() -> None:
    network = NetworkModel(bandwidth=8000.0)  # 1,000 bytes per second
    sender = Endpoint()
    assert network.departure(sender, 1000, now=0.0) == 1.0
    assert network.departure(sender, 1000, now=0.0) == 2.0
    assert network.departure(sender, 500, now=1.5) == 2.5  # still queued behind the second
    assert network.departure(sender, 1000, now=10.0) == 11.0  # an idle uplink starts now
    assert network.departure(Endpoint(), 1000, now=10.0) == 11.0  # uplinks are per sender


def test_unlimited_bandwidth_and_reliable_senders_leave_at_once() -> None:
    assert NetworkModel().departure(Endpoint(), 10**6, now=3.0) == 3.0
    reliable = Endpoint(reliable=True)
    network = NetworkModel(bandwidth=8.0)
    assert network.departure(reliable, 10**6, now=3.0) == 3.0
    assert reliable.tx_free_at == 0.0


def test_loss_drops_the_configured_fraction() -> None:
    network = NetworkModel(loss=0.3, rng=np.random.default_rng(2024))
    a, b = Endpoint(), Endpoint()
    lost = sum(network.delay(a, b) is None for _ in range(10_000))
    assert 0.27 <= lost / 10_000 <= 0.33


def test_loss_is_a_function_of_the_seed() -> None:
    def pattern(seed: int) -> list[bool]:
        network = NetworkModel(loss=0.5, rng=np.random.default_rng(seed))
        return [network.delay(Endpoint(), Endpoint()) is None for _ in range(200)]

    assert pattern(3) == pattern(3)
    assert pattern(3) != pattern(4)


def test_no_loss_never_drops() -> None:
    network = NetworkModel(loss=0.0, rng=np.random.default_rng(1))
    assert all(network.delay(Endpoint(), Endpoint()) == 0.01 for _ in range(10_000))


def test_partitions_cut_between_groups_and_unlisted_regions_form_one_more() -> None:
    network = NetworkModel(latency=0.02)
    network.partition([[0, 1], [2]])
    at = {r: Endpoint(region=r) for r in range(5)}

    def talks(a: int, b: int) -> bool:
        return network.delay(at[a], at[b]) is not None

    assert talks(0, 1) and talks(1, 0) and talks(2, 2) and talks(0, 0)
    assert not talks(0, 2) and not talks(2, 1)
    assert talks(3, 4) and talks(4, 3)  # both unlisted: the same group
    assert not talks(3, 0) and not talks(2, 4)
    network.heal()
    assert all(talks(a, b) for a in range(5) for b in range(5))
    assert network.delay(at[0], at[2]) == 0.02


def test_reliable_endpoints_ignore_loss_partitions_and_latency() -> None:
    network = NetworkModel(
        latency=0.5, distance_latency=True, loss=1.0, rng=np.random.default_rng(0)
    )
    network.partition([[0], [1]])
    control = Endpoint(x=9000.0, region=7, reliable=True)
    device = Endpoint(region=1)
    assert network.delay(control, device) == 0.0
    assert network.delay(device, control) == 0.0
    assert network.delay(device, Endpoint(region=1)) is None  # loss=1 drops everything else


def test_endpoint_defaults() -> None:
    e = Endpoint()
    assert (e.x, e.y, e.region, e.reliable, e.tx_free_at) == (0.0, 0.0, 0, False, 0.0)


def test_loss_without_an_rng_is_refused() -> None:
    with pytest.raises(ValueError, match="needs an rng"):
        NetworkModel(loss=0.1)
