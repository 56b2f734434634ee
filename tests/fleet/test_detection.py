"""SWIM run by the fleet's devices over the broker: detection latency against the
analysis, false positives under loss, rejoins after repairs, garbage dropped."""

from __future__ import annotations

import io
import math
from typing import Any

import pytest

from swarm import clock, topics, wire
from swarm.broker.network import Endpoint
from swarm.fleet import Fleet
from swarm.fleet.detection import results
from swarm.scenario import ScenarioError, from_dict


def scenario(count: int = 200, **sections: dict[str, Any]):
    data: dict[str, dict[str, Any]] = {
        "run": {"name": "swim", "seed": 3, "rounds": 40, "stop_when_done": False},
        "fleet": {"count": count, "mix": {"gpu": 1.0}, "regions": ["r0", "r1"]},
        "gossip": {"protocol": "push"},
        "faults": {"detection": "swim"},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return from_dict(data)


def detection(s, on_start=None) -> tuple[Fleet, dict[str, Any]]:
    fleet = Fleet(s, metrics_sink=io.StringIO(), on_start=on_start)
    summary = clock.run(fleet.run())
    return fleet, summary["results"]["reliability"]["detection"]


def up(fleet: Fleet) -> list:
    """The agents not crashed when the run ended (every agent is stopped by then)."""
    return [a for a in fleet.honest_agents() if a.state.name != "CRASHED" and a.swim is not None]


CRASH = {"script": [{"at": 5, "command": "crash", "fraction": 0.1}], "detection": "swim"}


def test_crashes_are_detected_as_fast_as_the_analysis_says_without_false_alarms() -> None:
    latencies = []
    for seed in range(1, 5):
        _, found = detection(scenario(run={"seed": seed}, faults=CRASH))
        assert found["crashes"] == found["detected"] == found["confirmed"] == 20
        assert found["false_positives"] == found["false_confirmations"] == 0
        latencies.append(found["latency_mean"])
    # 20 crashes of 200 members: each live member picks one target a period, so a dead
    # one is first missed after 1 / (1 - (1 - 1/199)^180) = 1.69 periods on average.
    expected = found["expected_latency_mean"]
    assert expected == pytest.approx(1 / (1 - (1 - 1 / 199) ** 180))
    # 80 crashes: a geometric latency's sd is sqrt(1 - p) / p = 1.1 periods
    assert abs(sum(latencies) / 4 - expected) < 3 * 1.1 / math.sqrt(80)
    # confirmed a suspicion window after the first suspicion, whose tail is geometric
    assert found["confirm_latency_p99"] <= found["suspicion_periods"] + 6


def test_under_loss_false_positives_are_counted_and_refuted() -> None:
    _, found = detection(scenario(network={"loss": 0.1}, faults=CRASH))
    assert found["detected"] == found["crashes"] == 20
    assert found["false_positives"] > 0
    assert found["refutations"] > 0
    _, clean = detection(scenario(faults=CRASH))
    assert clean["false_positives"] == 0


def test_one_seed_gives_the_same_detection_figures() -> None:
    s = scenario(network={"loss": 0.05}, faults=CRASH)
    assert detection(s)[1] == detection(s)[1]


def test_repaired_devices_rejoin_every_view_and_late_news_is_not_a_false_alarm() -> None:
    churn = {
        "detection": "swim",
        "process": "exponential",
        "mtbf_scale": 1e-6,
        "repair_s": 5.0,
    }
    fleet, found = detection(scenario(count=100, run={"rounds": 60}, faults=churn))
    assert found["crashes"] > 10
    assert found["false_positives"] == found["false_confirmations"] == 0
    live = up(fleet)
    assert len(live) > 50
    # devices up for the last 20 rounds are in (nearly) every live member's view again
    steady = {
        a.index
        for a in live
        if not any(
            e[0] == a.index and e[2] > fleet.world.rounds.round - 20 for e in fleet._episodes
        )
    }
    for agent in live:
        assert agent.swim is not None
        missing = steady - set(agent.swim.members) - {agent.index}
        assert len(missing) <= 2


def test_forged_and_malformed_probes_are_dropped_and_counted() -> None:
    def forge(fleet: Fleet) -> None:
        link = fleet.broker.connect("intruder", Endpoint(reliable=True))
        inbox = topics.inbox(fleet.world.run_id, fleet.world.ids[4])
        bodies = [
            "not a map",
            {"seq": "x"},
            {"seq": 1, "updates": [["confirm", "me", 0]]},
            {"seq": 1, "updates": [["suspect", 5, -1]]},
            {"seq": 1, "target": 4},
        ]
        for seq, body in enumerate(bodies):
            kind = "ping-req" if "target" in body else "ping"
            payload = wire.encode(wire.Envelope(kind, 7, seq, 0.0, 1, body))
            link.publish(inbox, payload)

    fleet, found = detection(scenario(faults=CRASH), on_start=forge)
    assert fleet.world.counters.dropped_malformed == 5
    assert found["false_confirmations"] == 0
    assert fleet.world.crashes and all(r == "control: crash" for _, r in fleet.world.crashes)


def test_results_sort_suspicions_into_detections_false_alarms_and_late_news() -> None:
    s = scenario()
    part = {
        # member 3 down from round 10, back at 30; member 8 down from 12 for good
        "episodes": [[3, 10, 30], [8, 12, -1]],
        # period 11 judges the ping of period 10 (3 down: detected after 1 period);
        # period 10 judges period 9 (3 still up: a false alarm); 8 found at 15
        "suspicions": [[10, 3, 1], [11, 3, 2], [15, 8, 1], [40, 5, 1]],
        "confirmations": [[20, 3], [35, 3], [25, 8], [26, 6]],
        "refutations": 1,
        "messages": 100,
    }
    found = results(s, 200, [part])
    assert found["crashes"] == found["detected"] == 2
    assert found["latency_p50"] == 2.0  # latencies 1 and 3
    assert found["false_positives"] == 2  # [10, 3] once, [40, 5] once
    assert found["confirmed"] == 2 and found["confirm_latency_p50"] == 11.5
    assert found["late_confirmations"] == 1  # 3 at 35, back since 30
    assert found["false_confirmations"] == 1  # 6 never failed


def test_swim_on_a_fleet_too_large_for_full_views_is_refused() -> None:
    with pytest.raises(ScenarioError, match=r"fleet\.count = 2001"):
        scenario(count=2001)


def test_late_joiners_announce_themselves_and_leavers_are_detected_like_crashes() -> None:
    churn = {"detection": "swim", "joining": 0.3, "session_s": 100.0}
    fleet, found = detection(scenario(count=100, run={"rounds": 60}, faults=churn))
    assert found["crashes"] > 10  # the devices that left, without a word
    assert found["false_positives"] == found["false_confirmations"] == 0
    live = up(fleet)
    newcomers = {a.index for a in live if a.index in fleet.detectors.joins}
    assert newcomers
    for agent in live:  # everyone knows (nearly) every newcomer
        assert agent.swim is not None
        assert len(newcomers - set(agent.swim.members) - {agent.index}) <= 2
