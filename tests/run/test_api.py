"""`swarm.run` and `swarm.sweep`: the Python face of one run and of a sweep."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import swarm
from swarm.scenario import ScenarioError, load


def test_swarm_run_is_swarm_run_scenario_with_keys_as_keywords() -> None:
    summary = swarm.run("rumor", seed=7, gossip__k=3, fleet__count=150)
    plain = swarm.run_scenario(load("rumor", ["gossip.k=3", "fleet.count=150", "run.seed=7"]))
    assert summary["results"] == plain["results"] and summary["seed"] == 7


def test_swarm_run_stays_callable_once_the_package_is_imported(tmp_path: Path) -> None:
    import swarm.run.runner  # binds the package swarm.run on swarm

    scenario = load("rumor", **{"fleet.count": 80})
    summary = swarm.run(scenario, seed=3, out_dir=tmp_path / "a", gossip__fanout=2)
    assert summary["seed"] == 3 and summary["scenario"]["gossip"]["fanout"] == 2
    assert (tmp_path / "a" / "summary.json").exists()


@pytest.mark.parametrize("bad", [{"gossip_fanout": 2}, {"gossip__": 2}, {"a__b__c": 1}])
def test_a_key_that_is_not_section__key_is_one_clear_error(bad) -> None:
    with pytest.raises(ScenarioError, match="section__key"):
        swarm.run("rumor", **bad)


def test_swarm_sweep_returns_a_row_per_run(tmp_path: Path) -> None:
    rows = swarm.sweep(
        "rumor", {"gossip.k": [1, 2]}, repeat=2, seed=5, out_dir=tmp_path, fleet__count=100
    )
    if importlib.util.find_spec("pandas") is not None:
        rows = rows.to_dict("records")
    assert [(r["gossip.k"], r["seed"], r["status"]) for r in rows] == [
        (1, 5, "ok"),
        (1, 6, "ok"),
        (2, 5, "ok"),
        (2, 6, "ok"),
    ]
    assert (tmp_path / "results.csv").exists() and (tmp_path / "summary.csv").exists()
    with pytest.raises(ScenarioError, match="non-empty list"):
        swarm.sweep("rumor", {"gossip.k": []})
