"""The learning and hazard workloads run as fleets: the figures the summary promises."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm import clock, laws, topics, wire
from swarm.cli import main
from swarm.fleet import Fleet
from swarm.run.runner import run_scenario
from swarm.scenario import ScenarioError, from_dict, load
from swarm.workloads.learn.compression import expected_factor
from swarm.workloads.learn.strategies import ELECTION_AFTER, PROBE_AFTER


def learning(strategy: str = "gossip", count: int = 8, rounds: int = 6, **learn: Any):
    return from_dict(
        {
            "run": {"name": f"learn-{strategy}", "seed": 3, "rounds": rounds},
            "fleet": {"count": count, "workload": "learn", "mix": {"gpu": 1.0}},
            "learn": {"strategy": strategy, **learn},
        }
    )


def test_cloud_titan_is_within_two_points_of_the_centralized_baseline() -> None:
    summary = run_scenario(load("cloud-titan"))
    results = summary["results"]
    assert results["baseline_accuracy"] > 0.9
    assert results["accuracy"] >= results["baseline_accuracy"] - 0.02
    low, high = results["accuracy_spread"]
    # The mean of equal scores may round one unit below them.
    assert low - 1e-12 <= results["accuracy"] <= high + 1e-12


def test_the_centralized_baseline_trains_as_long_as_the_fleet_up_to_100_epochs() -> None:
    """A run of thousands of rounds must not spend most of its time on the baseline."""
    short = run_scenario(learning("gossip", count=4, rounds=7, local_epochs=2))["results"]
    assert short["baseline_epochs"] == 14
    long = run_scenario(learning("gossip", count=4, rounds=130))["results"]
    assert long["baseline_epochs"] == 100 and long["baseline_accuracy"] > 0.9


def test_ring_all_reduce_traffic_per_node_is_exactly_the_law() -> None:
    n = 10
    summary = run_scenario(learning("allreduce", count=n, rounds=5))
    ring = summary["results"]["allreduce"]
    assert ring["iterations"] == 5
    predicted = laws.ring_allreduce_bytes_per_node(n, ring["model_bytes"])
    assert ring["predicted_bytes_per_node_per_iteration"] == predicted == 2 * (n - 1) / n * 2600
    assert ring["bytes_per_node_per_iteration"] == [predicted, predicted]


def test_ring_all_reduce_time_is_the_alpha_beta_law() -> None:
    """Unlimited links: 2(N-1) latencies, exactly. Finite links: the law plus the
    envelope each chunk carries, which the law's model bytes leave out."""
    n, latency = 10, 0.002
    net = {"network": {"latency": latency, "topology": "complete"}}
    scenario = learning("allreduce", count=n, rounds=4).to_dict() | net
    ring = run_scenario(from_dict(scenario))["results"]["allreduce"]
    assert ring["ring_seconds_per_iteration"] == pytest.approx(2 * (n - 1) * latency, rel=1e-9)
    assert ring["predicted_ring_seconds_per_iteration"] == pytest.approx(2 * (n - 1) * latency)
    assert ring["ring_seconds_per_iteration"] <= ring["seconds_per_iteration"]
    assert 0 < ring["communication_share"] <= 1
    scenario["network"] = {**net["network"], "bandwidth": 1e7}
    ring = run_scenario(from_dict(scenario))["results"]["allreduce"]
    law = laws.ring_allreduce_seconds(n, ring["model_bytes"], 1e7, latency)
    assert ring["predicted_ring_seconds_per_iteration"] == pytest.approx(law)
    assert law < ring["ring_seconds_per_iteration"] < 1.1 * law


@pytest.mark.parametrize("strategy", ["gossip", "fedavg", "allreduce"])
def test_each_compression_divides_update_bytes_by_its_factor(strategy: str) -> None:
    plain = run_scenario(learning(strategy, compression="none"))["results"]
    for mode in ("fp16", "int8", "topk"):
        squeezed = run_scenario(learning(strategy, compression=mode, topk_ratio=0.1))["results"]
        assert squeezed["updates_sent"] == plain["updates_sent"]
        factor = plain["update_bytes"] / squeezed["update_bytes"]
        assert factor == pytest.approx(squeezed["compression_factor_expected"], rel=1e-12)
        assert squeezed["accuracy"] > 0.5  # the cost is reported, and it is not ruin
    assert plain["compression_factor_expected"] == 1.0
    assert expected_factor("topk", 650, 0.1) == 10.0


