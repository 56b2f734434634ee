"""The mlp learner: as accurate as the linear one, safe against garbage, and big enough
for compression to show in a fleet's traffic."""

from __future__ import annotations

import numpy as np
import pytest

from swarm.run.runner import run_scenario
from swarm.scenario import from_dict
from swarm.workloads.learn.datasets import DATASETS, load
from swarm.workloads.learn.learner import make_learner
from swarm.workloads.learn.mlp import MLPLearner


def fleet(seed: int = 3, **learn: object) -> dict:
    scenario = from_dict(
        {
            "run": {"rounds": 6, "seed": seed},
            "fleet": {"count": 10, "workload": "learn"},
            "learn": {"model": "mlp", **learn},
        }
    )
    return run_scenario(scenario)["results"]


@pytest.mark.parametrize("name", DATASETS)
def test_as_accurate_as_the_linear_learner_trained_on_everything(name: str) -> None:
    data = load(name, seed=1)
    scores = {}
    for model in ("linear", "mlp"):
        learner = make_learner(model, data.classes, data.n_features, np.random.default_rng(0))
        assert learner.train(data.X_train, data.y_train, epochs=5) == 5 * data.y_train.size
        scores[model] = learner.accuracy(data.X_test, data.y_test)
    assert scores["mlp"] >= scores["linear"] - 0.01


def test_parameters_round_trip_and_every_learner_starts_alike() -> None:
    data = load("digits", seed=0)
    learner = MLPLearner(data.classes, data.n_features, np.random.default_rng(0), hidden=16)
    assert learner.size == 64 * 16 + 16 + 16 * 10 + 10
    assert learner.n_outputs == 10 and learner.flops_per_sample() == 6.0 * learner.size
    other = MLPLearner(data.classes, data.n_features, np.random.default_rng(99), hidden=16)
    np.testing.assert_array_equal(learner.get_params(), other.get_params())  # a common start
    learner.train(data.X_train, data.y_train, batch_size=8)
    trained = learner.get_params()
    assert trained.dtype == np.float64 and trained.shape == (learner.size,)
    other.set_params(trained)
    np.testing.assert_array_equal(other.get_params(), trained)
    np.testing.assert_array_equal(other.predict(data.X_test), learner.predict(data.X_test))
    trained[0] += 1.0  # a copy: changing it leaves the model alone
    assert other.get_params()[0] != trained[0]


def test_garbage_is_refused_and_leaves_the_model_alone() -> None:
    data = load("wine", seed=0)
    learner = MLPLearner(data.classes, data.n_features, np.random.default_rng(0))
    learner.train(data.X_train[:30], data.y_train[:30], batch_size=4)
    before, version = learner.get_params(), learner.version
    for bad in (before[:-1], np.full_like(before, np.nan), "weights", before.reshape(-1, 1)):
        with pytest.raises(ValueError, match="parameters"):
            learner.set_params(bad)
    with pytest.raises(ValueError, match="not among"):
        learner.train(data.X_train[:3], np.array([7, 7, 7]))
    with pytest.raises(ValueError, match="shape"):
        learner.train(data.X_train[:3, :2], data.y_train[:3])
    with pytest.raises(ValueError, match="epochs"):
        learner.train(data.X_train[:3], data.y_train[:3], epochs=-1)
    with pytest.raises(ValueError, match="batch_size"):
        learner.train(data.X_train[:3], data.y_train[:3], batch_size=0)
    np.testing.assert_array_equal(learner.get_params(), before)
    assert learner.version == version


def test_what_it_does_not_compute_is_refused() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="hidden"):
        MLPLearner(np.arange(3), 4, rng, hidden=0)
    with pytest.raises(ValueError, match="constant rate"):
        MLPLearner(np.arange(3), 4, rng, learning_rate="optimal")
    with pytest.raises(ValueError, match="loss"):
        MLPLearner(np.arange(3), 4, rng, loss="hinge")
    with pytest.raises(ValueError, match="hidden"):
        make_learner("linear", np.arange(3), 4, rng, hidden=8)


def test_a_gossip_fleet_of_mlps_learns_and_repeats_itself() -> None:
    first = fleet(learning_rate=0.05, batch_size=8)
    assert first["accuracy"] > 2 / 10  # twice chance on digits' ten classes
    assert first["parameters"] == 64 * 32 + 32 + 32 * 10 + 10
    assert fleet(learning_rate=0.05, batch_size=8) == first


def test_int8_cuts_an_mlps_traffic_fourfold() -> None:
    plain, int8 = (fleet(hidden=64, compression=mode) for mode in ("none", "int8"))
    assert plain["parameters"] == int8["parameters"] == 64 * 64 + 64 + 64 * 10 + 10 > 4000
    assert plain["update_bytes"] / int8["update_bytes"] == pytest.approx(4.0, rel=0.05)
