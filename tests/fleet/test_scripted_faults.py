"""Scripted faults take the controls' path at their round boundary, reproducibly."""

from __future__ import annotations

import io
from typing import Any

import pytest
from test_control import answers, run_with, scenario

from swarm import clock
from swarm.fleet import Fleet
from swarm.scenario import ScenarioError


def play(s) -> tuple[Fleet, dict[str, Any], str]:
    events = io.StringIO()
    fleet = Fleet(s, metrics_sink=io.StringIO(), events_sink=events)
    summary = clock.run(fleet.run())
    return fleet, summary, events.getvalue()


def script(*entries: dict[str, Any], **sections: dict[str, Any]):
    return scenario(faults={"script": list(entries)}, **sections)


def test_a_scripted_crash_kills_what_the_same_control_message_kills() -> None:
    crash = {"fraction": 0.25, "kind": "gpu", "region": "north"}
    fleet, summary, events = play(script({"at": 3.5, "command": "crash", **crash}))
    sent, by_message, _ = run_with(scenario(), [(4.0, "crash", crash)])
    assert summary["crashes"] == by_message["crashes"] != []
    assert '"src":"script"' in events
    scripted = [e for e in fleet.recorder.events if e.get("event") == "control"]
    assert [(e["round"], e["ok"], e["src"]) for e in scripted] == [(4, True, "script")]
    assert answers(fleet) == answers(sent)
    assert summary["controls"] == {
        "applied": 1,
        "refused": 0,
        "limited": 0,
        "scripted": 1,
        "unplayed": 0,
    }


def test_one_seed_and_one_script_give_byte_identical_events() -> None:
    plan = script(
        {"at": 2, "command": "crash", "fraction": 0.3},
        {"at": 5, "command": "partition", "groups": [["north"]]},
        {"at": 8, "command": "heal"},
    )
    assert play(plan)[2] == play(plan)[2]


def test_a_latency_spike_slows_the_rumor_down() -> None:
    rumor = {"gossip": {"protocol": "push", "ttl": 0}}
    calm = play(scenario(**rumor))[1]["results"]
    spiked = play(script({"at": 0, "command": "latency", "latency": 3.0}, **rumor))[1]
    assert spiked["controls"]["applied"] == 1
    assert spiked["results"]["t_last"] > calm["t_last"] + 2


def test_a_slowed_learner_computes_longer_and_a_workload_without_compute_refuses() -> None:
    learn = {
        "fleet": {"count": 10, "mix": {"gpu": 1.0}, "workload": "learn"},
        "learn": {"strategy": "gossip", "dataset": "digits"},
        "run": {"rounds": 6},
    }
    plain = play(scenario(**learn))[1]["results"]["compute_s_per_agent"]
    slowed = play(script({"at": 0, "command": "slow", "fraction": 1.0, "factor": 10}, **learn))
    assert slowed[1]["results"]["compute_s_per_agent"] == pytest.approx(10 * plain, rel=0.05)
    fleet, summary, _ = play(script({"at": 1, "command": "slow", "fraction": 0.5, "factor": 2}))
    assert summary["controls"]["refused"] == 1
    assert answers(fleet) == [
        ("slow", False, "slow: this workload does not model compute time (learn does)")
    ]


def test_entries_past_the_end_of_the_run_are_counted_unplayed() -> None:
    summary = play(script({"at": 3, "command": "heal"}, {"at": 900, "command": "heal"}))[1]
    assert summary["controls"]["scripted"] == 1
    assert summary["controls"]["unplayed"] == 1


def test_a_real_broker_refuses_a_scripted_network_change_before_it_starts() -> None:
    s = script({"at": 1, "command": "latency", "latency": 0.5})
    with pytest.raises(ScenarioError, match=r"faults.script\[0\].command = 'latency'"):
        Fleet(s, broker_url="mqtt://127.0.0.1:1")


def test_a_scripted_crash_of_a_class_already_dead_is_refused_and_counted() -> None:
    plan = script(
        {"at": 1, "command": "crash", "fraction": 1.0, "kind": "taxi"},
        {"at": 2, "command": "crash", "fraction": 0.5, "kind": "taxi"},
    )
    fleet, summary, _ = play(plan)
    assert [a[:2] for a in answers(fleet)] == [("crash", True), ("crash", False)]
    assert summary["controls"]["refused"] == 1


def test_a_scripted_injection_runs_and_the_clean_comparison_leaves_it_out() -> None:
    from swarm.run.runner import run_scenario
    from swarm.scenario import load

    entries = [
        {"at": 5, "command": "inject", "count": 2},
        {"at": 6, "command": "aggregator", "rule": "median"},
    ]
    keys = {"run.rounds": 12, "sybil.dormant": True, "faults.script": entries}
    summary = run_scenario(load("sybil-fedavg", **keys))
    assert summary["controls"]["applied"] == 2
    assert summary["results"]["attack"]["clean"]["accuracy"] > 0.5  # ran without Sybils