@pytest.mark.parametrize("strategy", ["gossip", "fedavg", "allreduce"])
def test_every_strategy_learns_on_iid_digits(strategy: str) -> None:
    results = run_scenario(learning(strategy, count=9, rounds=8))["results"]
    assert results["accuracy"] > 0.85
    assert results["updates_rejected"] == 0


def test_learning_runs_are_byte_identical_for_one_seed(tmp_path) -> None:
    for name in ("a", "b"):
        run_scenario(learning("gossip", compression="int8"), out_dir=tmp_path / name)
    first = (tmp_path / "a" / "metrics.jsonl").read_bytes()
    assert first == (tmp_path / "b" / "metrics.jsonl").read_bytes()
    row = json.loads(first.splitlines()[-1])
    assert {"accuracy", "accuracy_min", "accuracy_max", "update_bytes"} <= set(row)


def test_a_poisoned_update_from_a_peer_is_rejected_and_the_model_stays_finite() -> None:
    fleet = Fleet(learning("gossip", count=6, rounds=4))
    world = fleet.world
    bad = [
        {"mode": "none", "values": np.full(650, np.nan, dtype=np.float32)},
        {"mode": "none", "values": np.ones(3, dtype=np.float32)},
        {
            "mode": "int8",
            "codes": np.zeros(650, np.uint8),
            "scale": float("inf"),
            "zero_point": 0.0,
        },
    ]

    def inject(round: int) -> None:
        if round == 1:
            for update in bad:
                payload = wire.pack(
                    "model", world.ids[1], 99, 0.0, 1, {"round": 1, "update": update}
                )
                fleet.agents[2].link.deliver(topics.inbox(world.run_id, world.ids[2]), payload)

    world.rounds.add("rogue", inject)
    summary = clock.run(fleet.run())
    assert summary["results"]["updates_rejected"] == len(bad)
    for core in fleet.cores.values():
        assert np.isfinite(core.learner.get_params()).all()
    assert summary["results"]["accuracy"] > 0.5


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"learn": {"dataset": "mnist"}}, "learn.dataset = 'mnist'"),
        ({"learn": {"compression": "fp8"}}, "learn.compression = 'fp8'"),
        ({"learn": {"strategy": "ring"}}, "learn.strategy = 'ring'"),
        ({"learn": {"fraction_fit": 0.0}}, "learn.fraction_fit = 0.0: must be > 0"),
        ({"devices": {"glasses": {"idle_w": -1.0}}}, "devices.glasses.idle_w = -1"),
        ({"devices": {"gpuu": {}}}, "unknown key devices.gpuu"),
        ({"fleet": {"mix": {"robot": 1.0}}}, "fleet.mix.robot: unknown device class"),
        ({"hazards": {"share": 1.5}}, "hazards.share = 1.5: must be <= 1.0"),
    ],
)
def test_bad_learning_and_device_keys_are_one_line_errors(override, needle) -> None:
    with pytest.raises(ScenarioError) as info:
        from_dict(override)
    assert needle in str(info.value)


def test_a_shard_size_larger_than_the_data_is_a_scenario_error() -> None:
    scenario = learning("gossip", count=10, shard_size=500)
    with pytest.raises(
        ScenarioError, match="shard_size 500 x 10 agents needs 5000 samples"
    ) as info:
        Fleet(scenario)
    assert "with learn.overlap = true each agent draws its own" in str(info.value)


