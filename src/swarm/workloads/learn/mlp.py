"""A small multi-layer perceptron in numpy: one ReLU hidden layer, a softmax output.

The linear learner has a few hundred parameters, too few for compression or bandwidth
to matter; with `hidden` units this model has n_features x hidden + hidden +
hidden x classes + classes, tens of thousands for a few hundred units. It keeps the
linear learner's interface (one flat float64 vector in and out, `train` returning the
samples processed, a `version` bumped on every change), so strategies, compression and
the read-out take it as they are. It is not batched across agents (`pool.py` and
`readout.py` batch `LinearLearner` only): it trains in minibatches, which numpy
vectorises well enough alone.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from swarm.workloads.learn.checks import (
    Shard,
    check_data,
    check_features,
    check_setup,
    check_shard,
    check_training,
    check_vector,
    score,
)
from swarm.workloads.learn.linear import _step_size

__all__ = ["ALPHA", "MLPLearner"]

ALPHA: Final = 1e-4  # L2 strength on the weights (not the biases), as the linear learner's
_OPTIONS: Final = frozenset({"learning_rate", "eta0"})


def _check_hidden(hidden: object) -> int:
    if isinstance(hidden, bool) or not isinstance(hidden, int | np.integer) or hidden < 1:
        raise ValueError(f"hidden must be an int >= 1, got {hidden!r}")
    return int(hidden)


def initial_params(n_features: int, hidden: int, n_classes: int) -> np.ndarray:
    """The starting vector of every learner of this shape: He-normal hidden weights (for
    the ReLU), Glorot-uniform output weights, zero biases.

    It is drawn from a generator seeded by the shape alone, not by an agent's stream:
    averaging two networks is only meaningful if their hidden units line up, and units
    of independently initialised networks do not (any permutation of them is the same
    function). Gossip learning and FedAvg both start every agent from one model.
    """
    rng = np.random.default_rng([n_features, hidden, n_classes])
    w1 = rng.normal(0.0, np.sqrt(2.0 / n_features), (n_features, hidden))
    limit = np.sqrt(6.0 / (hidden + n_classes))
    w2 = rng.uniform(-limit, limit, (hidden, n_classes))
    return np.concatenate([w1.ravel(), np.zeros(hidden), w2.ravel(), np.zeros(n_classes)])


class MLPLearner:
    """One hidden ReLU layer, softmax cross-entropy over all `classes`, L2 `ALPHA`, plain
    SGD at a constant step on shuffled minibatches (see the module).

    `options`: `learning_rate` ("constant", with the step in `eta0`, or the step itself),
    as for `LinearLearner`. Every learner of one shape starts from the same weights
    (`initial_params`); `rng` only shuffles, and one draw is taken from it at
    construction, as the linear learners take theirs, so an agent's stream is consumed
    the same way whatever its model.
    """

    def __init__(
        self,
        classes: np.ndarray,
        n_features: int,
        rng: np.random.Generator,
        hidden: int = 32,
        **options: Any,
    ) -> None:
        unknown = sorted(options.keys() - _OPTIONS)
        if unknown:
            raise ValueError(f"MLPLearner takes learning_rate and eta0, not {', '.join(unknown)}")
        rate = options.get("learning_rate", "constant")
        if isinstance(rate, bool) or not (rate == "constant" or isinstance(rate, int | float)):
            raise ValueError(f"MLPLearner steps at a constant rate, not {rate!r}")
        self.eta = _step_size(options)
        self.classes, self.n_features = check_setup(classes, n_features)
        self.hidden = _check_hidden(hidden)
        self.rng = rng
        rng.integers(2**31 - 1)  # the linear learners' seed draw: the streams line up
        k, f, h = self.classes.size, self.n_features, self.hidden
        # One flat vector, and views of it for the layers: get/set are one copy, and
        # the in-place SGD updates land in the vector.
        self._params = initial_params(f, h, k)
        ends = np.cumsum([f * h, h, h * k, k])
        self._w1 = self._params[: ends[0]].reshape(f, h)
        self._b1 = self._params[ends[0] : ends[1]]
        self._w2 = self._params[ends[1] : ends[2]].reshape(h, k)
        self._b2 = self._params[ends[2] :]
        # Counts changes to the parameters (set_params, train), as LinearLearner does.
        self.version = 0
        # The last read-only (X, y) checked, and the labels' class indices: a device
        # trains on the same shard every round, so it is checked once.
        self._shard: Shard | None = None

    @property
    def n_outputs(self) -> int:
        """Output units: one per class (softmax), two for two classes."""
        return int(self.classes.size)

    @property
    def size(self) -> int:
        return int(self._params.size)

    def get_params(self) -> np.ndarray:
        """A float64 copy of: hidden weights (n_features x hidden, row-major), hidden
        biases, output weights (hidden x classes), output biases."""
        return self._params.copy()

    def set_params(self, vector: np.ndarray) -> None:
        """Load a vector from `get_params`; ValueError if it is not a finite 1-D vector of
        `size` numbers, leaving the model untouched."""
        self._params[:] = check_vector(vector, self.size)
        self.version += 1

    def _checked(self, X: np.ndarray, y: np.ndarray) -> Shard:
        checked, self._shard = check_shard(
            self._shard, X, y, self.n_features, self.classes, self._label_indices
        )
        return checked

    def _label_indices(self, y: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.classes, y)

    def train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        epochs: int = 1,
        batch_size: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> int:
        """`epochs` shuffled passes of minibatch SGD over (X, y); the samples processed.

        Each step follows the gradient averaged over `batch_size` samples (None: one, as
        the linear learners step); the last minibatch of a pass may be shorter. The
        shuffle uses `rng`, or the learner's own generator.
        """
        check_training(epochs, batch_size)
        X, _, labels = self._checked(X, y)
        rng = self.rng if rng is None else rng
        n = X.shape[0]
        if n == 0 or epochs == 0:
            return 0
        batch = 1 if batch_size is None else min(batch_size, n)
        w1, b1, w2, b2 = self._w1, self._b1, self._w2, self._b2
        eta, decay = self.eta, 1.0 - self.eta * ALPHA
        for _ in range(epochs):
            order = rng.permutation(n)
            Xs, ts = X[order], labels[order]  # gathered once: minibatches are slices
            for start in range(0, n, batch):
                x, t = Xs[start : start + batch], ts[start : start + batch]
                z = x @ w1 + b1
                a = np.maximum(z, 0.0)
                out = a @ w2 + b2
                out -= out.max(axis=1, keepdims=True)
                np.exp(out, out=out)
                out /= out.sum(axis=1, keepdims=True)
                out[np.arange(t.size), t] -= 1.0  # d(cross-entropy)/d(logits), per sample
                out *= eta / t.size  # the step, averaged over the minibatch
                back = out @ w2.T
                back[z <= 0.0] = 0.0
                w2 *= decay
                w2 -= a.T @ out
                b2 -= out.sum(axis=0)
                w1 *= decay
                w1 -= x.T @ back
                b1 -= back.sum(axis=0)
        self.version += 1
        return int(epochs) * n

    def flops_per_sample(self) -> float:
        """Training FLOPs per sample: 6 per parameter, the dense-model rule the linear
        learners use (forward 2N, backward 4N)."""
        return 6.0 * self.size

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """The logits, one column per class."""
        X = check_features(X, self.n_features)
        return np.maximum(X @ self._w1 + self._b1, 0.0) @ self._w2 + self._b2

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes[np.argmax(self.decision_function(X), axis=1)]

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        """Share of samples whose predicted class is right."""
        X, y = check_data(X, y, self.n_features, self.classes)
        return score(self.predict, X, y)
