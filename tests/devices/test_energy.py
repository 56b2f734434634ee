"""Energy meters: batteries run flat at the right joule and then refuse; mains never do."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from swarm.devices.energy import CATEGORIES, EnergyMeter, fleet_energy
from swarm.devices.profiles import DeviceProfile, load_profiles


def _profile(**changes) -> DeviceProfile:
    # Round figures so every expected joule below is exact in binary floating point.
    base = dict(idle_w=0.5, active_w=4.5, tx_j_per_byte=0.25, rx_j_per_byte=0.125, battery_wh=0.0)
    return dataclasses.replace(load_profiles()["glasses"], **{**base, **changes})


def test_each_activity_charges_its_own_category() -> None:
    m = EnergyMeter(_profile())
    assert m.idle(10) and m.compute(2) and m.send(8) and m.receive(16)
    assert m.by_category() == {"idle": 5.0, "compute": 8.0, "tx": 2.0, "rx": 2.0}
    assert m.spent_j == 17.0


def test_idle_plus_compute_over_the_same_seconds_is_active_power() -> None:
    m = EnergyMeter(_profile())
    m.idle(3)
    m.compute(3)
    assert m.spent_j == 3 * 4.5


def test_battery_runs_flat_at_its_capacity_and_then_refuses() -> None:
    m = EnergyMeter(_profile(battery_wh=1 / 360))  # 10 J
    assert m.remaining_j == 10.0
    assert m.idle(12)  # 6 J
    assert m.send(16)  # 4 J: exactly empty, and that last charge fit
    assert m.depleted
    assert m.remaining_j == 0.0
    assert not m.idle(1)
    assert not m.receive(1)
    assert not m.idle(0)
    assert m.spent_j == 10.0
    assert m.by_category() == {"idle": 6.0, "compute": 0.0, "tx": 4.0, "rx": 0.0}


def test_the_call_that_overdraws_records_only_what_was_left() -> None:
    m = EnergyMeter(_profile(battery_wh=1 / 360))  # 10 J
    assert m.compute(2)  # 8 J
    assert not m.compute(1)  # wants 4 J, 2 J left
    assert m.depleted
    assert m.by_category()["compute"] == 10.0
    assert m.spent_j == 10.0


def test_packaged_hearable_runs_flat_after_its_battery_energy() -> None:
    p = load_profiles()["hearable"]
    m = EnergyMeter(p)
    hours = p.battery_wh / p.idle_w
    assert m.idle(hours * 3600 * 0.999)
    assert not m.depleted
    assert not m.idle(hours * 3600 * 0.002)
    assert m.depleted
    assert math.isclose(m.spent_j, p.battery_j)


def test_mains_never_runs_flat() -> None:
    m = EnergyMeter(_profile(battery_wh=0.0))
    assert m.remaining_j == math.inf
    for _ in range(100):
        assert m.compute(1e9) and m.send(10**12)
    assert not m.depleted
    assert m.remaining_j == math.inf
    assert EnergyMeter(load_profiles()["gpu"]).idle(1e12)


def test_categories_sum_to_the_total() -> None:
    rng = np.random.default_rng(7)
    m = EnergyMeter(_profile(battery_wh=0.01))
    for _ in range(500):
        action = rng.integers(4)
        amount = float(rng.uniform(0, 3))
        if action == 0:
            m.idle(amount)
        elif action == 1:
            m.compute(amount)
        elif action == 2:
            m.send(int(amount * 10))
        else:
            m.receive(np.int64(amount * 10))
    parts = m.by_category()
    assert tuple(parts) == CATEGORIES
    assert math.isclose(sum(parts.values()), m.spent_j)
    assert math.isclose(m.spent_j + m.remaining_j, 36.0)


@pytest.mark.parametrize("method", ["idle", "compute", "send", "receive"])
@pytest.mark.parametrize("bad", [-1, -0.5, math.nan, math.inf, True, "3"])
def test_bad_amounts_raise_value_error(method: str, bad) -> None:
    m = EnergyMeter(_profile())
    with pytest.raises(ValueError):
        getattr(m, method)(bad)
    assert m.spent_j == 0.0


def test_by_category_is_a_copy() -> None:
    m = EnergyMeter(_profile())
    m.by_category()["idle"] = 99.0
    assert m.by_category()["idle"] == 0.0


def test_fleet_energy_sums_meters() -> None:
    a = EnergyMeter(_profile(battery_wh=1 / 360))  # 10 J
    b = EnergyMeter(_profile())
    a.compute(5)  # wants 20 J, runs flat at 10
    b.idle(4)
    b.send(4)
    summary = fleet_energy([a, b])
    assert summary == {
        "meters": 2,
        "total_j": 13.0,
        "by_category": {"idle": 2.0, "compute": 10.0, "tx": 1.0, "rx": 0.0},
        "depleted": 1,
    }
    empty = fleet_energy([])
    assert empty["meters"] == 0 and empty["total_j"] == 0.0 and empty["depleted"] == 0


def test_charging_brings_a_flat_battery_back_but_never_above_capacity() -> None:
    from swarm.devices.profiles import load_profiles

    profile = load_profiles()["glasses"]
    meter = EnergyMeter(profile)
    meter.idle(1e9)  # flat
    assert meter.depleted and not meter.idle(1.0)
    assert meter.charge(100.0) == 100.0 and not meter.depleted
    assert meter.remaining_j == 100.0 and meter.idle(1.0)
    room = profile.battery_j - meter.remaining_j
    assert meter.charge(1e12) == pytest.approx(room)
    assert meter.remaining_j == profile.battery_j
    assert meter.charged_j == pytest.approx(100 + room)
    mains = EnergyMeter(load_profiles()["gpu"])
    assert mains.charge(50.0) == 0.0


def test_a_device_below_its_reserve_rests_until_charged_above_twice_it() -> None:
    from swarm.devices.profiles import load_profiles

    profile = load_profiles()["glasses"]
    meter = EnergyMeter(profile, reserve=0.2)
    capacity = profile.battery_j
    assert not meter.resting
    meter.idle((capacity * 0.85) / profile.idle_w)  # 15% left
    assert meter.resting
    meter.charge(capacity * 0.1)  # 25%: still resting (hysteresis up to 40%)
    assert meter.resting
    meter.charge(capacity * 0.2)  # 45%
    assert not meter.resting
    assert not EnergyMeter(load_profiles()["gpu"], reserve=0.3).resting
