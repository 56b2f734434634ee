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

__all__ = ["accuracies"]

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


def _linear_scores(learners: Sequence[LinearLearner], X: np.ndarray, y: np.ndarray) -> np.ndarray:
    coef = np.stack([learner.coef for learner in learners])  # (agents, rows, features)
    intercept = np.stack([learner.intercept for learner in learners])
    scores = np.matmul(X, coef.transpose(0, 2, 1)) + intercept[:, None, :]  # (agents, n, rows)
    classes = learners[0].classes
    if coef.shape[1] == 1:
        predicted = classes[(scores[:, :, 0] > 0).astype(np.intp)]
    else:
        predicted = classes[np.argmax(scores, axis=2)]
    return np.count_nonzero(predicted == y, axis=1) / y.shape[0]
