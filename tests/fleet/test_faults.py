"""Devices that fail on their own: as many as the law says, the same ones for a seed,
and a fleet that dies whole still ends with a summary that says so."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm import laws
from swarm.cli import main
from swarm.fleet.faults import REASON, failure_times
from swarm.placement import place_agents
from swarm.run.runner import run_scenario
from swarm.scenario import load

# 1,000 GPUs for 50 rounds of 1 s, their 1.8e8 s MTBF scaled to 200 s.
BASE = {
    "run.stop_when_done": False,
    "run.rounds": 50,
    "faults.process": "exponential",
    "faults.mtbf_scale": 200 / 1.8e8,
}


def reliability(**keys: object) -> dict:
    return run_scenario(load("rumor", **{**BASE, **keys}))["results"]["reliability"]


@pytest.mark.parametrize(
    ("process", "shape"), [("exponential", 1.0), ("weibull", 0.5), ("weibull", 3.0)]
)
def test_failures_by_the_end_follow_the_law(process: str, shape: float) -> None:
    found = reliability(**{"faults.process": process, "faults.weibull_shape": shape})
    p = laws.failure_probability(200.0, 50.0, shape)
    assert found["expected_failures"] == pytest.approx(1000 * p)
    spread = math.sqrt(1000 * p * (1 - p))
    assert abs(found["failures"] - 1000 * p) < 4 * spread
    assert found["alive_at_end"] == 1000 - found["failures"]
    system = laws.first_failure_mean([200.0] * 1000, shape)
    assert found["system_mtbf_s"] == pytest.approx(system)
    if shape == 1.0:
        assert system == pytest.approx(200.0 / 1000)  # n exponential clocks: mtbf / n


def test_availability_is_the_device_time_the_failures_left() -> None:
    scenario = load("rumor", **BASE)
    times = failure_times(scenario, place_agents(scenario).kinds)
    summary = run_scenario(scenario)
    found = summary["results"]["reliability"]
    end = found["simulated_s"]
    # A device fails at the first round boundary at or after its time (rounds of 1 s), and
    # is down from that boundary: it worked until then.
    failed = [t for t in times if t <= end]
    assert found["failures"] == len(failed)
    down = sum(end - math.ceil(t) for t in failed)
    assert found["availability"] == pytest.approx(1 - down / (1000 * end))
    assert sum(1 for c in summary["crashes"] if c["reason"] == REASON) == len(failed)


def test_one_seed_fails_the_same_devices_at_the_same_moments() -> None:
    first = run_scenario(load("rumor", **BASE))
    again = run_scenario(load("rumor", **BASE))
    other = run_scenario(load("rumor", **{**BASE, "run.seed": 2}))
    assert first["crashes"] == again["crashes"] and first["crashes"] != other["crashes"]


def test_without_a_process_nothing_fails_and_no_figures_appear() -> None:
    summary = run_scenario(load("rumor", **{**BASE, "faults.process": "none"}))
    assert summary["crashes"] == [] and "reliability" not in summary["results"]


def test_a_fleet_that_dies_whole_still_ends_and_says_so(tmp_path) -> None:
    out = tmp_path / "dead"
    keys = ["--set", "faults.process=exponential", "--set", "faults.mtbf_scale=1e-12"]
    assert main(["run", "rumor", *keys, "--out", str(out), "--quiet"]) == 0
    import json

    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"]["reliability"]["alive_at_end"] == 0
    assert summary["complete"] is True


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("faults.mtbf_scale=0", "faults.mtbf_scale = 0: must be >= 1e-12"),
        ("faults.weibull_shape=-1", "faults.weibull_shape = -1"),
        ("faults.process=often", "faults.process = 'often': allowed are none"),
        ("devices.gpu={mtbf_s = -5}", "mtbf_s"),
    ],
)
def test_bad_fault_settings_are_one_line_and_exit_2(override: str, needle: str, capsys) -> None:
    args = ["run", "rumor", "--set", "faults.process=exponential", "--set", override, "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_other_crashes_count_in_alive_at_end_not_in_failures() -> None:
    from swarm import clock
    from swarm.fleet import Fleet

    def on_round(row: dict) -> None:
        if row["round"] == 1:
            for agent in fleet.agents[:500]:
                agent.crash("control: crash")

    fleet = Fleet(load("rumor", **BASE), on_round=on_round)
    summary = clock.run(fleet.run(), virtual=True)
    found = summary["results"]["reliability"]
    assert found["failures"] < found["expected_failures"]  # half were gone before failing
    assert found["alive_at_end"] == 1000 - len(summary["crashes"]) < 500


def test_the_first_failure_of_a_weibull_fleet_matches_its_law() -> None:
    """The minimum of n Weibull(k) lifetimes: measured over seeds against the law."""
    import numpy as np

    for shape in (0.5, 3.0):
        firsts = []
        for seed in range(1, 201):
            scenario = load(
                "rumor",
                **{
                    **BASE,
                    "run.seed": seed,
                    "fleet.count": 50,
                    "faults.process": "weibull",
                    "faults.weibull_shape": shape,
                },
            )
            firsts.append(failure_times(scenario, place_agents(scenario).kinds).min())
        law = laws.first_failure_mean([200.0] * 50, shape)
        assert abs(np.mean(firsts) - law) < 4 * np.std(firsts) / np.sqrt(len(firsts))


REPAIR = {
    "run.stop_when_done": False,
    "run.rounds": 400,
    "faults.process": "exponential",
    "faults.mtbf_scale": 20 / 1.8e8,  # GPUs fail every 20 s on average
    "faults.repair_s": 5.0,
}


def test_repaired_devices_make_availability_mtbf_over_mtbf_plus_mttr() -> None:
    found = run_scenario(load("fleet", **{**REPAIR, "fleet.mix": {"gpu": 1.0}}))
    reliability = found["results"]["reliability"]
    assert reliability["steady_availability"] == pytest.approx(20 / 25)
    assert reliability["availability"] == pytest.approx(0.8, abs=0.02)
    assert reliability["recoveries"] >= reliability["failures"] - 1000
    assert reliability["failures"] - reliability["recoveries"] == 1000 - reliability["alive_at_end"]


def test_a_repaired_device_comes_back_fresh_and_learns_the_rumor_again() -> None:
    from swarm import clock
    from swarm.fleet import Fleet

    keys = {**REPAIR, "fleet.mix": {"gpu": 1.0}, "fleet.count": 200, "run.rounds": 120}
    fleet = Fleet(load("fleet", **keys))
    summary = clock.run(fleet.run(), virtual=True)
    assert summary["results"]["reliability"]["recoveries"] > 100
    indices = [a.index for a in fleet.agents]
    assert sorted(indices) == list(range(200))  # one agent per device, respawns included
    # Push gossip keeps pushing: those back long enough know the rumor again.
    up = [a for a in fleet.agents if a.state.name != "CRASHED"]
    informed = sum(fleet.workload.marked(a.index) for a in up)
    assert informed >= 0.9 * len(up)


@pytest.mark.parametrize("workload", ["mobile-nomad", "edge-guardian", "tiny-pioneer", "lab"])
def test_every_workload_respawns_its_devices(workload: str) -> None:
    keys = {
        "fleet.count": 30,
        "run.rounds": 30,
        "run.duration": 0.0,
        **{k: v for k, v in REPAIR.items() if k.startswith("faults.")},
    }
    keys["faults.mtbf_scale"] = 1e-7
    reliability = run_scenario(load(workload, **keys))["results"]["reliability"]
    assert reliability["recoveries"] > 0


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(2, 30),
    mtbf=st.floats(0.5, 50),
    repair=st.floats(0.1, 20),
    rounds=st.integers(1, 60),
    seed=st.integers(1, 2**31),
)
def test_failures_and_repairs_never_double_count(
    n: int, mtbf: float, repair: float, rounds: int, seed: int
) -> None:
    """Whatever the rates: one agent per device, the live count never above the fleet, and
    failures minus recoveries is exactly the devices down at the end."""
    from swarm import clock
    from swarm.fleet import Fleet

    keys = {
        "run.seed": seed,
        "run.rounds": rounds,
        "run.stop_when_done": False,
        "fleet.count": n,
        "fleet.mix": {"gpu": 1.0},
        "faults.process": "exponential",
        "faults.mtbf_scale": mtbf / 1.8e8,
        "faults.repair_s": repair,
    }
    rows: list[dict] = []
    fleet = Fleet(load("fleet", **keys), on_round=rows.append)
    summary = clock.run(fleet.run(), virtual=True)
    found = summary["results"]["reliability"]
    assert sorted(a.index for a in fleet.agents) == list(range(n))
    assert all(0 <= row["alive"] <= n for row in rows)
    assert found["failures"] - found["recoveries"] == n - found["alive_at_end"]
    assert 0.0 <= found["availability"] <= 1.0


def test_stragglers_are_the_share_asked_for_and_slow_a_synchronous_ring() -> None:
    """One GPU in ten computing 10x slower: every all-reduce iteration waits for it, so an
    iteration takes about ten times the compute of the others (the ring itself is short)."""
    slow = {"devices.gpu": {"flops": 1e9}, "run.rounds": 5}
    placement = place_agents(load("cloud-titan", **{"faults.stragglers": 0.3}))
    assert placement.slowdown is not None and int((placement.slowdown == 4.0).sum()) == 3
    assert place_agents(load("cloud-titan")).slowdown is None
    plain = run_scenario(load("cloud-titan", **slow))["results"]["allreduce"]
    keys = {**slow, "faults.stragglers": 0.1, "faults.slowdown": 10.0}
    lagging = run_scenario(load("cloud-titan", **keys))["results"]["allreduce"]
    compute = plain["seconds_per_iteration"] - plain["ring_seconds_per_iteration"]
    assert lagging["seconds_per_iteration"] == pytest.approx(
        10 * compute + plain["ring_seconds_per_iteration"], rel=0.05
    )


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("faults.stragglers=1.5", "faults.stragglers = 1.5"),
        ("faults.slowdown=0.5", "faults.slowdown"),
    ],
)
def test_absurd_stragglers_are_one_line(override: str, needle: str, capsys) -> None:
    assert main(["run", "cloud-titan", "--set", override, "--quiet"]) == 2
    assert needle in capsys.readouterr().err


# -- churn: devices that leave for good, devices that join late ---------------------------
CHURN = {
    "run.stop_when_done": False,
    "run.rounds": 60,
    "fleet.count": 200,
    "fleet.mix": {"gpu": 1.0},
}


def churned(**keys: object):
    from swarm import clock
    from swarm.fleet import Fleet

    fleet = Fleet(load("fleet", **{**CHURN, **keys}))
    return fleet, clock.run(fleet.run(), virtual=True)


def test_devices_leave_for_good_as_often_as_their_sessions_say() -> None:
    fleet, summary = churned(
        **{
            "faults.session_s": 100.0,
            "faults.process": "exponential",
            "faults.mtbf_scale": 1e-6,
            "faults.repair_s": 3.0,
        }
    )
    found = summary["results"]["reliability"]
    p = 1 - math.exp(-60 / 100)  # P(a session shorter than the run)
    assert abs(found["departures"] - 200 * p) < 4 * math.sqrt(200 * p * (1 - p))
    left = {c["agent"] for c in summary["crashes"] if c["reason"] == "left"}
    failed_then_left = found["departures"] - len(left)  # down when their session ended
    assert 0 <= failed_then_left <= found["failures"]
    for agent in fleet.agents:  # nobody comes back from leaving, repairs or not
        if agent.id in left:
            assert agent.state.name == "CRASHED"
    assert found["arrivals"] == 0 and found["session_s"] == 100.0


def test_late_devices_are_absent_until_they_join_then_learn_from_scratch() -> None:
    fleet, summary = churned(**{"faults.joining": 0.3})
    found = summary["results"]["reliability"]
    assert abs(found["arrivals"] - 60) < 4 * math.sqrt(200 * 0.3 * 0.7)
    rows = fleet.recorder.rows
    assert rows[0]["alive"] == 200 - found["arrivals"]  # every late one joins by the end
    assert rows[-1]["alive"] == 200 == found["alive_at_end"]
    assert all(b["alive"] >= a["alive"] for a, b in itertools.pairwise(rows))
    assert found["failures"] == found["departures"] == 0
    assert summary["crashes"] == []
    informed = sum(fleet.workload.marked(a.index) for a in fleet.agents)
    assert informed >= 0.9 * 200  # push gossip reaches the newcomers too


def test_churn_alone_reports_no_failure_law() -> None:
    _, summary = churned(**{"faults.joining": 0.1, "faults.session_s": 500.0})
    found = summary["results"]["reliability"]
    assert found["process"] == "none" and found["system_mtbf_s"] is None
    assert found["expected_failures"] == 0.0 and found["availability"] == 1.0


def test_one_seed_churns_the_same_devices_at_the_same_moments() -> None:
    keys = {"faults.joining": 0.2, "faults.session_s": 80.0}
    first, second = churned(**keys)[1], churned(**keys)[1]
    assert first["crashes"] == second["crashes"] != []
    assert first["results"] == second["results"]


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("faults.joining=1.5", "faults.joining = 1.5: must be <= 1.0"),
        ("faults.joining=-0.1", "faults.joining = -0.1: must be >= 0.0"),
        ("faults.session_s=-1", "faults.session_s = -1"),
        ("faults.session_s=inf", "faults.session_s = inf: expected a finite number"),
    ],
)
def test_absurd_churn_is_one_line(override: str, needle: str, capsys) -> None:
    assert main(["run", "rumor", "--set", override, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_on_a_real_broker_failures_fire_wills_and_repaired_devices_reconnect(mosquitto) -> None:
    """The same failure process over mosquitto: a crash leaves with its will, which the
    recorder reads as "lost"; a repaired or new device connects a fresh client whose
    sealed messages are not taken for replays of its earlier life's."""
    import asyncio

    from swarm.fleet import Fleet

    keys = {
        **CHURN,
        "fleet.count": 30,
        "run.rounds": 12,
        "faults.process": "exponential",
        "faults.mtbf_scale": 3e-8,  # a GPU every 5.4 s, 30 of them
        "faults.repair_s": 2.0,
        "faults.joining": 0.2,
        "faults.session_s": 40.0,
    }
    fleet = Fleet(load("fleet", **keys), broker_url=mosquitto.url)
    summary = asyncio.run(asyncio.wait_for(fleet.run(), 90))
    found = summary["results"]["reliability"]
    assert summary["complete"] and found["failures"] >= 3 and found["recoveries"] >= 1
    assert found["arrivals"] >= 1
    events = fleet.recorder.events
    wills = [e for e in events if e["event"] == "lost"]
    crashes = found["failures"] + sum(1 for c in summary["crashes"] if c["reason"] == "left")
    late = sum(1 for e in events if e["event"] == "crash" and e["round"] >= 11)
    assert crashes - late <= len(wills) <= crashes  # the last round's may come too late
    back = {e["agent"] for e in events if e["event"] == "rejoined"}
    assert len(back) >= found["recoveries"] // 2
    assert summary["messages"]["received_foreign"] == 0  # no respawn taken for a replay
    assert summary["received_foreign_by_topic"] == {}


