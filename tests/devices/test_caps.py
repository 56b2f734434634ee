"""Power caps that bind: a region's draw never exceeds its cap in any metrics row; the
throttled work costs time, not joules; a cap nothing could run under is refused."""

from __future__ import annotations

import io
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm import clock
from swarm.devices.grid import CapError, throttles
from swarm.devices.profiles import load_profiles
from swarm.fleet import Fleet
from swarm.run.runner import run_scenario
from swarm.scenario import ScenarioError, load

PROFILES = load_profiles()
PUE = 1.58


def titan(**keys: object) -> dict:
    base = {
        "devices.gpu": {"flops": 3e6},  # an iteration's training takes about two rounds
        "learn.target_accuracy": 0.9,
        "run.rounds": 60,
    }
    return load("cloud-titan", **{**base, **keys})


def test_a_binding_cap_holds_in_every_row_and_the_run_says_how_much_later_it_got_there() -> None:
    summary = run_scenario(titan(**{"grid.cap_w": {"dc": 5000.0}}))
    results = summary["results"]
    cap = results["energy"]["caps"]["dc"]
    # 10 GPUs idle at 70 W x 1.58 = 1,106 W; the other 3,894 W are 39% of their full draw
    assert cap["throttle"] == pytest.approx((5000 - 1106) / (10 * 630 * PUE), rel=1e-6)
    assert cap["peak_w"] <= 5000.0
    uncapped = results["variants"]["uncapped"]
    assert results["time_to_accuracy"] > uncapped["time_to_accuracy"]
    assert uncapped["time_to_accuracy_change_s"] == (
        results["time_to_accuracy"] - uncapped["time_to_accuracy"]
    )
    assert results["allreduce"]["iterations"] < uncapped["allreduce"]["iterations"]
    # the same joules per iteration: throttling spreads the work, it does not add to it
    mine = results["energy"]["by_class"]["gpu"]["compute"] / results["allreduce"]["iterations"]
    theirs_total = uncapped["energy_j"] - 10 * 70 * 60
    assert mine == pytest.approx(theirs_total / uncapped["allreduce"]["iterations"], rel=0.02)


@settings(max_examples=12, deadline=None)
@given(
    strategy=st.sampled_from(["gossip", "fedavg", "allreduce"]),
    mix=st.sampled_from([{"gpu": 1.0}, {"glasses": 1.0}, {"gpu": 1.0, "glasses": 1.0}]),
    count=st.integers(2, 8),
    headroom=st.floats(1.001, 3.0),
    flops=st.sampled_from([3e5, 3e6, 3e9]),
    seed=st.integers(0, 100),
)
def test_no_metrics_row_ever_shows_a_region_above_its_cap(
    strategy: str, mix: dict, count: int, headroom: float, flops: float, seed: int
) -> None:
    s = load(
        "fleet",
        **{
            "run.seed": seed,
            "run.rounds": 12,
            "run.stop_when_done": False,
            "fleet.count": count,
            "fleet.mix": mix,
            "fleet.regions": ["a"],
            "fleet.workload": "learn",
            "learn.strategy": strategy,
            "devices.gpu": {"flops": flops},
            "devices.glasses": {"flops": flops},
        },
    )
    kinds = Fleet(s).placement.kinds[:count]
    idle = math.fsum(PROFILES[k].idle_w * (PUE if PROFILES[k].mains else 1.0) for k in kinds)
    cap = idle * headroom
    capped = load("fleet", **{**_keys(s), "grid.cap_w": {"a": cap}})
    fleet = Fleet(capped, metrics_sink=io.StringIO())
    clock.run(fleet.run())
    rows = [r["power_w"].get("a", 0.0) for r in fleet.recorder.rows if "power_w" in r]
    assert rows and max(rows) <= cap


def _keys(s) -> dict:
    return {
        f"{section}.{key}": value
        for section, values in s.to_dict().items()
        for key, value in values.items()
        if section in ("run", "fleet", "learn", "devices")
    }


def test_a_cap_below_the_idle_draw_is_refused_naming_it() -> None:
    with pytest.raises(ScenarioError, match=r"grid\.cap_w\.dc = 1000 W: not above the 1106 W"):
        Fleet(titan(**{"grid.cap_w": {"dc": 1000.0}}))
    with pytest.raises(ScenarioError, match=r"grid\.cap_w\.dc = -5: a power cap is watts"):
        titan(**{"grid.cap_w": {"dc": -5.0}})
    with pytest.raises(ScenarioError, match=r"grid\.cap_w\.moon: the fleet has no region"):
        titan(**{"grid.cap_w": {"moon": 5000.0}})


def test_a_cap_that_does_not_bind_throttles_nothing() -> None:
    devices = [(0, 70.0, 700.0, True)] * 4
    assert throttles({"a": 1e9}, ["a"], devices, PUE) == {0: 1.0}
    with pytest.raises(CapError):
        throttles({"a": 10.0}, ["a"], devices, PUE)
