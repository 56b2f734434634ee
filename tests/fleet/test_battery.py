"""Batteries that live: chargers at night, harvesters, and devices that rest when low."""

from __future__ import annotations

import io

import pytest

from swarm import clock
from swarm.cli import main
from swarm.fleet import Fleet
from swarm.scenario import load

# 20 AR glasses learn by gossip for a simulated day, from 08:00, in 10-minute rounds: their
# 2.3 Wh battery lasts 4.6 h idling at 0.5 W, so they run flat in the afternoon.
DAY = {
    "run.name": "day",
    "run.rounds": 144,
    "run.stop_when_done": False,
    "fleet.count": 20,
    "fleet.mix": {"glasses": 1.0},
    "fleet.regions": ["home"],
    "fleet.workload": "learn",
    "gossip.period": 600.0,
    "learn.strategy": "gossip",
    "grid.start_h": 8.0,
}


def day(**keys: object) -> Fleet:
    fleet = Fleet(load("fleet", **{**DAY, **keys}), metrics_sink=io.StringIO())
    clock.run(fleet.run())
    return fleet


def test_glasses_charged_overnight_come_back_and_learn_better() -> None:
    flat = day()
    charged = day(**{"battery.charge_from": 22.0, "battery.charge_until": 7.0})
    assert flat.summary()["results"]["depleted"] == 20
    results = charged.summary()["results"]
    assert results["depleted"] == 0  # all charged again by 07:00
    assert results["accuracy"] > flat.summary()["results"]["accuracy"]
    # 08:00 to 12:36 on the battery, flat until 22:00, then on the charger
    energy = results["energy"]["total_j"]
    assert energy == pytest.approx(20 * 0.5 * (4.6 + 10.0) * 3600, rel=0.02)


def test_a_harvester_keeps_a_hearable_alive_and_the_status_counts_resting_devices() -> None:
    keys = {"run.rounds": 200, "mesh.duty_cycle": 1.0, "devices.hearable": {"battery_wh": 0.0001}}
    drained = Fleet(load("tiny-pioneer", **keys), metrics_sink=io.StringIO())
    clock.run(drained.run())
    assert drained.summary()["results"]["depleted"] > 0
    harvested = Fleet(
        load("tiny-pioneer", **{**keys, "battery.harvest_w": {"hearable": 0.01}}),
        metrics_sink=io.StringIO(),
    )
    clock.run(harvested.run())
    assert harvested.summary()["results"]["depleted"] == 0
    resting = Fleet(
        load("tiny-pioneer", **{**keys, "battery.reserve": 0.3}), metrics_sink=io.StringIO()
    )
    clock.run(resting.run())
    entry = resting.status()["classes"]["hearable"]
    assert "resting" in entry and entry["resting"] + entry["depleted"] > 0


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("battery.harvest_w={phone = 1}", "battery.harvest_w.phone: unknown device class"),
        ("battery.harvest_w={glasses = -1}", "battery.harvest_w.glasses = -1"),
        ("battery.charge_from=25", "battery.charge_from = 25: must be <= 24.0"),
        ("battery.reserve=0.9", "battery.reserve = 0.9: must be <= 0.5"),
        ("battery.charge_w=-5", "battery.charge_w = -5"),
    ],
)
def test_absurd_battery_settings_are_one_line(override: str, needle: str, capsys) -> None:
    assert main(["run", "lab", "--set", override, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
