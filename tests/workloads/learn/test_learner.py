"""Tests for swarm.workloads.learn.learner: accuracy, parameter vectors, averaging, baselines."""

import numpy as np
import pytest

from swarm.workloads.learn.datasets import load
from swarm.workloads.learn.learner import LocalLearner, average, centralized_baseline


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def fresh(ds, seed: int = 0, **options) -> LocalLearner:
    return LocalLearner(ds.classes, ds.n_features, rng(seed), **options)


@pytest.fixture(scope="module")
def trained(digits):
    learner = fresh(digits)
    assert learner.train(digits.X_train, digits.y_train, epochs=5) == 5 * digits.y_train.size
    return learner


def test_trained_on_all_of_digits(digits, trained):
    # Measured 0.949 (0.936-0.958 over seeds 0-9).
    assert trained.accuracy(digits.X_test, digits.y_test) >= 0.90


def test_centralized_baseline(digits):
    assert centralized_baseline(digits, 5, rng(1)) >= 0.90  # measured 0.958


def test_fresh_learner_is_zero_and_usable(digits):
    learner = fresh(digits)
    assert learner.size == 10 * 64 + 10
    assert learner.n_outputs == 10
    params = learner.get_params()
    assert params.dtype == np.float64 and params.shape == (650,)
    assert not params.any()
    assert learner.predict(digits.X_test).shape == digits.y_test.shape
    assert learner.flops_per_sample() == 6.0 * 650


def test_two_classes_use_one_row():
    ds = load("breast_cancer")
    learner = fresh(ds)
    assert (learner.n_outputs, learner.size) == (1, 31)
    learner.train(ds.X_train, ds.y_train, epochs=3)
    assert learner.accuracy(ds.X_test, ds.y_test) >= 0.90  # measured 0.958


def test_params_round_trip_and_transplant(digits, trained):
    params = trained.get_params()
    params[0] += 1.0  # a copy: changing it leaves the model alone
    assert not np.array_equal(trained.get_params(), params)
    other = fresh(digits, seed=9)
    other.set_params(trained.get_params())
    assert np.array_equal(other.get_params(), trained.get_params())
    assert np.array_equal(other.predict(digits.X_test), trained.predict(digits.X_test))


@pytest.mark.parametrize(
    ("vector", "match"),
    [
        (np.zeros(649), "expected 650 parameters"),
        (np.zeros((10, 65)), "expected 650 parameters"),
        (np.full(650, np.nan), "650 of 650 are NaN or inf"),
        (np.r_[np.zeros(649), np.inf], "1 of 650 are NaN or inf"),
        (["a"] * 650, "parameters must be numbers"),
    ],
)
def test_set_params_rejects(digits, trained, vector, match):
    learner = fresh(digits)
    learner.set_params(trained.get_params())
    with pytest.raises(ValueError, match=match):
        learner.set_params(vector)
    assert np.array_equal(learner.get_params(), trained.get_params())


def test_same_seed_same_model(digits):
    a, b = fresh(digits, seed=3), fresh(digits, seed=3)
    a.train(digits.X_train, digits.y_train, epochs=2)
    b.train(digits.X_train, digits.y_train, epochs=2)
    assert np.array_equal(a.get_params(), b.get_params())
    assert np.array_equal(average([a.get_params(), b.get_params()]), a.get_params())


def test_batch_size_does_not_change_the_update(digits):
    a, b = fresh(digits), fresh(digits)
    a.train(digits.X_train, digits.y_train, epochs=2, rng=rng(4))
    b.train(digits.X_train, digits.y_train, epochs=2, batch_size=32, rng=rng(4))
    assert np.array_equal(a.get_params(), b.get_params())


def test_shard_with_two_classes_still_predicts_all(digits, trained):
    mask = np.isin(digits.y_train, [3, 7])
    learner = fresh(digits)
    learner.train(digits.X_train[mask], digits.y_train[mask], epochs=2, batch_size=16)
    assert learner.size == trained.size
    predicted = learner.predict(digits.X_test)
    assert predicted.shape == digits.y_test.shape
    assert set(np.unique(predicted)) <= set(digits.classes.tolist())
    learner.set_params(trained.get_params())  # a fleet model covers the other classes
    assert set(np.unique(learner.predict(digits.X_test))) == set(range(10))
    learner.train(digits.X_train[mask], digits.y_train[mask])  # and training goes on
    assert learner.accuracy(digits.X_test, digits.y_test) > 0.5


def test_train_edge_cases(digits):
    learner = fresh(digits)
    assert learner.train(digits.X_train, digits.y_train, epochs=0) == 0
    assert learner.train(digits.X_train[:0], digits.y_train[:0]) == 0
    assert not learner.get_params().any()
    with pytest.raises(ValueError, match="not among"):
        learner.train(digits.X_train[:2], np.array([0, 10]))
    with pytest.raises(ValueError, match=r"shape \(n, 64\)"):
        learner.train(digits.X_train[:, :5], digits.y_train)
    with pytest.raises(ValueError, match="epochs"):
        learner.train(digits.X_train, digits.y_train, epochs=-1)
    with pytest.raises(ValueError, match="batch_size"):
        learner.train(digits.X_train, digits.y_train, batch_size=0)
    with pytest.raises(ValueError, match="at least one sample"):
        learner.accuracy(digits.X_test[:0], digits.y_test[:0])


def test_options(digits):
    learner = fresh(digits, learning_rate=0.05, alpha=1e-3)
    learner.train(digits.X_train, digits.y_train)
    assert learner.accuracy(digits.X_test, digits.y_test) >= 0.85
    with pytest.raises(ValueError, match="random_state"):
        fresh(digits, random_state=1)
    with pytest.raises(ValueError, match="at least 2 classes"):
        LocalLearner(np.array([1]), 3, rng())


def test_average():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])
    assert average([a, b]).tolist() == [2.0, 2.0, 2.0]
    assert np.allclose(average([a, b], weights=[3, 1]), [1.5, 2.0, 2.5])
    assert np.array_equal(average([a, a], weights=[1, 1]), a)
    assert np.array_equal(average([a]), a)
    with pytest.raises(ValueError, match="at least one"):
        average([])
    with pytest.raises(ValueError, match="equally long"):
        average([a, a[:2]])
    with pytest.raises(ValueError, match="expected 2 weights"):
        average([a, b], weights=[1.0])
    with pytest.raises(ValueError, match="not all zero"):
        average([a, b], weights=[0, 0])
    with pytest.raises(ValueError, match=">= 0"):
        average([a, b], weights=[-1, 2])
