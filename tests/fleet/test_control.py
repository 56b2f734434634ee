"""Live controls on a headless fleet: each command changes the fleet, bad ones are refused."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from typing import Any

import pytest

from swarm import clock, topics, wire
from swarm.broker.network import Endpoint
from swarm.fleet import Fleet, control
from swarm.scenario import from_dict


def scenario(**sections: dict[str, Any]):
    data: dict[str, dict[str, Any]] = {
        "run": {"name": "ctl", "seed": 5, "rounds": 20, "stop_when_done": False},
        "fleet": {"count": 80, "mix": {"gpu": 0.5, "taxi": 0.5}, "regions": ["north", "south"]},
        "gossip": {"protocol": "push"},
        "network": {"topology": "complete"},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return from_dict(data)


def run_with(s, schedule: list[tuple[float, str, Any]]) -> tuple[Fleet, dict[str, Any], str]:
    """Run `s` headless, publishing (time, command, body) control messages on its topics."""
    sink, events = io.StringIO(), io.StringIO()

    def start(fleet: Fleet) -> None:
        link = fleet.broker.connect("script", Endpoint(reliable=True))
        loop = asyncio.get_running_loop()
        for seq, (at, command, body) in enumerate(schedule):
            topic = topics.control(fleet.world.run_id, command)
            payload = (
                body
                if isinstance(body, bytes)
                else control.encode(fleet.world.run_id, command, body, src="script", seq=seq)[1]
            )
            loop.call_at(fleet.world.rounds.start + at, link.publish, topic, payload)

    fleet = Fleet(s, metrics_sink=sink, events_sink=events, on_start=start)
    summary = clock.run(fleet.run())
    return fleet, summary, events.getvalue()


def answers(fleet: Fleet) -> list[tuple[str, bool, str]]:
    return [
        (e["command"], e["ok"], e["detail"])
        for e in fleet.recorder.events
        if e.get("event") == "control"
    ]


@pytest.mark.parametrize(
    ("name", "body", "problem"),
    [
        ("explode", {}, "unknown control"),
        ("crash", {"fraction": 0}, "fraction = 0"),
        ("crash", {"fraction": float("nan")}, "fraction = nan"),
        ("crash", {"fraction": 0.5, "colour": "red"}, "unknown argument 'colour'"),
        ("inject", {"count": 0}, "count = 0"),
        ("inject", {"count": True}, "count = True"),
        ("speed", {"speed": -1}, "speed = -1"),
        ("fanout", [1, 2], "must be a map"),
        ("partition", {"groups": "north"}, "groups = 'north'"),
        ("aggregator", {}, "rule = None"),
    ],
)
def test_parse_refuses_bad_commands_naming_what_is_wrong(name, body, problem) -> None:
    with pytest.raises(control.ControlError, match=problem.replace("(", r"\(")):
        control.parse(name, body)


def test_crash_kills_the_asked_share_of_one_class_and_the_events_say_so() -> None:
    fleet, summary, _ = run_with(scenario(), [(3.5, "crash", {"fraction": 0.5, "kind": "taxi"})])
    assert answers(fleet) == [("crash", True, "crashed 20 of 40 live agents in taxi")]
    crashed = [c for c in summary["crashes"] if c["reason"] == "control: crash"]
    assert len(crashed) == 20
    assert {fleet.placement.kinds[fleet.world.index_of[c["agent"]]] for c in crashed} == {"taxi"}
    assert fleet.status()["classes"]["taxi"]["crashed"] == 20
    assert fleet.status()["classes"]["gpu"]["crashed"] == 0


def test_the_same_controls_at_the_same_time_give_byte_identical_runs() -> None:
    plan = [(2.5, "crash", {"fraction": 0.3}), (4.5, "partition", {"groups": [["north"]]})]
    first = run_with(scenario(), plan)
    second = run_with(scenario(), plan)
    assert first[2] == second[2]
    assert first[1]["crashes"] == second[1]["crashes"]
    assert [c["agent"] for c in first[1]["crashes"]] != [
        c["agent"] for c in run_with(scenario(run={"seed": 6}), plan)[1]["crashes"]
    ]


def test_a_partition_stops_the_rumor_at_the_cut_and_heal_lets_it_through() -> None:
    cut = scenario(gossip={"protocol": "push", "ttl": 0})
    _fleet, summary, _ = run_with(cut, [(0.0, "partition", {"groups": [["north"]]})])
    assert summary["results"]["residue"] == pytest.approx(0.5)
    healed, summary, _ = run_with(
        cut, [(0.0, "partition", {"groups": [["north"]]}), (6.0, "heal", {})]
    )
    assert [a[:2] for a in answers(healed)] == [("partition", True), ("heal", True)]
    assert summary["results"]["residue"] == 0.0


def test_inject_admits_dormant_sybils_live_and_the_attack_block_counts_them() -> None:
    s = from_dict(
        {
            "run": {"name": "inj", "seed": 1, "rounds": 12},
            "fleet": {"count": 12, "mix": {"gpu": 1.0}, "regions": ["dc"], "workload": "learn"},
            "learn": {"dataset": "digits", "strategy": "fedavg", "fraction_fit": 0.5},
            "sybil": {"count": 4, "dormant": True, "compare_clean": False},
            "network": {"topology": "complete", "latency": 0.001},
        }
    )
    _quiet, summary, _ = run_with(s, [])
    assert summary["results"]["attack"]["admitted"] == 0
    fleet, summary, _ = run_with(s, [(5.5, "inject", {"count": 3})])
    assert answers(fleet) == [("inject", True, "3 Sybils joined (1 dormant left)")]
    attack = summary["results"]["attack"]
    assert attack["admitted"] == 3
    assert attack["first_join"] == pytest.approx(5.5)
    assert attack["sybil_messages_sent"] > 0


def test_switching_the_aggregator_and_the_fanout_reach_the_cores() -> None:
    s = from_dict(
        {
            "run": {"name": "agg", "seed": 1, "rounds": 4},
            "fleet": {"count": 10, "mix": {"gpu": 1.0}, "regions": ["dc"], "workload": "learn"},
            "learn": {"dataset": "digits", "strategy": "fedavg"},
            "network": {"topology": "complete"},
        }
    )
    fleet, _, _ = run_with(s, [(1.5, "aggregator", {"rule": "median"})])
    assert fleet.cores[0].server.rule == "median"
    assert fleet.status()["aggregator"] == "median"
    gossip, _, _ = run_with(scenario(), [(1.5, "fanout", {"fanout": 3})])
    assert {core.fanout for core in gossip.cores.values()} == {3}


def test_controls_that_do_not_fit_the_run_are_refused_with_the_reason() -> None:
    fleet, summary, _ = run_with(
        scenario(),
        [
            (1.5, "aggregator", {"rule": "krum"}),
            (1.5, "inject", {"count": 1}),
            (1.5, "crash", {"fraction": 0.5, "region": "west"}),
            (1.5, "fanout", {"fanout": 500}),
            (1.5, "crash", {"fraction": 2}),
        ],
    )
    refused = answers(fleet)
    assert [ok for _, ok, _ in refused] == [False] * 5
    assert "no aggregation server" in refused[0][2]
    assert "reserves no Sybil" in refused[1][2]
    assert "no region 'west'" in refused[2][2]
    assert "neighbours" in refused[3][2]
    assert "fraction = 2" in refused[4][2]
    assert summary["crashes"] == []


def test_garbage_on_a_control_topic_is_counted_and_answered() -> None:
    wrong_kind = wire.encode(wire.Envelope("metrics", "x", 1, 0.0, 0, {}))
    fleet, summary, _ = run_with(
        scenario(), [(1.5, "pause", b"\xc1\xff garbage"), (1.5, "pause", wrong_kind)]
    )
    assert summary["messages"]["dropped_malformed"] >= 2
    assert [ok for _, ok, _ in answers(fleet)] == [False, False]


def test_pause_freezes_virtual_time_until_resume_arrives_from_outside() -> None:
    """A dashboard resumes from its own thread; the paused run's output does not change."""
    s = scenario(run={"rounds": 10})
    resume = control.encode("ctl", "resume", {}, src="ui", seq=9)[1]
    paused_at: list[float] = []

    def start(fleet: Fleet) -> None:
        link = fleet.broker.connect("ui", Endpoint(reliable=True))
        loop = asyncio.get_running_loop()

        def pause() -> None:
            link.publish(
                topics.control("ctl", "pause"),
                control.encode("ctl", "pause", {}, src="ui", seq=1)[1],
            )
            paused_at.append(loop.time())
            threading.Timer(
                0.3,
                loop.call_soon_threadsafe,
                (link.publish, topics.control("ctl", "resume"), resume),
            ).start()

        loop.call_at(fleet.world.rounds.start + 2.5, pause)

    sink = io.StringIO()
    fleet = Fleet(s, metrics_sink=sink, on_start=start)
    wall = time.perf_counter()
    clock.run(fleet.run())
    assert time.perf_counter() - wall >= 0.3  # it did wait for the resume
    assert [a[:2] for a in answers(fleet)] == [("pause", True), ("resume", True)]
    plain = io.StringIO()
    clock.run(Fleet(s, metrics_sink=plain).run())
    # No round moved (time stood still); only the two control messages add to the traffic.
    traffic = ("sent", "delivered", "bytes")

    def rounds(text: str) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in json.loads(line).items() if k not in traffic}
            for line in text.splitlines()
        ]

    assert rounds(sink.getvalue()) == rounds(plain.getvalue())
