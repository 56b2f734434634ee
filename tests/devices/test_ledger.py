"""Energy adds up: one sum of the meters, sorted by class, by region and by category, and
priced in carbon by the grid of each region at each moment."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm.devices.energy import CATEGORIES, EnergyMeter
from swarm.devices.grid import JOULES_PER_KWH, Grid, grids
from swarm.devices.ledger import Ledger, merge
from swarm.devices.profiles import load_profiles
from swarm.run.runner import run_scenario
from swarm.scenario import load, loads

PROFILES = load_profiles()


def test_a_replaced_meter_keeps_what_it_spent_and_the_carbon_is_priced_when_spent() -> None:
    grid = Grid(base=(100.0, 500.0), offset_h=(0.0, 0.0), pue=1.5)
    ledger = Ledger(grid, ["gpu", "glasses"], [0, 1], ["a", "b"], {"gpu": True, "glasses": False})
    gpu, glasses = EnergyMeter(PROFILES["gpu"]), EnergyMeter(PROFILES["glasses"])
    gpu.idle(10.0)  # 700 J
    glasses.idle(10.0)
    ledger.read(10.0, [(0, gpu), (1, glasses)])
    gpu.compute(1.0)  # 630 J more, then the GPU fails and comes back with a new meter
    fresh = EnergyMeter(PROFILES["gpu"])
    fresh.idle(1.0)  # 70 J
    ledger.read(20.0, [(0, fresh), (1, glasses)])
    found = merge([ledger.partial()], grid, ["a", "b"])
    assert found["by_class"]["gpu"]["total_j"] == pytest.approx(700 + 630 + 70)
    assert found["by_class"]["gpu"]["compute"] == pytest.approx(630)
    assert found["by_region"]["a"]["co2_g"] == pytest.approx(1400 * 1.5 / JOULES_PER_KWH * 100)
    spent = glasses.spent_j
    assert found["by_region"]["b"]["co2_g"] == pytest.approx(spent / JOULES_PER_KWH * 500)
    assert found["total_j"] == pytest.approx(1400 + spent)


def test_the_solar_profile_dips_at_local_noon_and_follows_the_offset() -> None:
    grid = Grid(base=(400.0, 400.0), offset_h=(0.0, 6.0), profile="solar", solar_share=0.5)
    assert grid.intensity(0, 0.0) == 400.0  # midnight in region 0
    assert grid.intensity(0, 12 * 3600.0) == pytest.approx(200.0)  # its noon
    assert grid.intensity(1, 6 * 3600.0) == pytest.approx(200.0)  # noon six hours ahead
    assert grid.intensity(0, 9 * 3600.0) == pytest.approx(400 * (1 - 0.5 * math.sin(math.pi / 4)))
    assert grid.intensity(0, 20 * 3600.0) == 400.0


def test_every_named_grid_has_a_sane_intensity() -> None:
    table = grids()
    assert table["world"] == 481.0 and table["france"] == 56.0
    assert all(0 < v < 1500 for v in table.values())


@settings(max_examples=12, deadline=None)
@given(
    count=st.integers(2, 8),
    mix=st.sampled_from([{"gpu": 1.0}, {"glasses": 1.0}, {"gpu": 1.0, "glasses": 1.0}]),
    strategy=st.sampled_from(["gossip", "fedavg", "async"]),
    rounds=st.integers(1, 10),
    failing=st.booleans(),
    intensity=st.lists(st.floats(0.0, 1000.0), min_size=2, max_size=2),
    seed=st.integers(0, 1000),
)
def test_energy_adds_up_by_class_by_region_and_by_category(
    count: int,
    mix: dict[str, float],
    strategy: str,
    rounds: int,
    failing: bool,
    intensity: list[float],
    seed: int,
) -> None:
    keys: dict[str, object] = {
        "run.seed": seed,
        "run.rounds": rounds,
        "run.stop_when_done": False,
        "fleet.count": count,
        "fleet.mix": mix,
        "fleet.regions": ["a", "b"],
        "fleet.workload": "learn",
        "learn.strategy": strategy,
        "learn.dataset": "digits",
        "grid.intensity": {"a": intensity[0], "b": intensity[1]},
    }
    if failing:  # repaired devices come back with new meters: nothing they spent is lost
        keys |= {"faults.process": "exponential", "faults.mtbf_scale": 2e-8, "faults.repair_s": 1.0}
    results = run_scenario(load("fleet", **keys))["results"]
    energy = results["energy"]
    total = energy["total_j"]
    assert total == pytest.approx(results["energy_j"]["total"], rel=1e-9)
    for table in (energy["by_class"], energy["by_region"]):
        assert math.fsum(e["total_j"] for e in table.values()) == pytest.approx(total, rel=1e-9)
        for entry in table.values():
            assert entry["total_j"] == pytest.approx(math.fsum(entry[c] for c in CATEGORIES))
    by_category = {c: math.fsum(e[c] for e in energy["by_class"].values()) for c in CATEGORIES}
    for category in CATEGORIES:
        assert by_category[category] == pytest.approx(results["energy_j"][category], abs=1e-9)
    # A flat grid: each region's carbon is its joules (through the PUE if mains) at its
    # price; checked where the fleet is of one class, so the region's joules are its own.
    if len(mix) == 1:
        factor = energy["pue"] if "gpu" in mix else 1.0
        expected = math.fsum(
            energy["by_region"][name]["total_j"] * factor * price / JOULES_PER_KWH
            for name, price in zip(["a", "b"], intensity, strict=True)
            if name in energy["by_region"]
        )
        assert energy["co2_g"] == pytest.approx(expected, rel=1e-6, abs=1e-12)
    for table in (energy["by_class"], energy["by_region"]):
        assert math.fsum(e["co2_g"] for e in table.values()) == pytest.approx(
            energy["co2_g"], rel=1e-9, abs=1e-12
        )


def test_an_hourly_table_sets_each_local_hours_intensity() -> None:
    day = [1.0] * 24
    day[12] = 0.25  # noon
    s = load("fleet", **{"grid.hourly": {"europe": day}, "grid.offset_h": {"europe": 2.0}})
    grid = Grid.of(s.fleet.regions, s.grid)
    europe = s.fleet.regions.index("europe")
    assert grid.intensity(europe, 10 * 3600.0) == pytest.approx(481.0 * 0.25)  # 12:00 local
    assert grid.intensity(europe, 11 * 3600.0) == 481.0
    round_trip = load("fleet", **{"grid.hourly": {"europe": day}})
    assert loads(round_trip.to_toml()) == round_trip


@pytest.mark.parametrize(
    ("hourly", "needle"),
    [
        ({"europe": [1.0] * 23}, "23 factors; a day needs 24"),
        ({"europe": [1.0] * 23 + [-1.0]}, "factors must be 0..10"),
        ({"atlantis": [1.0] * 24}, "the fleet has no region 'atlantis'"),
    ],
)
def test_a_bad_hourly_table_is_one_line(hourly: dict, needle: str) -> None:
    from swarm.scenario import ScenarioError

    with pytest.raises(ScenarioError, match=needle):
        load("fleet", **{"grid.hourly": hourly})
