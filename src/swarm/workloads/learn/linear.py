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

from collections.abc import Sequence
from typing import Any

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

__all__ = ["Job", "LinearLearner", "supports", "train_together"]

ALPHA = 1e-4  # L2 strength: SGDClassifier's default, and LocalLearner's
# Samples in one `train` call from which scikit-learn's compiled loop is faster than
# numpy's, despite its ~1 ms of set-up per pass (a pooled baseline, a large shard).
SKLEARN_PASS = 2048
CALL_VALUES = 1 << 22  # samples x features handed to scikit-learn at once (32 MiB)

Job = tuple["LinearLearner", np.ndarray, np.ndarray, np.ndarray]  # learner, X, signs, order


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
        # The last read-only (X, y) checked, and its signs: a device trains on the same
        # shard every round, and checking it again each time cost more than the step.
        self._shard: Shard | None = None

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
        v = check_vector(vector, self.size)  # a copy of our own: views of it are ours too
        n_coef = self.coef.size
        self.coef = v[:n_coef].reshape(self.coef.shape)
        self.intercept = v[n_coef:]
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
        X, y, signs, order = self.plan(X, y, epochs, batch_size, rng)
        if order.size >= SKLEARN_PASS:
            self.train_sklearn(X, y, order)
        elif order.size:
            train_together([(self, X, signs, order)])
        return int(order.size)

    def _checked(self, X: np.ndarray, y: np.ndarray) -> Shard:
        checked, self._shard = check_shard(
            self._shard, X, y, self.n_features, self.classes, self._signs
        )
        return checked

    def plan(
        self,
        X: np.ndarray,
        y: np.ndarray,
        epochs: int = 1,
        batch_size: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Checked (X, y), their one-vs-rest signs, and the order `train` would visit the
        samples in: `epochs` permutations drawn from `rng` (or the learner's own)."""
        check_training(epochs, batch_size)
        X, y, signs = self._checked(X, y)
        rng = self.rng if rng is None else rng
        n = X.shape[0]
        if n == 0 or epochs == 0:
            return X, y, signs, np.zeros(0, dtype=np.intp)
        if epochs == 1:
            return X, y, signs, rng.permutation(n)
        return X, y, signs, np.concatenate([rng.permutation(n) for _ in range(epochs)])

    def train_sklearn(self, X: np.ndarray, y: np.ndarray, orders: np.ndarray) -> None:
        """A long pass through scikit-learn's compiled loop: the same arithmetic (one pass
        per epoch, no shuffling of its own), where a Python loop would cost ~8 us a sample."""
        from sklearn.linear_model import SGDClassifier

        estimator = SGDClassifier(
            loss="log_loss",
            alpha=ALPHA,
            learning_rate="constant",
            eta0=self.eta,
            shuffle=False,
            random_state=0,  # unused: it only seeds shuffling, which is off
        )
        estimator.partial_fit(X[:1], y[:1], classes=self.classes)  # sets up the classes
        estimator.coef_ = self.coef.copy()
        estimator.intercept_ = self.intercept.copy()
        # Whole epochs per call, as many as fit in CALL_VALUES: each call costs ~4 ms of
        # set-up (a one-vs-rest fit per class), and folds the weight scale back in.
        n = X.shape[0]
        epochs = max(1, CALL_VALUES // (n * X.shape[1]))
        for start in range(0, orders.size, epochs * n):
            order = orders[start : start + epochs * n]
            estimator.partial_fit(X[order], y[order])
        self.coef = np.array(estimator.coef_, dtype=np.float64)
        self.intercept = np.array(estimator.intercept_, dtype=np.float64)
        self.version += 1

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


def train_together(jobs: Sequence[Job]) -> None:
    """Per-sample SGD for many learners at once: step t of every learner in one go.

    Each job is (learner, X, signs, order): the learner visits X[order] one sample at a
    time, exactly as `LinearLearner.train` does, but the fleet's learners take their
    t-th step together, so a round costs a few numpy calls per sample index instead of
    a dozen per sample per learner. Learners must share their shape and step size.
    """
    if not jobs:
        return
    first = jobs[0][0]
    if any(j[0].coef.shape != first.coef.shape or j[0].eta != first.eta for j in jobs):
        raise ValueError("learners trained together must share their shape and step size")
    if len({id(job[0]) for job in jobs}) != len(jobs):
        raise ValueError("a learner can take only one job at a time")
    # Longest sequences first: the learners still stepping at t are always a prefix.
    jobs = sorted(jobs, key=lambda job: -job[3].size)
    count, steps = len(jobs), jobs[0][3].size
    rows, features = first.coef.shape
    xs = np.zeros((count, steps, features))
    ss = np.zeros((count, steps, rows))
    for a, (_, X, signs, order) in enumerate(jobs):
        xs[a, : order.size] = X[order]
        ss[a, : order.size] = signs[order]
    active = np.searchsorted(-np.array([job[3].size for job in jobs]), -np.arange(steps), "left")
    coef = np.stack([job[0].coef for job in jobs])
    intercept = np.stack([job[0].intercept for job in jobs])
    scale = np.ones(count)
    outer = np.empty_like(coef)  # each step's update, in one buffer (a fleet's is tens of MB)
    eta, decay = first.eta, 1.0 - first.eta * ALPHA
    for t in range(steps):
        k = active[t]
        c, b, sc = coef[:k], intercept[:k], scale[:k]
        x, s = xs[:k, t], ss[:k, t]
        margin = s * (sc[:, None] * np.matmul(c, x[:, :, None])[:, :, 0] + b)
        # d(log(1 + exp(-margin)))/d(output); within (-1, 1), so never clipped. A model
        # a poisoner blew up has huge margins: exp overflows to inf and the step is 0, the
        # right limit, so the overflow is not worth a warning.
        with np.errstate(over="ignore"):
            step = (-eta) * (-s / (np.exp(margin) + 1.0))
        sc *= decay
        # The outer products, each one multiplication (einsum writes them fastest).
        c += np.einsum("ar,af->arf", step / sc[:, None], x, out=outer[:k])
        b += step
        low = sc < 1e-9
        if low.any():  # fold the scale in before it underflows
            c[low] *= sc[low, None, None]
            sc[low] = 1.0
    coef *= scale[:, None, None]
    for a, job in enumerate(jobs):
        learner = job[0]
        learner.coef, learner.intercept = coef[a], intercept[a]
        learner.version += 1
