"""The dashboard's map: each agent's place and state, compact, and safe to decode."""

from __future__ import annotations

from collections import Counter

import msgpack
import numpy as np
import pytest

from swarm import clock
from swarm.fleet import Fleet, fleetmap
from swarm.scenario import load


def finished(name: str, crash: int | None = None, **keys: object) -> Fleet:
    """A fleet run to its end; agent `crash` crashes in round 2."""

    def on_round(row: dict) -> None:
        if crash is not None and row["round"] == 2:
            fleet.agents[crash].crash("test")

    fleet = Fleet(load(name, **keys), on_round=on_round)
    clock.run(fleet.run(), virtual=True)
    return fleet


def test_states_follow_the_run_crashes_sybils_and_the_mark() -> None:
    fleet = finished("rumor", crash=5, **{"fleet.count": 300})
    points, states = fleetmap.decode(fleet._map(now=True)["map"])
    assert len(points) == len(states) == 300
    assert states[5] == "x"
    informed = sum(1 for i, s in enumerate(states) if s == "*")
    assert informed == sum(fleet.workload.marked(i) for i in range(300) if i != 5)
    assert set(states) <= {"*", ".", "x"}
    attacked = finished("edge-guardian-sybil", **{"fleet.count": 30, "run.duration": 20.0})
    _, states = fleetmap.decode(attacked._map(now=True)["map"])
    assert states[-1] == "s" and Counter(states)["s"] == 1


def test_positions_come_back_within_the_quantum() -> None:
    rng = np.random.default_rng(1)
    points = rng.uniform(-5000, 5000, (1000, 2))
    back, states = fleetmap.decode(fleetmap.encode(points, "." * 1000))
    quantum = (points.max(axis=0) - points.min(axis=0)) / fleetmap.LEVELS
    assert np.all(np.abs(back - points) <= quantum / 2 + 1e-9)
    assert states == "." * 1000


def test_shards_maps_merge_into_one_extent() -> None:
    left = fleetmap.encode(np.array([[0.0, 0.0], [10.0, 10.0]]), "*.")
    right = fleetmap.encode(np.array([[100.0, 50.0], [110.0, 60.0]]), "xz")
    points, states = fleetmap.decode(fleetmap.merge([left, right]))
    assert states == "*.xz"
    np.testing.assert_allclose(points[[0, 3]], [[0, 0], [110, 60]])


def test_ten_thousand_agents_fit_in_thirty_kilobytes() -> None:
    points = np.random.default_rng(0).normal(size=(10_000, 2))
    assert len(msgpack.packb(fleetmap.encode(points, "." * 10_000))) < 30_100


@pytest.mark.parametrize(
    ("garbage", "needle"),
    [
        ([1, 2], "not a table"),
        ({"extent": [0, 0, 1], "x": b"", "y": b"", "state": ""}, "extent"),
        ({"extent": [0, 0, "inf", 1], "x": b"", "y": b"", "state": ""}, "not finite"),
        ({"extent": [0, 0, 1, 1], "x": "ab", "y": b"ab", "state": ".."}, "not bytes"),
        ({"extent": [0, 0, 1, 1], "x": b"abc", "y": b"ab", "state": ".."}, "3 x, 2 y"),
        ({"extent": [0, 0, "a", 1], "x": b"", "y": b"", "state": ""}, "not four numbers"),
        ({"extent": [None, 0, 1, 1], "x": b"", "y": b"", "state": ""}, "not four numbers"),
        ({"extent": [10**400, 0, 1, 1], "x": b"", "y": b"", "state": ""}, "not four numbers"),
        ({"extent": [-1e308, 0, 1e308, 1], "x": b"", "y": b"", "state": ""}, "not finite"),
    ],
)
def test_a_forged_map_is_a_value_error_naming_the_fault(garbage, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        fleetmap.decode(garbage)


def test_a_forged_shard_map_leaves_the_dashboard_without_a_map_not_broken() -> None:
    from swarm.run.live import merge_status

    good = fleetmap.encode(np.zeros((2, 2)), "..")
    forged = {"extent": [None, 0, 1, 1], "x": b"", "y": b"", "state": ""}
    merged = merge_status([{"shard": 0, "map": good}, {"shard": 1, "map": forged}])
    assert merged is not None and "map" not in merged
