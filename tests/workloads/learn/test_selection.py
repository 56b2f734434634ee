"""How the FedAvg server picks its clients: at random, by battery, or by the grid's carbon."""

from __future__ import annotations

import numpy as np
import pytest
from test_strategies import make_cores, over_wire

from swarm.devices.profiles import load_profiles
from swarm.run.runner import run_scenario
from swarm.scenario import ScenarioError, load
from swarm.workloads.learn.strategies import FedAvgCore

CLEAN = {3, 5, 7}  # clients on a clean grid


def server(selection: str, **kw) -> FedAvgCore:
    cores = make_cores(
        FedAvgCore,
        10,
        aggregator=0,
        clients=list(range(1, 10)),
        fraction_fit=0.34,
        selection=selection,
        **kw,
    )
    return cores[0]


def test_green_asks_the_clients_on_the_cleanest_grid_now() -> None:
    def intensity(client: int, t: float) -> float:
        dirty = 700.0 if t < 50 else 20.0  # the sun moves: later, the others are clean
        return 30.0 if client in CLEAN else dirty

    core = server("green", intensity=intensity)
    rng = np.random.default_rng(0)
    early = {peer for peer, kind, _ in core.on_tick(0, rng) if kind == "fit"}
    assert early == CLEAN
    core._waiting = set()
    late = {peer for peer, kind, _ in core.on_tick(60, rng) if kind == "fit"}
    assert late.isdisjoint(CLEAN) and len(late) == 3


def test_battery_asks_the_best_charged_as_they_reported() -> None:
    core = server("battery")
    rng = np.random.default_rng(0)
    model = {"mode": "none", "values": np.zeros(core.size, np.float32)}
    for client in range(1, 10):
        share = 0.9 if client in CLEAN else 0.1
        body = {"round": 0, "update": model, "samples": 5, "battery": share}
        core.on_message(0, client, "update", over_wire("update", body), rng)
    asked = {peer for peer, kind, _ in core.on_tick(1, rng) if kind == "fit"}
    assert asked == CLEAN


@pytest.mark.parametrize("battery", [1.5, -0.1, "full", 1])
def test_a_battery_report_out_of_range_is_refused(battery: object) -> None:
    core = server("battery")
    rng = np.random.default_rng(0)
    model = {"mode": "none", "values": np.zeros(core.size, np.float32)}
    body = {"round": 0, "update": model, "samples": 5, "battery": battery}
    assert core.on_message(0, 1, "update", over_wire("update", body), rng) == []
    assert core.rejected == 1 and core.reported == {}


def test_a_battery_client_reports_its_share_in_its_update() -> None:
    profile = load_profiles()["glasses"]
    cores = make_cores(
        FedAvgCore, 3, aggregator=0, clients=[1, 2], selection="battery", profile=profile
    )
    rng = np.random.default_rng(0)
    fit = next(body for peer, kind, body in cores[0].on_tick(0, rng) if peer == 1)
    ((_, kind, reply),) = cores[1].on_message(0, 0, "fit", over_wire("fit", fit), rng)
    assert kind == "update" and 0.0 < reply["battery"] < 1.0


def test_selection_needs_a_fedavg_server() -> None:
    with pytest.raises(ScenarioError, match=r"learn\.selection = 'green': the fedavg server"):
        load("lab", ["learn.strategy=gossip", "learn.selection=green"])


def test_green_selection_emits_less_than_random_and_says_so_in_one_summary() -> None:
    """Three regions on Norway's, Germany's and India's grids, GPUs slow enough that
    training dominates: the green server trains in Oslo, and the summary's random variant
    shows what it saved."""
    keys = {
        "run.rounds": 40,
        "run.stop_when_done": False,
        "fleet.count": 30,
        "fleet.mix": {"gpu": 1.0},
        "fleet.regions": ["oslo", "frankfurt", "mumbai"],
        "fleet.workload": "learn",
        "learn.strategy": "fedavg",
        "learn.fraction_fit": 0.3,
        "learn.selection": "green",
        "grid.regions": {"oslo": "norway", "frankfurt": "germany", "mumbai": "india"},
        "devices.gpu": {"flops": 2e5},
    }
    results = run_scenario(load("fleet", **keys))["results"]
    random = results["variants"]["random"]
    assert random["co2_change"] == pytest.approx(results["energy"]["co2_g"] / random["co2_g"] - 1)
    assert random["co2_change"] < -0.3
    assert results["energy"]["by_region"]["oslo"]["compute"] > 0
    assert results["energy"]["by_region"]["mumbai"]["compute"] == 0
