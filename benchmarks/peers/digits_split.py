"""The digits data as `swarm` prepares it, for the peer scripts.

`swarm` (src/swarm/workloads/learn/datasets.py) splits scikit-learn's digits 75/25,
stratified, with a split seed derived from the run seed, standardizes with statistics of
the training part only, and deals the training rows to agents IID (a random permutation
cut into near-equal parts). The peers get the same train/test split for a given seed, so
every side is scored on the same 450 test images. The IID shards are drawn the same way
but from a generator of their own (the exact shards differ; their distribution does not).

Only numpy and scikit-learn are needed, so both peer virtualenvs can import this file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__ = ["DigitsSplit", "iid_shards", "load_digits_split"]

SPLIT_TAG = 1  # swarm's entropy tag for the train/test split stream
SHARD_TAG = 7  # a tag of our own for dealing shards


@dataclass(frozen=True)
class DigitsSplit:
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        return int(np.unique(self.y_train).size)


@functools.lru_cache(maxsize=4)
def load_digits_split(seed: int = 1, test_fraction: float = 0.25) -> DigitsSplit:
    """Digits split and standardized exactly as `swarm run` does for `run.seed = seed`."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    state = int(np.random.SeedSequence([seed, SPLIT_TAG]).generate_state(1)[0])
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=test_fraction, stratify=y, random_state=state
    )
    scaler = StandardScaler().fit(X_tr)
    return DigitsSplit(
        X_train=np.asarray(scaler.transform(X_tr), dtype=np.float64),
        y_train=np.asarray(y_tr, dtype=np.int64),
        X_test=np.asarray(scaler.transform(X_te), dtype=np.float64),
        y_test=np.asarray(y_te, dtype=np.int64),
    )


def iid_shards(n_samples: int, n_parts: int, seed: int) -> list[np.ndarray]:
    """Sorted row indices per part: a random permutation cut into near-equal parts."""
    if not 1 <= n_parts <= n_samples:
        raise ValueError(f"need 1 <= parts <= {n_samples} samples, got {n_parts} parts")
    rng = np.random.default_rng(np.random.SeedSequence([seed, SHARD_TAG]))
    return [np.sort(p) for p in np.array_split(rng.permutation(n_samples), n_parts)]