def test_an_overlapping_shard_larger_than_the_data_is_a_scenario_error(capsys) -> None:
    scenario = learning("gossip", count=10, overlap=True, shard_size=5000)
    with pytest.raises(ScenarioError, match="shard_size 5000 is larger than the data; digits"):
        Fleet(scenario)
    argv = ["run", "--set", "fleet.workload=learn", "--set", "learn.overlap=true"]
    assert main([*argv, "--set", "learn.shard_size=5000", "--agents", "20"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("swarm: error:") and err.count("\n") == 1, err


def test_overlap_needs_a_shard_size_and_lets_the_fleet_outgrow_the_data() -> None:
    with pytest.raises(ScenarioError, match=r"learn\.overlap = true needs learn\.shard_size"):
        from_dict({"fleet": {"workload": "learn"}, "learn": {"overlap": True}})
    scenario = from_dict(
        {
            "run": {"rounds": 2},
            "fleet": {"count": 2000, "workload": "learn", "mix": {"glasses": 1.0}},
            "learn": {"overlap": True, "shard_size": 4},
        }
    )
    results = run_scenario(scenario)["results"]  # 2,000 agents on 1,347 samples
    assert results["accuracy"] > 0.2


def test_edge_guardian_reports_awareness_latency_percentiles() -> None:
    data = load("edge-guardian").to_dict()
    data["run"]["duration"] = 240.0
    summary = run_scenario(from_dict(data))
    latency = summary["results"]["awareness_latency"]
    assert set(latency) == {"p50", "p90", "p99"}
    assert 0 <= latency["p50"] <= latency["p90"] <= latency["p99"]
    assert summary["results"]["hazards"] > 0
    assert summary["results"]["messages_per_taxi"] > 0


def test_swarm_run_prints_learning_results(capsys) -> None:
    assert main(["run", "cloud-titan", "--set", "run.rounds=3"]) == 0
    out = capsys.readouterr().out
    assert "results.baseline_accuracy" in out
    assert "results.allreduce.bytes_per_node_per_iteration" in out
    assert "allreduce on digits" in out


def test_devices_spend_energy_and_a_flat_battery_stops_a_learner() -> None:
    healthy = run_scenario(learning("gossip", count=6, rounds=5))["results"]
    assert healthy["depleted"] == 0
    assert healthy["energy_j"]["compute"] > 0 and healthy["energy_j"]["tx"] > 0
    assert healthy["compute_s_per_agent"] > 0
    data = learning("gossip", count=6, rounds=5).to_dict()
    data["fleet"]["mix"] = {"glasses": 1.0}
    data["devices"] = {"glasses": {"battery_wh": 1e-4}}  # 0.36 J: gone within a round
    drained = run_scenario(from_dict(data))["results"]
    assert drained["depleted"] == 6
    assert drained["updates_sent"] < healthy["updates_sent"]


def test_slow_devices_take_simulated_time_to_train_and_send() -> None:
    fast = learning("allreduce", count=4, rounds=3).to_dict()
    slow = json.loads(json.dumps(fast))
    # An epoch of digits is about 1.3 MFLOP per agent: 130 s on a 10 kFLOP/s chip, longer
    # than the 100 s round, so the ring cannot finish every round.
    slow["devices"] = {"gpu": {"flops": 1e4}}
    slow["gossip"] = {"period": 100.0}
    results = run_scenario(from_dict(slow))["results"]
    assert results["compute_s_per_agent"] > 2 * 100
    assert results["allreduce"]["iterations"] < 3


def test_tiny_pioneer_reports_how_readings_degrade_over_hops_and_time() -> None:
    data = load("tiny-pioneer").to_dict()
    data["run"]["rounds"] = 120
    results = run_scenario(from_dict(data))["results"]
    assert 0 < results["delivery_ratio"] <= 1
    assert results["age_of_information"]["p50"] <= results["age_of_information"]["p90"]
    errors = [e for e in results["error_by_hops"] if e is not None]
    assert errors[0] < max(errors[1:])  # relayed readings are staler than one's own
    assert results["drift_bits"] >= 0
    assert results["energy_j"]["total"] > 0


def test_a_learning_fleet_runs_in_two_shards_over_mosquitto(mosquitto) -> None:
    from swarm.run.shards import run_sharded

    data = learning("allreduce", count=6, rounds=10).to_dict()
    data["gossip"] = {"period": 0.3}
    data["broker"] = {"connections": "shared"}
    summary = run_sharded(from_dict(data), mosquitto.url, 2)
    assert summary["shards"]["dead"] == []
    results = summary["results"]
    assert results["allreduce"]["iterations"] >= 3
    assert results["accuracy"] > 0.8
    assert results["updates_rejected"] == 0


@pytest.mark.parametrize("name", ["cloud-titan", "mobile-nomad", "edge-guardian", "tiny-pioneer"])
def test_each_workload_is_byte_identical_for_one_seed(name: str, tmp_path) -> None:
    data = load(name).to_dict()
    data["run"]["rounds"], data["run"]["duration"] = 12, 0.0
    for copy in ("a", "b"):
        run_scenario(from_dict(data), out_dir=tmp_path / copy)
    first = (tmp_path / "a" / "metrics.jsonl").read_bytes()
    assert first and first == (tmp_path / "b" / "metrics.jsonl").read_bytes()


def test_killing_30_percent_of_cloud_titan_re_forms_the_ring_within_a_point() -> None:
    """Three of ten GPUs die at round 10: the seven left stall, beat, take a ring of seven
    and train on; their accuracy ends within one point of the run without failures."""

    def survivors(kill: bool) -> tuple[float, Fleet]:
        def on_round(row: dict) -> None:
            if kill and row["round"] == 10:
                for agent in fleet.agents[7:]:
                    agent.crash("test")

        fleet = Fleet(load("cloud-titan"), on_round=on_round)
        summary = clock.run(fleet.run(), virtual=True)
        data = fleet.workload.dataset
        live = [a.index for a in fleet.agents if a.alive or a.state.name == "STOPPED"]
        scores = [fleet.workload.cores[i].learner.accuracy(data.X_test, data.y_test) for i in live]
        assert summary["results"]["allreduce"]["reformed"] == (1 if kill else 0)
        return float(np.mean(scores)), fleet

    clean, _ = survivors(False)
    hurt, fleet = survivors(True)
    assert abs(clean - hurt) <= 0.01
    cores = [fleet.workload.cores[i] for i in range(7)]
    assert all(c.n == 7 and c.iterations_done >= 20 for c in cores)


@settings(max_examples=12, deadline=None)
@given(
    deaths=st.dictionaries(st.integers(0, 5), st.integers(1, 12), max_size=5),
    seed=st.integers(1, 2**31),
)
def test_whoever_dies_whenever_the_ring_left_settles_and_trains_on(deaths, seed) -> None:
    """Any subset of a 6-GPU ring dying at any rounds: the survivors end on one ring made
    of exactly themselves, having completed iterations after the last death."""

    def on_round(row: dict) -> None:
        for index, at in deaths.items():
            if row["round"] == at:
                fleet.agents[index].crash("test")

    rounds = max(deaths.values(), default=0) + 16
    keys = {"run.rounds": rounds, "run.seed": seed, "fleet.count": 6}
    fleet = Fleet(load("cloud-titan", **keys), on_round=on_round)
    clock.run(fleet.run(), virtual=True)
    survivors = sorted(set(range(6)) - set(deaths))
    done_by = {i: fleet.workload.cores[i].iterations_done for i in survivors}
    for i in survivors:
        core = fleet.workload.cores[i]
        assert core.ring == survivors, (i, core.ring, survivors)
    if survivors:
        assert min(done_by.values()) > max(deaths.values(), default=0) // 2


def test_killing_the_fedavg_server_elects_the_next_within_a_few_rounds() -> None:
    """Agent 0 dies at round 10: its clients go unasked, beat, hear nothing, and agent 1
    takes over; it aggregates every round from then on, and the run completes."""

    def on_round(row: dict) -> None:
        if row["round"] == 10:
            fleet.agents[0].crash("test")

    fleet = Fleet(load("sybil-fedavg", **{"sybil.count": 0}), on_round=on_round)
    summary = clock.run(fleet.run(), virtual=True)
    results = summary["results"]
    new = fleet.workload.cores[1]
    assert summary["complete"] and results["elections"] == 1
    assert new.is_aggregator and new._round == 29
    # 20 rounds after the death: lost at most the probe and election ticks, and one more.
    assert new.rounds_applied >= 20 - (PROBE_AFTER + ELECTION_AFTER + 1)
    assert all(c.aggregator == 1 for i, c in fleet.workload.cores.items() if i != 0)
    assert results["global_accuracy"] > 0.85


def test_a_live_fedavg_server_is_never_replaced() -> None:
    summary = run_scenario(load("lab", **{"run.rounds": 200, "sybil.count": 0}))
    assert summary["results"]["elections"] == 0


def test_a_repaired_fedavg_server_steps_down_to_the_one_elected_meanwhile() -> None:
    keys = {
        "sybil.count": 0,
        "run.rounds": 80,
        "faults.process": "exponential",
        "faults.mtbf_scale": 15 / 1.8e8,  # GPUs fail every 15 s on average
        "faults.repair_s": 4.0,
    }
    fleet = Fleet(load("sybil-fedavg", **keys))
    summary = clock.run(fleet.run(), virtual=True)
    results = summary["results"]
    assert summary["complete"] and results["elections"] >= 1
    servers = {c.aggregator for c in fleet.workload.cores.values()}
    assert len(servers) <= 2  # one server, and at most a member not yet told of it
    assert results["global_accuracy"] > 0.5


def test_time_to_accuracy_is_the_first_row_at_the_target() -> None:
    rows: list[dict] = []
    keys = {"run.rounds": 60, "sybil.count": 0, "learn.target_accuracy": 0.9}
    fleet = Fleet(load("lab", **keys), on_round=rows.append)
    results = clock.run(fleet.run(), virtual=True)["results"]
    first = next(r["time"] for r in rows if r["accuracy"] >= 0.9)
    assert results["time_to_accuracy"] == first and results["target_accuracy"] == 0.9
    never = run_scenario(load("lab", **{**keys, "learn.target_accuracy": 1.0}))["results"]
    assert never["time_to_accuracy"] is None
    assert "time_to_accuracy" not in run_scenario(load("lab", **{"run.rounds": 5}))["results"]


def test_fedavg_counts_the_updates_that_come_too_late() -> None:
    """Slow links: updates cross the next round's start and are counted, not lost silently."""
    keys = {"sybil.count": 0, "run.rounds": 20, "network.latency": 0.6}
    results = run_scenario(load("lab", **keys))["results"]
    assert results["late_updates"] > 0
    assert (
        run_scenario(load("lab", **{"sybil.count": 0, "run.rounds": 20}))["results"]["late_updates"]
        == 0
    )


def test_backup_workers_ask_more_and_aggregate_the_first_arrivals() -> None:
    """backup = 3: each round asks 3 clients more than fraction_fit needs and applies the
    step once the needed updates are in; the 3 that come after are counted as late."""
    keys = {"sybil.count": 0, "run.rounds": 20}
    plain = run_scenario(load("lab", **keys))["results"]
    backed = run_scenario(load("lab", **{**keys, "learn.backup": 3}))["results"]
    assert plain["late_updates"] == 0
    assert backed["late_updates"] == 3 * backed["aggregations"] == 60
    assert backed["global_accuracy"] > 0.85


def test_killing_the_async_server_elects_the_next_and_learning_goes_on() -> None:
    """Before, clients waited for a dead server forever and accuracy froze where it died."""
    keys = {
        "run.rounds": 60,
        "run.stop_when_done": False,
        "fleet.count": 20,
        "fleet.mix": {"gpu": 1.0},
        "fleet.workload": "learn",
        "learn.strategy": "async",
        "learn.dataset": "digits",
    }

    def on_round(row: dict) -> None:
        if row["round"] == 10:
            at_death.append(row["accuracy"])
            fleet.agents[0].crash("test")

    at_death: list[float] = []
    fleet = Fleet(load("fleet", **keys), on_round=on_round)
    results = clock.run(fleet.run(), virtual=True)["results"]
    assert results["elections"] == 1
    assert all(c.server == 1 for i, c in fleet.workload.cores.items() if i != 0)
    assert fleet.workload.cores[1].version > 0  # the new server applied updates
    assert results["global_accuracy"] > at_death[0] + 0.03


def test_energy_per_useful_outcome_is_the_energy_over_the_outcome() -> None:
    learn = run_scenario(load("lab", **{"run.rounds": 30, "sybil.count": 0}))["results"]
    assert learn["accuracy_gain_points"] > 50  # from chance to a trained model
    assert learn["joules_per_accuracy_point"] == pytest.approx(
        learn["energy_j"]["total"] / learn["accuracy_gain_points"]
    )
    mesh = run_scenario(load("tiny-pioneer", **{"run.rounds": 30}))["results"]
    assert mesh["readings_reached"] > 0
    assert mesh["joules_per_reading_reached"] == pytest.approx(
        mesh["energy_j"]["total"] / mesh["readings_reached"]
    )
