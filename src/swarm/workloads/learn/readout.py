"""Fleet read-outs: every agent's test accuracy at once, not one `predict` per agent.

A metrics row asks each learner of the fleet how it scores on the test set. One call
per learner costs a few dozen microseconds of numpy overhead around a tiny product; with
thousands of agents every round that overhead, not the arithmetic, was the bill. The
linear learners' weights are stacked instead, and scored in a few batched products.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from swarm.workloads.learn.checks import check_data
from swarm.workloads.learn.learner import Learner
from swarm.workloads.learn.linear import LinearLearner

__all__ = ["Readout", "accuracies"]

CHUNK_VALUES = 1 << 22  # scores held at once (32 MiB of float64), whatever the fleet size


def accuracies(learners: Sequence[Learner], X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The share of (X, y) each learner classifies right, in `learners`' order."""
    out = np.empty(len(learners))
    # Stacks need one shape: the linear learners are grouped by it (a fleet has one).
    groups: dict[tuple[int, ...], list[tuple[int, LinearLearner]]] = {}
    for i, learner in enumerate(learners):
        if isinstance(learner, LinearLearner):
            groups.setdefault(learner.coef.shape, []).append((i, learner))
        else:
            out[i] = learner.accuracy(X, y)
    for members in groups.values():
        first = members[0][1]
        Xc, yc = check_data(X, y, first.n_features, first.classes)
        if yc.shape[0] == 0:
            raise ValueError("accuracy needs at least one sample")
        per_chunk = max(1, CHUNK_VALUES // (Xc.shape[0] * first.n_outputs))
        for start in range(0, len(members), per_chunk):
            chunk = members[start : start + per_chunk]
            out[[i for i, _ in chunk]] = _linear_scores([m for _, m in chunk], Xc, yc)
    return out


class Readout:
    """`accuracies` on one test set, remembering each linear learner's last score.

    A learner whose parameters have not changed since it was last scored (its `version`
    is the same) keeps that score: in FedAvg most clients sit out most rounds.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray) -> None:
        self.X, self.y = X, y
        self._last: dict[int, tuple[LinearLearner, int, float]] = {}

    def accuracies(self, learners: Sequence[Learner]) -> np.ndarray:
        out = np.empty(len(learners))
        stale: list[int] = []
        for i, learner in enumerate(learners):
            seen = self._last.get(id(learner))
            if seen is not None and seen[0] is learner and seen[1] == seen[0].version:
                out[i] = seen[2]
            else:
                stale.append(i)
        if stale:
            fresh = accuracies([learners[i] for i in stale], self.X, self.y)
            out[stale] = fresh
            for i, score in zip(stale, fresh, strict=True):
                learner = learners[i]
                if isinstance(learner, LinearLearner):
                    self._last[id(learner)] = (learner, learner.version, float(score))
        return out


def _linear_scores(learners: Sequence[LinearLearner], X: np.ndarray, y: np.ndarray) -> np.ndarray:
    coef = np.stack([learner.coef for learner in learners])  # (agents, rows, features)
    agents, rows, features = coef.shape
    # One plain product (n, features) x (features, agents * rows): a single BLAS call,
    # twice as fast as a batched matmul of many small ones.
    scores = (X @ coef.reshape(agents * rows, features).T).reshape(X.shape[0], agents, rows)
    scores += np.stack([learner.intercept for learner in learners])
    classes = learners[0].classes
    if rows == 1:
        predicted = classes[(scores[:, :, 0] > 0).astype(np.intp)]
    else:
        predicted = classes[np.argmax(scores, axis=2)]  # (n, agents)
    return np.count_nonzero(predicted == y[:, None], axis=0) / y.shape[0]
