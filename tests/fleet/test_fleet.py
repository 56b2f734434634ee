"""Whole runs on the embedded broker: determinism, theory, and robustness to garbage."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
import pytest

from swarm import clock, laws, wire
from swarm.fleet import Fleet
from swarm.placement import place_agents
from swarm.run.runner import run_scenario
from swarm.scenario import ScenarioError, from_dict, load


def small(protocol: str = "push", count: int = 200, **sections: dict[str, Any]):
    data: dict[str, dict[str, Any]] = {
        "run": {"seed": 3, "rounds": 80},
        "fleet": {"count": count},
        "gossip": {"protocol": protocol},
        "network": {"topology": "complete"},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return from_dict(data)


def test_same_seed_gives_byte_identical_metrics_and_another_seed_does_not(tmp_path) -> None:
    scenario = load("fleet", **{"fleet.count": 300})
    run_scenario(scenario, out_dir=tmp_path / "a")
    run_scenario(scenario, out_dir=tmp_path / "b")
    first = (tmp_path / "a" / "metrics.jsonl").read_bytes()
    assert (tmp_path / "a" / "events.jsonl").read_bytes() == b""  # nothing crashed
    assert first == (tmp_path / "b" / "metrics.jsonl").read_bytes()
    assert first.count(b"\n") > 5
    other = load("fleet", **{"fleet.count": 300, "run.seed": 2})
    run_scenario(other, out_dir=tmp_path / "c")
    assert first != (tmp_path / "c" / "metrics.jsonl").read_bytes()


def test_summary_has_the_documented_keys(tmp_path) -> None:
    summary = run_scenario(small(), out_dir=tmp_path)
    for key in ("scenario", "seed", "version", "agents", "sim_time", "wall_time", "messages"):
        assert key in summary
    assert set(summary["messages"]) >= {
        "sent",
        "delivered",
        "dropped",
        "dropped_malformed",
        "bytes",
    }
    assert set(summary["results"]) >= {"residue", "traffic", "t_ave", "t_last", "rounds_to_all"}
    assert (tmp_path / "summary.json").exists()


def test_push_on_a_complete_graph_agrees_with_pittel() -> None:
    n = 512
    rounds = [
        run_scenario(small(count=n, run={"seed": seed}))["results"]["rounds_to_all"]
        for seed in range(1, 9)
    ]
    assert None not in rounds
    assert abs(statistics.mean(rounds) - laws.push_rounds_complete(n)) < 2.5


def test_informed_fraction_never_shrinks_and_ends_at_one(tmp_path) -> None:
    run_scenario(small("pull", count=300), out_dir=tmp_path)
    import json

    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    informed = [row["informed"] for row in rows]
    assert informed == sorted(informed)
    assert informed[0] == 1 and informed[-1] == 300


@pytest.mark.parametrize(
    ("topology", "count", "extra"),
    [
        ("ring", 64, {}),
        ("torus", 64, {}),
        ("hypercube", 64, {}),
        ("regular", 64, {"degree": 4}),
        ("small-world", 64, {"degree": 4, "rewire": 0.2}),
        ("geo", 120, {"degree": 4}),
    ],
)
@pytest.mark.parametrize("protocol", ["push", "pull", "push-pull"])
def test_every_protocol_informs_everyone_on_connected_topologies(protocol, topology, count, extra):
    scenario = small(
        protocol, count=count, run={"rounds": 400}, network={"topology": topology, **extra}
    )
    summary = run_scenario(scenario)
    assert summary["results"]["residue"] == 0.0
    assert summary["topology"]["connected"]


def test_rumor_mongering_goes_quiet_with_a_residue() -> None:
    summary = run_scenario(small("rumor", count=500, gossip={"k": 1}))
    results = summary["results"]
    assert 0.0 < results["residue"] < 0.5
    assert summary["rounds"] < 80  # ended early: nobody had anything left to send


def test_a_partition_keeps_the_rumor_on_one_side() -> None:
    summary = run_scenario(load("partitioned", **{"fleet.count": 400}))
    assert summary["results"]["residue"] == pytest.approx(0.5)
    assert summary["messages"]["dropped"] > 0


def test_loss_is_counted_and_push_still_informs_everyone() -> None:
    summary = run_scenario(small(network={"loss": 0.2}))
    messages = summary["messages"]
    assert messages["dropped"] > 0
    assert messages["sent"] == messages["delivered"] + messages["dropped"]
    assert summary["results"]["residue"] == 0.0


def test_ttl_limits_how_far_a_rumor_travels() -> None:
    summary = run_scenario(small(count=300, gossip={"ttl": 1}, run={"rounds": 20}))
    informed = round((1 - summary["results"]["residue"]) * 300)
    assert 1 < informed <= 21  # the origin and at most one new peer per round


def test_push_sum_conserves_mass_and_converges() -> None:
    summary = run_scenario(small("push-sum", count=300, run={"rounds": 40}))
    results = summary["results"]
    assert results["mass_error"] < 1e-12
    variance = results["variance"]
    assert len(variance) == 41
    assert variance[-1] < variance[0] * 1e-6
    assert results["max_error"] < 1e-3


def test_pairwise_average_conserves_mass_with_overlapping_exchanges() -> None:
    summary = run_scenario(small("average", count=300, run={"rounds": 30}, gossip={"fanout": 3}))
    assert summary["results"]["mass_error"] < 1e-12
    assert summary["results"]["variance"][-1] < 1e-9


def test_bandwidth_and_distance_latency_slow_but_do_not_stop_gossip() -> None:
    scenario = small(
        count=200,
        gossip={"payload_bytes": 1000},
        network={"latency_model": "distance", "bandwidth": 1e6},
    )
    assert run_scenario(scenario)["results"]["residue"] == 0.0


async def _run_with_rogue(fleet: Fleet, payloads: list[bytes]) -> dict[str, Any]:
    rogue = fleet.broker.connect("rogue")
    target = fleet.world.inbox_topics[0]

    def inject(round: int) -> None:
        if round == 1:
            for payload in payloads:
                rogue.publish(target, payload)

    fleet.world.rounds.add("rogue", inject)
    return await fleet.run()


def test_garbage_from_the_network_is_counted_never_fatal() -> None:
    fleet = Fleet(small(count=50))
    good_kind_bad_body = wire.pack("push", fleet.world.ids[1], 1, 0.0, 1, {"not": "a list"})
    unknown_source = wire.pack("push", "intruder", 1, 0.0, 1, [])
    wrong_protocol = wire.pack("push-sum", fleet.world.ids[1], 1, 0.0, 1, [1.0, 1.0])
    payloads = [b"\xc1", b"", b"\x93\x01\x02", good_kind_bad_body, unknown_source, wrong_protocol]
    summary = clock.run(_run_with_rogue(fleet, payloads))
    assert summary["messages"]["dropped_malformed"] == len(payloads)
    assert summary["results"]["residue"] == 0.0
    assert summary["crashes"] == []


def test_a_core_bug_crashes_one_agent_and_the_run_goes_on() -> None:
    fleet = Fleet(small(count=50))

    def broken(*args: Any) -> list[Any]:
        raise RuntimeError("boom")

    victim = 7 if fleet.workload.origin != 7 else 8
    fleet.cores[victim].on_message = broken  # type: ignore[method-assign]
    summary = clock.run(fleet.run())
    assert [c["agent"] for c in summary["crashes"]] == [fleet.world.ids[victim]]
    assert "boom" in summary["crashes"][0]["reason"]
    # The crash also travelled as an event message on swarm/<run>/events/crash.
    [event] = fleet.recorder.events
    assert event["event"] == "crash" and event["agent"] == fleet.world.ids[victim]
    assert summary["results"]["residue"] == pytest.approx(1 / 50)


def test_impossible_topologies_and_fanouts_are_scenario_errors() -> None:
    with pytest.raises(ScenarioError, match="power-of-two"):
        Fleet(small(count=100, network={"topology": "hypercube"}))
    with pytest.raises(ScenarioError, match=r"gossip\.fanout = 3"):
        Fleet(small(count=100, gossip={"fanout": 3}, network={"topology": "ring"}))


def test_placement_follows_the_mix_and_regions() -> None:
    scenario = small(count=10, fleet={"mix": {"gpu": 1, "taxi": 3}, "regions": ["a", "b"]})
    placement = place_agents(scenario)
    assert placement.kinds.count("gpu") == 2 or placement.kinds.count("gpu") == 3
    assert len(placement.kinds) == 10
    assert sorted(np.unique(placement.regions).tolist()) == [0, 1]
    assert placement.positions.shape == (10, 2)


def _status_at(scenario, round_: int | None) -> dict[str, Any]:
    """The fleet's live status as a dashboard sees it after `round_` (None: the last)."""
    seen: dict[str, Any] = {}
    fleet: list[Fleet] = []

    def on_round(row: dict[str, Any]) -> None:
        if round_ is None or row["round"] == round_:
            seen.update(fleet[0].status(), row=row)

    fleet.append(Fleet(scenario, on_round=on_round))
    summary = clock.run(fleet[0].run())
    return seen | {"summary": summary}


def test_status_reports_battery_left_and_sleeping_devices_per_class() -> None:
    status = _status_at(load("tiny-pioneer", **{"run.rounds": 20}), 10)
    hearables = status["classes"]["hearable"]
    assert 0.0 < hearables["energy_left"] < 1.0  # they drew on their batteries
    assert hearables["depleted"] == 0
    # a duty cycle below 1 puts some of the live devices to sleep each round
    assert 0 < hearables["asleep"] < hearables["alive"]


def test_mains_devices_report_no_battery() -> None:
    status = _status_at(load("cloud-titan", **{"run.rounds": 3}), 2)
    assert all("energy_left" not in c for c in status["classes"].values())


def test_live_awareness_agrees_with_the_summary_at_the_end() -> None:
    status = _status_at(load("edge-guardian", **{"run.duration": 120.0}), None)
    live, final = status["awareness"], status["summary"]["results"]
    assert live["reached"] == final["reached"] > 0 and live["missed"] == final["missed"]
    for key in ("p50", "p90", "p99"):
        assert live[key] == pytest.approx(final["awareness_latency"][key])
    # a row's "sent" is the broker's count (metrics rows too), the taxis' warnings apart
    row = status["row"]
    assert row["sent"] > row["warnings_sent"] > 0
