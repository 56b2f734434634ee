"""Sybil attacks end to end: what they cost a fleet, and what the defenses win back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from swarm.run.runner import run_scenario
from swarm.scenario import from_dict, load


def fedavg(aggregator: str, **sybil: Any) -> dict[str, Any]:
    data = load("sybil-fedavg", [f"learn.aggregator={aggregator}"]).to_dict()
    data["sybil"] |= sybil
    return run_scenario(from_dict(data))["results"]


def test_sign_flip_sybils_wreck_fedavg_and_a_robust_rule_keeps_the_clean_accuracy() -> None:
    attacked = fedavg("mean")
    attack = attacked["attack"]
    assert attack["behaviour"] == "sign-flip" and attack["admitted"] == 5
    clean = attack["clean"]["accuracy"]
    assert clean > 0.9
    assert attacked["accuracy"] < clean - 0.5  # the mean follows the Sybils backwards
    assert attack["accuracy_loss"] == pytest.approx(clean - attacked["accuracy"])
    assert "detection" not in attack  # the mean names nobody

    defended = fedavg("multi-krum")
    assert defended["accuracy"] > defended["attack"]["clean"]["accuracy"] - 0.03
    detection = defended["attack"]["detection"]
    assert detection["precision"] == 1.0 and detection["recall"] >= 0.8


def test_reputation_lets_a_coordinate_wise_rule_name_the_sybils() -> None:
    data = load("sybil-fedavg", ["learn.aggregator=median", "learn.reputation=true"]).to_dict()
    data["sybil"]["compare_clean"] = False
    attack = run_scenario(from_dict(data))["results"]["attack"]
    assert attack["detection"]["precision"] == 1.0 and attack["detection"]["recall"] == 1.0
    assert attack["ignored"] > 0  # updates from flagged identities were not even looked at
    assert "clean" not in attack


def test_a_rule_that_cannot_run_is_counted_not_crashed() -> None:
    # Bulyan needs 4f + 3 = 15 updates; about 12 arrive per round.
    data = load("sybil-fedavg", ["learn.aggregator=bulyan", "sybil.compare_clean=false"])
    results = run_scenario(data)["results"]
    assert results["attack"]["refused"] == data.run.rounds


def test_admission_control_keeps_most_sybils_out_of_a_short_run() -> None:
    data = load(
        "sybil-fedavg", ["sybil.admission_rate=0.1", "sybil.start=5", "sybil.compare_clean=false"]
    )
    attack = run_scenario(data)["results"]["attack"]
    # Run for 30 s, first identity admitted at t=5, then one every 10 s: 5, 15, 25.
    assert attack["admitted"] == 3
    assert attack["first_join"] == 5.0 and attack["last_join"] == 45.0


def test_label_flip_sybils_report_the_targeted_misclassification_rate() -> None:
    data = load(
        "sybil-fedavg",
        ["sybil.behaviour=label-flip", "sybil.count=12", "sybil.compare_clean=false"],
    )
    attack = run_scenario(data)["results"]["attack"]
    assert attack["source_class"] == 0 and attack["target_class"] == 1
    assert 0.0 <= attack["targeted_misclassification"] <= 1.0


def hazards(*overrides: str) -> dict[str, Any]:
    base = ["run.duration=200", "sybil.compare_clean=false"]
    return run_scenario(load("edge-guardian-sybil", [*base, *overrides]))["results"]


def test_fake_hazards_are_believed_without_voting_and_stopped_by_a_quorum() -> None:
    open_city = hazards()
    attack = open_city["attack"]
    assert attack["fake_hazards"] == 10
    assert attack["believed_per_fake"] > 50  # one Sybil fools much of the city
    guarded = hazards("hazards.voting=quorum")
    assert guarded["attack"]["fake_alarms_believed"] == 0
    assert guarded["reached_fraction"] > 0.5  # real hazards still get through
    # At the quorum, the Sybils are enough again: voting is no defense against many ids.
    outvoted = hazards("hazards.voting=quorum", "sybil.count=2")
    assert outvoted["attack"]["believed_per_fake"] > 50


def test_suppressing_sybils_outvote_honest_reporters_only_under_majority_voting() -> None:
    common = ("sybil.behaviour=suppress", "sybil.count=20")
    majority = hazards(*common, "hazards.voting=majority")
    quorum = hazards(*common, "hazards.voting=quorum")
    assert majority["reached_fraction"] < quorum["reached_fraction"] - 0.3


def test_an_eclipsed_agent_never_hears_the_rumor() -> None:
    data = load(
        "rumor",
        ["fleet.count=60", "sybil.count=3", "sybil.behaviour=eclipse", "gossip.protocol=push"],
    )
    data = from_dict(data.to_dict() | {"network": {"topology": "regular", "degree": 4}})
    results = run_scenario(data)["results"]
    assert results["attack"]["victim_informed_round"] is None
    clean = results["attack"]["clean"]
    assert clean["residue"] == 0.0 and results["residue"] == pytest.approx(1 / 60)


def test_a_flood_of_junk_rumors_costs_traffic_and_is_counted() -> None:
    data = load("rumor", ["fleet.count=50", "sybil.count=2", "sybil.behaviour=flood"])
    attack = run_scenario(data)["results"]["attack"]
    assert attack["sybil_messages_sent"] >= 2 * 20
    assert attack["clean"]["residue"] is not None


@pytest.mark.parametrize("name", ["sybil-fedavg", "edge-guardian-sybil"])
def test_attacked_runs_are_byte_identical_for_one_seed(name: str, tmp_path) -> None:
    data = load(name, ["sybil.compare_clean=false"]).to_dict()
    data["run"]["rounds"], data["run"]["duration"] = 12, 0.0
    summaries = []
    for copy in ("a", "b"):
        summaries.append(run_scenario(from_dict(data), out_dir=tmp_path / copy))
    first = (tmp_path / "a" / "metrics.jsonl").read_bytes()
    assert first and first == (tmp_path / "b" / "metrics.jsonl").read_bytes()
    attacks = [json.dumps(s["results"]["attack"], sort_keys=True) for s in summaries]
    assert attacks[0] == attacks[1]


def test_sybils_attack_over_mosquitto_with_their_own_client_ids(mosquitto) -> None:
    data = load("sybil-fedavg", ["sybil.compare_clean=false", "run.rounds=8"]).to_dict()
    data["gossip"] = {"period": 0.3}
    summary = run_scenario(from_dict(data), broker_url=mosquitto.url)
    attack = summary["results"]["attack"]
    assert attack["sybil_messages_sent"] > 0  # the Sybils were asked and answered
    assert summary["messages"]["dropped_spoofed"] == 0
    assert summary["results"]["accuracy"] < 0.8  # 0.90 without Sybils
