"""The numpy learner computes what the scikit-learn adapter computes, only faster."""

from __future__ import annotations

import numpy as np
import pytest

from swarm.run.runner import run_scenario
from swarm.scenario import from_dict
from swarm.workloads.learn import linear
from swarm.workloads.learn.datasets import DATASETS, load
from swarm.workloads.learn.learner import MODELS, LocalLearner, make_learner
from swarm.workloads.learn.linear import LinearLearner


@pytest.mark.parametrize("name", DATASETS)
def test_same_parameters_as_scikit_learn_to_rounding(name: str) -> None:
    data = load(name, seed=0)
    ours = LinearLearner(
        data.classes, data.n_features, np.random.default_rng(3), learning_rate=0.05
    )
    theirs = LocalLearner(
        data.classes, data.n_features, np.random.default_rng(3), learning_rate=0.05
    )
    assert ours.size == theirs.size and ours.n_outputs == theirs.n_outputs
    for start in range(0, 200, 20):  # a device's rounds: a few samples, many times
        X, y = data.X_train[start : start + 20], data.y_train[start : start + 20]
        assert ours.train(X, y, epochs=2) == theirs.train(X, y, epochs=2)
    np.testing.assert_allclose(ours.get_params(), theirs.get_params(), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(data.X_test), theirs.predict(data.X_test))


@pytest.mark.parametrize("name", DATASETS)
def test_the_same_accuracy_as_scikit_learn_trained_on_everything(name: str) -> None:
    data = load(name, seed=1)
    scores = []
    for model in MODELS:
        learner = make_learner(model, data.classes, data.n_features, np.random.default_rng(0))
        learner.train(data.X_train, data.y_train, epochs=5)
        scores.append(learner.accuracy(data.X_test, data.y_test))
    assert scores[0] == pytest.approx(scores[1], abs=0.01)
    assert scores[0] > 0.8  # and it learns: these datasets are easy for a linear model


def test_bad_parameters_and_data_are_refused_and_leave_the_model_alone() -> None:
    data = load("wine", seed=0)
    learner = LinearLearner(data.classes, data.n_features, np.random.default_rng(0))
    learner.train(data.X_train[:30], data.y_train[:30])
    before = learner.get_params()
    for bad in (before[:-1], np.full_like(before, np.nan), "weights", before.reshape(-1, 1)):
        with pytest.raises(ValueError):
            learner.set_params(bad)
    with pytest.raises(ValueError, match="not among"):
        learner.train(data.X_train[:3], np.array([7, 7, 7]))
    with pytest.raises(ValueError, match="shape"):
        learner.train(data.X_train[:3, :2], data.y_train[:3])
    np.testing.assert_array_equal(learner.get_params(), before)


@pytest.mark.parametrize(
    "options", [{"loss": "hinge"}, {"penalty": "l1"}, {"learning_rate": "optimal"}]
)
def test_what_it_does_not_compute_is_refused(options) -> None:
    with pytest.raises(ValueError, match="LinearLearner computes"):
        LinearLearner(np.arange(3), 4, np.random.default_rng(0), **options)
    with pytest.raises(ValueError, match="unknown model"):
        make_learner("forest", np.arange(3), 4, np.random.default_rng(0))


@pytest.mark.parametrize("strategy", ["gossip", "fedavg"])
def test_a_fleet_learns_the_same_with_either_model(strategy: str) -> None:
    results = []
    for model in MODELS:
        scenario = from_dict(
            {
                "run": {"rounds": 8, "seed": 4},
                "fleet": {"count": 20, "workload": "learn"},
                "learn": {"strategy": strategy, "model": model},
            }
        )
        results.append(run_scenario(scenario)["results"])
    assert results[0]["accuracy"] == pytest.approx(results[1]["accuracy"], abs=1e-9)


@pytest.mark.parametrize("name", ["digits", "breast_cancer"])
def test_a_long_pass_through_scikit_learn_equals_the_numpy_loop(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = load(name, seed=4)
    learners = [
        LinearLearner(data.classes, data.n_features, np.random.default_rng(5)) for _ in "ab"
    ]
    assert data.y_train.size * 5 >= linear.SKLEARN_PASS  # long enough for scikit-learn
    learners[0].train(data.X_train, data.y_train, epochs=5)
    monkeypatch.setattr(linear, "SKLEARN_PASS", 10**9)  # the numpy loop, for once
    learners[1].train(data.X_train, data.y_train, epochs=5)
    a, b = (x.get_params() for x in learners)
    assert np.abs(a).max() > 0.1
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["digits", "wine", "breast_cancer"])
def test_learners_trained_together_equal_learners_trained_alone(name: str) -> None:
    data = load(name, seed=6)
    alone, together, jobs = [], [], []
    for i, (size, epochs) in enumerate([(9, 1), (30, 2), (1, 3), (17, 1), (30, 1)]):
        X, y = data.X_train[3 * i : 3 * i + size], data.y_train[3 * i : 3 * i + size]
        one, other = (
            LinearLearner(data.classes, data.n_features, np.random.default_rng(i)) for _ in "ab"
        )
        one.train(X, y, epochs=epochs)
        alone.append(one)
        Xc, _, signs, order = other.plan(X, y, epochs)
        jobs.append((other, Xc, signs, order))
        together.append(other)
    linear.train_together(jobs)
    for one, other in zip(alone, together, strict=True):
        assert other.version == one.version == 1
        np.testing.assert_allclose(other.get_params(), one.get_params(), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="one job at a time"):
        linear.train_together([jobs[0], jobs[0]])


def test_a_blown_up_model_trains_on_without_overflow_warnings() -> None:
    """A model a poisoner scaled to 1e300 has margins far past exp's range; its steps are
    the limit, 0 or a full step, and nothing warns (RuntimeWarnings fail the suite)."""
    data = load("digits", seed=0)
    learner = LinearLearner(data.classes, data.n_features, np.random.default_rng(0))
    learner.train(data.X_train[:30], data.y_train[:30])
    learner.set_params(learner.get_params() * 1e300)
    learner.train(data.X_train[30:60], data.y_train[30:60])
    assert np.isfinite(learner.get_params()).all()
