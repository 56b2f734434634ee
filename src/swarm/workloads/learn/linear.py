"""The default learner: one-vs-rest logistic regression by plain SGD, in numpy.

It computes what scikit-learn's `SGDClassifier(loss="log_loss", penalty="l2",
learning_rate="constant")` computes, to rounding: the same parameter layout (one row per
class, a single row for two classes, then the intercepts), the same per-sample update in
the same order, the same L2 decay. What it leaves out is the per-call machinery around
it (validation, a one-vs-rest fit per class through joblib, random-state and config
contexts), which costs about a millisecond a call where a fleet's local step is a few
dozen samples: the arithmetic here is vectorised over classes, one sample at a time.

`LocalLearner` (the scikit-learn adapter) stays for any other estimator setting.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from swarm.workloads.learn.checks import (
    check_data,
    check_features,
    check_setup,
    check_training,
    check_vector,
    score,
)

__all__ = ["LinearLearner", "supports"]

ALPHA = 1e-4  # L2 strength: SGDClassifier's default, and LocalLearner's


def supports(options: dict[str, Any]) -> bool:
    """Whether `options` (LocalLearner's) describe what this learner computes."""
    rest = dict(options)
    rate = rest.pop("learning_rate", "constant")
    eta0 = rest.pop("eta0", 0.01)
    if isinstance(rate, bool) or not (rate == "constant" or isinstance(rate, int | float)):
        return False
    if isinstance(eta0, bool) or not isinstance(eta0, int | float):
        return False
    return rest.get("loss", "log_loss") == "log_loss" and set(rest) <= {"loss"}


def _step_size(options: dict[str, Any]) -> float:
    rate = options.get("learning_rate", "constant")
    step = float(rate) if isinstance(rate, int | float) else float(options.get("eta0", 0.01))
    if not np.isfinite(step) or step <= 0:
        raise ValueError(f"the learning rate must be a positive number, got {step!r}")
    return step


class LinearLearner:
    """A linear classifier over all `classes`, from zero parameters (see the module).

    Same interface as `LocalLearner`: flat parameters in and out, train, predict.
    """

    def __init__(
        self, classes: np.ndarray, n_features: int, rng: np.random.Generator, **options: Any
    ) -> None:
        if not supports(options):
            raise ValueError(
                f"LinearLearner computes log-loss SGD at a constant rate, not {options}"
            )
        self.classes, self.n_features = check_setup(classes, n_features)
        self.rng = rng
        rng.integers(2**31 - 1)  # the adapter's seed draw: both models see the same shuffles
        self.eta = _step_size(options)
        rows = 1 if self.classes.size == 2 else self.classes.size
        self.coef = np.zeros((rows, self.n_features))
        self.intercept = np.zeros(rows)
        # Counts changes to the parameters, so a read-out can tell an unchanged model
        # (a FedAvg client not asked this round) and reuse its last score.
        self.version = 0

    @property
    def n_outputs(self) -> int:
        return int(self.coef.shape[0])

    @property
    def size(self) -> int:
        return int(self.coef.size + self.intercept.size)

    def get_params(self) -> np.ndarray:
        """A float64 copy of the weights (row-major), then the intercepts."""
        return np.concatenate([self.coef.ravel(), self.intercept])

    def set_params(self, vector: np.ndarray) -> None:
        """Load a vector from `get_params`; ValueError if it is not a finite 1-D vector of
        `size` numbers, leaving the model untouched."""
        v = check_vector(vector, self.size)
        n_coef = self.coef.size
        self.coef = v[:n_coef].reshape(self.coef.shape).copy()
        self.intercept = v[n_coef:].copy()
        self.version += 1

    def _signs(self, y: np.ndarray) -> np.ndarray:
        """+1 where a sample is of a row's class, -1 elsewhere (one-vs-rest targets)."""
        if self.n_outputs == 1:
            return np.where(y == self.classes[1], 1.0, -1.0)[:, None]
        return np.where(y[:, None] == self.classes[None, :], 1.0, -1.0)

    def train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        epochs: int = 1,
        batch_size: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> int:
        """`epochs` shuffled passes of per-sample SGD over (X, y); the samples processed.

        The shuffle uses `rng`, or the learner's own generator; `batch_size` is checked
        but, as with LocalLearner, every sample is its own step.
        """
        check_training(epochs, batch_size)
        X, y = check_data(X, y, self.n_features, self.classes)
        rng = self.rng if rng is None else rng
        if X.shape[0] == 0:
            return 0
        signs = self._signs(y)
        eta, decay = self.eta, 1.0 - self.eta * ALPHA
        # The weights are kept as scale * coef, so the L2 decay of every step is one
        # multiplication of a number, as scikit-learn does it.
        coef, intercept, scale = self.coef, self.intercept, 1.0
        for _ in range(epochs):
            for i in rng.permutation(X.shape[0]):
                x, s = X[i], signs[i]
                margin = s * (scale * (coef @ x) + intercept)
                # d(log(1 + exp(-margin)))/d(output); within (-1, 1), so never clipped
                step = (-eta) * (-s / (np.exp(margin) + 1.0))
                scale *= decay
                coef += (step / scale)[:, None] * x
                intercept += step
                if scale < 1e-9:  # fold the scale in before it underflows
                    coef *= scale
                    scale = 1.0
        coef *= scale
        self.version += 1
        return int(epochs) * X.shape[0]

    def flops_per_sample(self) -> float:
        """Training FLOPs per sample: 6 per parameter (see LocalLearner)."""
        return 6.0 * self.size

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return check_features(X, self.n_features) @ self.coef.T + self.intercept

    def predict(self, X: np.ndarray) -> np.ndarray:
        scores = self.decision_function(X)
        if self.n_outputs == 1:
            return self.classes[(scores[:, 0] > 0).astype(int)]
        return self.classes[np.argmax(scores, axis=1)]

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        """Share of samples whose predicted class is right."""
        X, y = check_data(X, y, self.n_features, self.classes)
        return score(self.predict, X, y)
