"""A fleet's accuracies read out at once equal each learner's own `accuracy`."""

from __future__ import annotations

import numpy as np
import pytest

from swarm.workloads.learn import readout
from swarm.workloads.learn.datasets import load
from swarm.workloads.learn.learner import LocalLearner, make_learner
from swarm.workloads.learn.linear import LinearLearner


def _fleet(name: str, n: int) -> tuple[list, object]:
    data = load(name, seed=2)
    learners = []
    for i in range(n):
        model = "sklearn:SGDClassifier" if i % 5 == 4 else "linear"
        learner = make_learner(model, data.classes, data.n_features, np.random.default_rng(i))
        rows = slice(7 * i, 7 * i + 7 + i)  # shards of different sizes: different models
        learner.train(data.X_train[rows], data.y_train[rows], epochs=1 + i % 3)
        learners.append(learner)
    return learners, data


@pytest.mark.parametrize("name", ["digits", "breast_cancer", "wine"])
def test_batched_accuracies_equal_each_learners_own(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    learners, data = _fleet(name, 12)
    assert any(isinstance(x, LocalLearner) for x in learners)
    assert any(isinstance(x, LinearLearner) for x in learners)
    own = [x.accuracy(data.X_test, data.y_test) for x in learners]
    assert len(set(own)) > 1  # the learners differ, so a mix-up would show
    np.testing.assert_array_equal(readout.accuracies(learners, data.X_test, data.y_test), own)
    monkeypatch.setattr(readout, "CHUNK_VALUES", 1)  # one learner per product
    np.testing.assert_array_equal(readout.accuracies(learners, data.X_test, data.y_test), own)


def test_bad_test_data_is_a_clear_error() -> None:
    learners, data = _fleet("wine", 3)
    with pytest.raises(ValueError, match="not among"):
        readout.accuracies(learners, data.X_test, np.full(data.y_test.shape, 99))
    with pytest.raises(ValueError, match="at least one sample"):
        readout.accuracies(learners, data.X_test[:0], data.y_test[:0])
    assert readout.accuracies([], data.X_test, data.y_test).shape == (0,)


def test_a_readout_rescored_only_what_changed() -> None:
    learners, data = _fleet("digits", 6)
    reader = readout.Readout(data.X_test, data.y_test)
    first = reader.accuracies(learners)
    np.testing.assert_array_equal(first, [x.accuracy(data.X_test, data.y_test) for x in learners])
    # Train one learner hard, reset another to zeros: both scores must move, no others.
    learners[1].train(data.X_train, data.y_train, epochs=3)
    learners[2].set_params(np.zeros(learners[2].size))
    again = reader.accuracies(learners)
    own = [x.accuracy(data.X_test, data.y_test) for x in learners]
    np.testing.assert_array_equal(again, own)
    assert again[1] != first[1] and again[2] != first[2]
