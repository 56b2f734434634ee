"""The checks every learner makes of what it is given: classes, parameters, data.

A learner takes peers' parameter vectors and devices' data, so each answers garbage with
a ValueError naming what is off, and leaves its model untouched.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "Shard",
    "check_data",
    "check_features",
    "check_setup",
    "check_shard",
    "check_training",
    "check_vector",
    "score",
]


def check_setup(classes: np.ndarray, n_features: int) -> tuple[np.ndarray, int]:
    """The sorted distinct classes and the feature count, or ValueError saying what is off."""
    distinct = np.unique(np.asarray(classes))
    if distinct.size < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {distinct.size}")
    if isinstance(n_features, bool) or not isinstance(n_features, int | np.integer):
        raise ValueError(f"n_features must be an int, got {n_features!r}")
    if n_features < 1:
        raise ValueError(f"n_features must be >= 1, got {n_features}")
    return distinct, int(n_features)


def check_vector(vector: object, size: int) -> np.ndarray:
    """A float64 copy of a parameter vector, if it is finite, 1-D and `size` long."""
    try:
        v = np.array(vector, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"parameters must be numbers, got {type(vector).__name__}") from None
    if v.ndim != 1 or v.size != size:
        raise ValueError(f"expected {size} parameters as a 1-D vector, got shape {v.shape}")
    if not np.isfinite(v).all():
        bad = int(np.count_nonzero(~np.isfinite(v)))
        raise ValueError(f"parameters must be finite; {bad} of {v.size} are NaN or inf")
    return v


def check_features(X: object, n_features: int) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"X must have shape (n, {n_features}), got {X.shape}")
    return X


def check_data(
    X: object, y: object, n_features: int, classes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Samples and labels a learner over `classes` can take, or ValueError."""
    X, y = check_features(X, n_features), np.asarray(y)
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
    # `classes` is sorted (check_setup): a binary search per label is ten times cheaper
    # than a set difference, and this runs on every local step of every agent.
    try:
        at = np.searchsorted(classes, y).clip(0, classes.size - 1)
    except TypeError:  # labels that do not even compare with the classes (None, objects)
        raise ValueError(f"labels must be among {classes.tolist()}, got {y.dtype} values") from None
    known = classes[at] == y
    if not known.all():
        unknown = np.unique(y[~known])
        raise ValueError(f"labels {unknown.tolist()} are not among {classes.tolist()}")
    return X, y


Shard = tuple[np.ndarray, np.ndarray, np.ndarray]  # checked X, y, and what a learner derives


def check_shard(
    last: Shard | None,
    X: np.ndarray,
    y: np.ndarray,
    n_features: int,
    classes: np.ndarray,
    derive: Callable[[np.ndarray], np.ndarray],
) -> tuple[Shard, Shard | None]:
    """(X, y) checked, with `derive(y)` beside them, and what to remember for next time.

    A device trains on the same shard every round, and checking it again each time cost
    more than the step: a read-only (X, y) that passed unchanged is remembered (`last`)
    and, when the very same arrays come back, not checked again.
    """
    if last is not None and last[0] is X and last[1] is y:
        return last, last
    Xc, yc = check_data(X, y, n_features, classes)
    checked = (Xc, yc, derive(yc))
    frozen = isinstance(X, np.ndarray) and isinstance(y, np.ndarray)
    if frozen and Xc is X and yc is y and not (X.flags.writeable or y.flags.writeable):
        return checked, checked  # nobody can change it behind our back
    return checked, last


def check_training(epochs: object, batch_size: object) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 0:
        raise ValueError(f"epochs must be an int >= 0, got {epochs!r}")
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ValueError(f"batch_size must be None or >= 1, got {batch_size!r}")


def score(predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, y: np.ndarray) -> float:
    """Share of samples (checked ones) whose class `predict` gets right."""
    if y.shape[0] == 0:
        raise ValueError("accuracy needs at least one sample")
    return float(np.mean(predict(X) == y))
