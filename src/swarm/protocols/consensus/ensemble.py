"""Compound capability with real learners: K different scikit-learn models vote.

The binomial laws in `swarm.protocols.consensus.voting` assume independent errors. Real learners
trained on the same data err on the same hard samples, so `evaluate` puts the measured
accuracy of each rule beside its law and reports the members' error correlation, the
number that explains the gap.

scikit-learn is imported when a learner is built, not when this module is: importing it
is slow, and most commands never train.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

from swarm.protocols.consensus import voting

__all__ = ["DEFAULT_MEMBERS", "LEARNERS", "RULES", "Ensemble", "error_correlation", "evaluate"]

DEFAULT_MEMBERS = ("logistic", "tree", "knn", "naive-bayes", "forest")
RULES = ("majority", "quorum", "any-of", "weighted")
QUORUM_LEVEL = 0.6  # the level `evaluate` measures the quorum rule at


def _logistic(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000, random_state=seed)


def _tree(seed: int) -> Any:
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(max_depth=5, random_state=seed)


def _knn(seed: int) -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=5)


def _naive_bayes(seed: int) -> Any:
    from sklearn.naive_bayes import GaussianNB

    return GaussianNB()


def _forest(seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=20, max_depth=6, n_jobs=1, random_state=seed)


def _mlp(seed: int) -> Any:
    from sklearn.neural_network import MLPClassifier

    # A 10x larger step than Adam's default converges within max_iter on small datasets.
    return MLPClassifier(
        hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=300, random_state=seed
    )


# name -> factory(seed) building an unfitted classifier; seeds make every fit reproducible.
LEARNERS: dict[str, Callable[[int], Any]] = {
    "logistic": _logistic,
    "tree": _tree,
    "knn": _knn,
    "naive-bayes": _naive_bayes,
    "forest": _forest,
    "mlp": _mlp,
}


class Ensemble:
    """Fitted members that vote; build one with `Ensemble.fit`."""

    def __init__(self, names: Sequence[str], models: Sequence[Any], accuracy: Sequence[float]):
        if not names or len(names) != len(models) or len(names) != len(accuracy):
            raise ValueError("an ensemble needs one model and one accuracy per member name")
        self.names = tuple(names)
        self.models = tuple(models)
        # Training accuracy: the default weights of the "weighted" rule.
        self.train_accuracy = np.asarray(accuracy, dtype=np.float64)
        self.n_features = int(models[0].n_features_in_)

    @classmethod
    def fit(
        cls, X: object, y: object, names: Sequence[str] = DEFAULT_MEMBERS, seed: int = 0
    ) -> Ensemble:
        """Train one member per name on (X, y); member i gets its own seed from `seed`."""
        X, y = _data(X, y)
        names = _names(names)
        if np.unique(y).size < 2:
            raise ValueError("y holds a single class: an ensemble needs at least 2 to learn")
        seeds = np.random.SeedSequence(seed).generate_state(len(names))
        models = []
        for name, s in zip(names, seeds, strict=True):
            model = LEARNERS[name](int(s))
            model.fit(X, y)
            models.append(model)
        accuracy = [float(np.mean(m.predict(X) == y)) for m in models]
        return cls(names, models, accuracy)

    def __len__(self) -> int:
        return len(self.models)

    def votes(self, X: object) -> np.ndarray:
        """Each member's predicted labels: shape (K, M) for M samples."""
        X = self._features(X)
        return np.stack([np.asarray(m.predict(X), dtype=np.int64) for m in self.models])

    def predict(
        self,
        X: object,
        rule: str = "majority",
        level: float = QUORUM_LEVEL,
        weights: object = None,
    ) -> np.ndarray:
        """Labels decided by `rule`, one per sample (quorum may give NO_DECISION).

        "weighted" uses `weights` (one per member) or else each member's training accuracy;
        "any-of" needs 0/1 labels.
        """
        votes = self.votes(X)
        if rule == "majority":
            return _per_sample(voting.majority(votes))
        if rule == "quorum":
            return _per_sample(voting.quorum(votes, level))
        if rule == "any-of":
            return _per_sample(voting.any_of(votes))
        if rule == "weighted":
            weights = self.train_accuracy if weights is None else weights
            return _per_sample(voting.weighted(votes, weights))
        raise ValueError(f"rule = {rule!r}: allowed rules are {', '.join(RULES)}")

    def _features(self, X: object) -> np.ndarray:
        a = np.asarray(X, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != self.n_features or a.shape[0] == 0:
            raise ValueError(f"X must have shape (M, {self.n_features}) with M >= 1, got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError("X must be finite (no NaN or inf)")
        return a


def evaluate(ensemble: Ensemble, X: object, y: object) -> dict[str, Any]:
    """Measured accuracy of each rule beside its binomial law, as JSON-ready numbers.

    p is the mean member accuracy and K the number of members. For 0/1 labels (positive =
    1) it adds any-of recall against `any_of_law(mean member recall, K)` and any-of's false
    alarm rate; for multi-class labels those keys are None, and `majority_law` is only the
    chance that a strict majority is right. Quorum counts NO_DECISION as wrong.
    """
    X, y = _data(X, y)
    votes = ensemble.votes(X)
    k = len(ensemble)
    right = votes == y
    members = {n: float(r.mean()) for n, r in zip(ensemble.names, right, strict=True)}
    p = float(np.mean(list(members.values())))
    decided = voting.quorum(votes, QUORUM_LEVEL)
    report: dict[str, Any] = {
        "k": k,
        "members": members,
        "mean_member_accuracy": p,
        "majority": float(np.mean(voting.majority(votes) == y)),
        "majority_law": voting.majority_law(p, k),
        "quorum_level": QUORUM_LEVEL,
        "quorum": float(np.mean(decided == y)),
        "quorum_no_decision": float(np.mean(decided == voting.NO_DECISION)),
        "quorum_law": voting.quorum_law(p, k, QUORUM_LEVEL),
        "error_correlation": error_correlation(~right),
        "mean_member_recall": None,
        "any_of_recall": None,
        "any_of_law": None,
        "any_of_false_alarm_rate": None,
    }
    if np.isin(y, (0, 1)).all() and np.isin(votes, (0, 1)).all():
        fired = _per_sample(voting.any_of(votes)) == 1
        positive = y == 1
        if positive.any():
            recall = float(np.mean(votes[:, positive] == 1))
            report["mean_member_recall"] = recall
            report["any_of_recall"] = float(fired[positive].mean())
            report["any_of_law"] = voting.any_of_law(recall, k)
        if (~positive).any():
            report["any_of_false_alarm_rate"] = float(fired[~positive].mean())
    return report


def error_correlation(errors: np.ndarray) -> float | None:
    """Mean pairwise Pearson correlation of members' error indicators, shape (K, M).

    0 means the members err independently, which is what the binomial laws assume; real
    learners trained on the same data stumble on the same hard samples, so it is
    positive, and then majority accuracy falls short of `majority_law`. Pairs in which a
    member never (or always) errs have no correlation and are left out; None if no pair
    is left.
    """
    e = np.asarray(errors, dtype=np.float64)
    centred = e - e.mean(axis=1, keepdims=True)
    norm = np.sqrt((centred**2).sum(axis=1))
    pairs = [
        float(centred[i] @ centred[j] / (norm[i] * norm[j]))
        for i, j in itertools.combinations(range(e.shape[0]), 2)
        if norm[i] > 0 and norm[j] > 0
    ]
    return math.fsum(pairs) / len(pairs) if pairs else None


def _names(names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    if not names:
        raise ValueError(f"an ensemble needs at least 1 member; choose from {', '.join(LEARNERS)}")
    unknown = [n for n in names if n not in LEARNERS]
    if unknown:
        raise ValueError(f"unknown learner {unknown[0]!r}: allowed names are {', '.join(LEARNERS)}")
    return names


def _per_sample(labels: int | np.ndarray) -> np.ndarray:
    """A voting rule's decisions on (K, M) votes, which are an array (one per sample).

    The rules return a bare int only for 1-D votes, and `Ensemble.votes` is always 2-D.
    """
    return cast(np.ndarray, labels)


def _data(X: object, y: object) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(X, dtype=np.float64)
    labels = np.asarray(y)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"X must be a 2-D array (samples, features), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("X must be finite (no NaN or inf)")
    if labels.shape != (a.shape[0],):
        raise ValueError(f"y must have shape ({a.shape[0]},), one label per row of X")
    if not np.issubdtype(labels.dtype, np.integer) or (labels < 0).any():
        raise ValueError("y must hold int labels >= 0, which is what the voting rules take")
    return a, labels.astype(np.int64)
