"""Tests for swarm.protocols.consensus.ensemble: real scikit-learn learners trained on real
data vote, and `evaluate` sets their measured accuracy beside the binomial laws.

Real learners err on the same hard samples, so the error correlation is positive; the
gap between measured majority accuracy and the law is reported, not asserted.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from swarm.protocols.consensus.ensemble import (
    DEFAULT_MEMBERS,
    LEARNERS,
    RULES,
    Ensemble,
    error_correlation,
    evaluate,
)
from swarm.protocols.consensus.voting import NO_DECISION, VotingError

BINARY_ONLY = ("mean_member_recall", "any_of_recall", "any_of_law", "any_of_false_alarm_rate")
KEYS = {
    "k",
    "members",
    "mean_member_accuracy",
    "majority",
    "majority_law",
    "quorum_level",
    "quorum",
    "quorum_no_decision",
    "quorum_law",
    "error_correlation",
    *BINARY_ONLY,
}


def _split(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """A fixed stratified-enough split, standardised on the training part."""
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(0.6 * len(y))
    train, test = order[:cut], order[cut:]
    mean, std = X[train].mean(axis=0), X[train].std(axis=0)
    std[std == 0] = 1.0
    return (X[train] - mean) / std, y[train], (X[test] - mean) / std, y[test]


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    return _split(X, 1 - y, seed=0)  # positive (1) = malignant: the event to detect


@pytest.fixture(scope="module")
def fitted(cancer) -> Ensemble:
    X, y, _, _ = cancer
    return Ensemble.fit(X, y, seed=0)


@pytest.fixture(scope="module")
def report(fitted, cancer) -> dict:
    _, _, X, y = cancer
    return evaluate(fitted, X, y)


def test_evaluate_reports_every_key_as_json(report: dict) -> None:
    assert set(report) == KEYS
    assert json.loads(json.dumps(report)) == report
    assert list(report["members"]) == list(DEFAULT_MEMBERS)
    assert report["k"] == len(DEFAULT_MEMBERS)


def test_members_are_sane_and_the_vote_beats_the_worst(report: dict) -> None:
    members = report["members"]
    assert min(members.values()) > 0.85
    assert report["mean_member_accuracy"] == pytest.approx(np.mean(list(members.values())))
    assert report["majority"] >= min(members.values())
    assert 0.0 <= report["majority_law"] <= 1.0


def test_real_learners_err_together(report: dict) -> None:
    # Positive error correlation is what keeps measured majority below the law; how far
    # below depends on the split, so only the cause is asserted.
    assert report["error_correlation"] > 0.0


def test_any_of_catches_what_any_member_catches(fitted: Ensemble, cancer, report: dict) -> None:
    _, _, X, y = cancer
    recalls = [np.mean(v[y == 1] == 1) for v in fitted.votes(X)]
    assert report["any_of_recall"] >= max(recalls)
    assert report["mean_member_recall"] == pytest.approx(np.mean(recalls))
    assert 0.0 <= report["any_of_false_alarm_rate"] <= 1.0
    assert report["any_of_law"] >= report["mean_member_recall"]


def test_quorum_shares_add_up(report: dict) -> None:
    assert report["quorum_level"] == 0.6
    assert 0.0 <= report["quorum_no_decision"] <= 1.0
    assert report["quorum"] + report["quorum_no_decision"] <= 1.0 + 1e-12
    assert report["quorum"] <= report["majority"] + 1e-12


def test_votes_and_predictions(fitted: Ensemble, cancer) -> None:
    _, _, X, y = cancer
    votes = fitted.votes(X)
    assert votes.shape == (len(fitted), len(y))
    assert votes.dtype == np.int64
    for rule in RULES:
        labels = fitted.predict(X, rule=rule)
        assert labels.shape == (len(y),)
        assert set(np.unique(labels).tolist()) <= {0, 1, NO_DECISION}
    # Weight on one member alone makes the ensemble that member.
    only_first = fitted.predict(X, rule="weighted", weights=[1.0, 0, 0, 0, 0])
    assert np.array_equal(only_first, votes[0])
    unanimous = fitted.predict(X, rule="quorum", level=1.0)
    agree = (votes == votes[0]).all(axis=0)
    assert np.array_equal(unanimous[agree], votes[0][agree])
    assert (unanimous[~agree] == NO_DECISION).all()


def test_fit_is_reproducible(cancer, fitted: Ensemble) -> None:
    X, y, X_test, _ = cancer
    again = Ensemble.fit(X, y, seed=0)
    assert np.array_equal(again.votes(X_test), fitted.votes(X_test))


def test_every_learner_can_join(cancer) -> None:
    X, y, X_test, y_test = cancer
    assert set(LEARNERS) >= {"logistic", "tree", "knn", "naive-bayes", "forest", "mlp"}
    solo = Ensemble.fit(X, y, names=["mlp"], seed=1)
    assert len(solo) == 1
    result = evaluate(solo, X_test, y_test)
    assert result["error_correlation"] is None  # no pair to correlate
    assert result["majority"] == result["members"]["mlp"] > 0.85


def test_multi_class_leaves_binary_keys_empty() -> None:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X_train, y_train, X_test, y_test = _split(X[:600], y[:600], seed=1)
    ensemble = Ensemble.fit(X_train, y_train, names=("logistic", "knn", "naive-bayes"), seed=2)
    result = evaluate(ensemble, X_test, y_test)
    assert set(result) == KEYS
    assert all(result[key] is None for key in BINARY_ONLY)
    assert result["majority"] >= min(result["members"].values())
    with pytest.raises(VotingError, match="0/1"):
        ensemble.predict(X_test, rule="any-of")


def test_error_correlation() -> None:
    same = np.array([[1, 0, 1, 0], [1, 0, 1, 0]], dtype=bool)
    assert error_correlation(same) == pytest.approx(1.0)
    opposite = np.array([[1, 0, 1, 0], [0, 1, 0, 1]], dtype=bool)
    assert error_correlation(opposite) == pytest.approx(-1.0)
    # A member that never errs has no correlation with anyone.
    assert error_correlation(np.array([[0, 0, 0], [1, 0, 1]], dtype=bool)) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"names": ()}, "at least 1 member"),
        ({"names": ("logistic", "svm")}, "'svm'.*allowed names are logistic, tree"),
        ({"y": np.zeros(6, dtype=int)}, "single class"),
        ({"y": np.array([0, 1, 0, 1, 0])}, "shape"),
        ({"y": np.array([0, 1, 0, 1, 0, -1])}, ">= 0"),
        ({"y": np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])}, "int labels"),
        ({"X": np.zeros(6)}, "2-D"),
        ({"X": np.full((6, 2), np.nan)}, "finite"),
    ],
)
def test_fit_refuses_bad_input(kwargs: dict, message: str) -> None:
    args = {"X": np.arange(12.0).reshape(6, 2), "y": np.array([0, 1, 0, 1, 0, 1]), **kwargs}
    with pytest.raises(ValueError, match=message):
        Ensemble.fit(**args)


def test_predict_refuses_bad_input(fitted: Ensemble, cancer) -> None:
    _, _, X, _ = cancer
    with pytest.raises(ValueError, match="allowed rules are majority"):
        fitted.predict(X, rule="unanimous")
    with pytest.raises(ValueError, match=r"shape \(M, 30\)"):
        fitted.votes(X[:, :5])
    with pytest.raises(VotingError, match="weights"):
        fitted.predict(X, rule="weighted", weights=[1.0, 1.0])
