"""FedAvg says which model it measures: the fleet's mean, and the global model beside it."""

from __future__ import annotations

from swarm.run.runner import run_scenario
from swarm.scenario import from_dict


def _results(strategy: str, count: int = 60, rounds: int = 4) -> dict:
    scenario = from_dict(
        {
            "run": {"rounds": rounds, "seed": 2},
            "fleet": {"count": count, "workload": "learn"},
            "learn": {"strategy": strategy},
        }
    )
    return run_scenario(scenario)["results"]


def test_fedavg_reports_the_global_models_accuracy_beside_the_fleet_mean() -> None:
    results = _results("fedavg")
    # Clients not picked lately hold stale local models that pull the mean down; the
    # server's global model is what FedAvg delivers, and it is ahead of that mean.
    assert results["global_accuracy"] > results["accuracy"] + 0.02
    assert results["accuracy_spread"][0] <= results["accuracy"] <= results["accuracy_spread"][1]


def test_gossip_has_no_global_model_to_report() -> None:
    assert "global_accuracy" not in _results("gossip", count=20)