def test_a_broker_restart_while_devices_fail_and_come_back_is_survived() -> None:
    """Devices repaired while the broker is away keep trying to connect, as the others do,
    and a device that crashed while disconnected does not count as a link still waiting
    for the broker (the run used to end, 'lost the broker', after the grace)."""
    import asyncio
    import time

    from swarm.broker.server import MosquittoServer
    from swarm.fleet import Fleet

    keys = {
        **CHURN,
        "fleet.count": 20,
        "run.rounds": 60,  # 15 s: well past the 5 s grace after the restart
        "gossip.period": 0.25,
        "faults.process": "exponential",
        "faults.mtbf_scale": 2e-8,  # a GPU every 3.6 s, 20 of them
        "faults.repair_s": 0.5,
    }
    with MosquittoServer() as broker:
        fleet = Fleet(load("fleet", **keys), broker_url=broker.url)

        def restart(round: int) -> None:
            if round == 8:
                broker.stop()
                time.sleep(1.0)
                broker.start()

        async def main() -> dict:
            fleet.world.rounds.add("chaos", restart)
            return await asyncio.wait_for(fleet.run(), 90)

        summary = asyncio.run(main())
    assert summary["complete"], summary.get("incomplete")
    found = summary["results"]["reliability"]
    assert found["failures"] >= 3 and found["recoveries"] >= 1
    assert not [c for c in summary["crashes"] if "could not reconnect" in c["reason"]]
