"""The model each agent trains on its shard: a linear classifier behind a flat vector.

`LocalLearner` wraps scikit-learn's `SGDClassifier` (one-vs-rest, logistic loss by
default) so that strategies only ever see `get_params`/`set_params` vectors and a
sample count. The estimator is told every class of the dataset up front, so a learner
whose shard lacks some classes still predicts over all of them, and parameters
averaged across agents line up row by row.

scikit-learn is imported when the first learner is built, not when this module is:
importing it is slow, and many commands never train.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

import numpy as np

from swarm.workloads.learn.checks import (
    check_data,
    check_features,
    check_setup,
    check_training,
    check_vector,
    score,
)

if TYPE_CHECKING:
    from swarm.workloads.learn.datasets import Dataset

__all__ = [
    "DEFAULTS",
    "MODELS",
    "Learner",
    "LocalLearner",
    "average",
    "centralized_baseline",
    "make_learner",
]

# learn.model: the numpy learner computes what the scikit-learn adapter does, to rounding,
# without scikit-learn's per-call overhead (see swarm.workloads.learn.linear). "mlp" is a
# small neural network, big enough for compression to matter (swarm.workloads.learn.mlp).
MODELS: Final = ("linear", "sklearn:SGDClassifier", "mlp")


class Learner(Protocol):
    """What strategies need of a local model: flat parameters in and out, fit, score."""

    classes: np.ndarray
    n_features: int

    @property
    def size(self) -> int: ...
    @property
    def n_outputs(self) -> int: ...
    def get_params(self) -> np.ndarray: ...
    def set_params(self, vector: np.ndarray) -> None: ...
    def train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        epochs: int = 1,
        batch_size: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> int: ...
    def flops_per_sample(self) -> float: ...
    def predict(self, X: np.ndarray) -> np.ndarray: ...
    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float: ...


def make_learner(
    model: str,
    classes: np.ndarray,
    n_features: int,
    rng: np.random.Generator,
    hidden: int | None = None,
    **options: Any,
) -> Learner:
    """A learner of kind `model` (one of MODELS): the linear ones from zero parameters,
    the mlp (with `hidden` units, 32 if None) from its shape's common start."""
    if hidden is not None and model != "mlp":
        raise ValueError(f"hidden sets the mlp's hidden units; model {model!r} has none")
    if model == "mlp":
        from swarm.workloads.learn.mlp import MLPLearner

        return MLPLearner(classes, n_features, rng, 32 if hidden is None else hidden, **options)
    if model == "linear":
        from swarm.workloads.learn.linear import LinearLearner

        return LinearLearner(classes, n_features, rng, **options)
    if model == "sklearn:SGDClassifier":
        return LocalLearner(classes, n_features, rng, **options)
    raise ValueError(f"unknown model {model!r}; models: {', '.join(MODELS)}")


# A constant step size is what federated averaging assumes, and unlike sklearn's
# "optimal" schedule it does not hang on a per-estimator update counter that averaging
# cannot merge; 0.01 matches the scenario's default learning rate.
DEFAULTS: Final = {"loss": "log_loss", "learning_rate": "constant", "eta0": 0.01, "alpha": 1e-4}
# Set by the learner itself: randomness comes from the rng, shuffling is done here (so
# results do not depend on how data is chunked), and averaged SGD or early stopping
# keep state that a transplanted parameter vector would not carry.
_FIXED: Final = frozenset({"random_state", "shuffle", "average", "early_stopping", "warm_start"})


def _options(options: dict[str, Any]) -> dict[str, Any]:
    fixed = sorted(_FIXED & options.keys())
    if fixed:
        raise ValueError(f"LocalLearner sets {', '.join(fixed)} itself")
    merged = {**DEFAULTS, **options}
    rate = merged["learning_rate"]
    if isinstance(rate, int | float) and not isinstance(rate, bool):
        # A number is a step size, as the scenario's learn.learning_rate means it.
        merged["learning_rate"], merged["eta0"] = "constant", float(rate)
    return merged


class LocalLearner:
    """A linear classifier over all `classes`, starting from zero parameters.

    `options` go to `SGDClassifier` (loss, alpha, learning_rate, eta0, penalty, ...;
    see `DEFAULTS`); a numeric `learning_rate` means a constant step of that size.
    """

    def __init__(
        self, classes: np.ndarray, n_features: int, rng: np.random.Generator, **options: Any
    ) -> None:
        from sklearn.linear_model import SGDClassifier

        self.classes, self.n_features = check_setup(classes, n_features)
        self.rng = rng
        self._est = SGDClassifier(
            **_options(options), random_state=int(rng.integers(2**31 - 1)), shuffle=False
        )
        # partial_fit is the only public way to set up classes_ and the loss; one step
        # on a zero sample does that, and then its effect is wiped out.
        self._est.partial_fit(
            np.zeros((1, self.n_features)), self.classes[:1], classes=self.classes
        )
        self._est.coef_ = np.zeros_like(self._est.coef_, dtype=np.float64)
        self._est.intercept_ = np.zeros_like(self._est.intercept_, dtype=np.float64)
        self._est.t_ = 1.0

    @property
    def n_outputs(self) -> int:
        """Rows of the weight matrix: one per class, but a single one for two classes."""
        return int(self._est.coef_.shape[0])

    @property
    def size(self) -> int:
        """Number of parameters: weights plus intercepts."""
        return int(self._est.coef_.size + self._est.intercept_.size)

    def get_params(self) -> np.ndarray:
        """A float64 copy of the weights (row-major), then the intercepts."""
        return np.concatenate([self._est.coef_.ravel(), self._est.intercept_]).astype(np.float64)

    def set_params(self, vector: np.ndarray) -> None:
        """Load a vector from `get_params` (this learner's or a peer's); ValueError if it
        is not a finite 1-D vector of `size` numbers, leaving the model untouched."""
        v = check_vector(vector, self.size)
        n_coef = self._est.coef_.size
        self._est.coef_ = np.ascontiguousarray(v[:n_coef].reshape(self._est.coef_.shape))
        self._est.intercept_ = v[n_coef:].copy()

    def train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        epochs: int = 1,
        batch_size: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> int:
        """`epochs` shuffled passes of SGD over (X, y); returns the samples processed.

        The shuffle uses `rng`, or the learner's own generator. SGDClassifier steps once
        per sample, so a pass handed over in minibatches ends at the same parameters (to
        rounding) as one handed over whole, only slower (each call has a fixed overhead
        of about a millisecond): the whole pass is handed over at once, and `batch_size`
        (None or an int >= 1) is checked but does not change the update.
        """
        check_training(epochs, batch_size)
        X, y = check_data(X, y, self.n_features, self.classes)
        rng = self.rng if rng is None else rng
        if X.shape[0] == 0:
            return 0
        for _ in range(epochs):
            order = rng.permutation(X.shape[0])
            self._est.partial_fit(X[order], y[order])
        return int(epochs) * X.shape[0]

    def flops_per_sample(self) -> float:
        """Training FLOPs per sample: 6 per parameter.

        The forward pass costs a multiply and an add per weight (2 x n_features x
        n_outputs, plus the intercepts); the gradient of the loss with respect to the
        weights costs as much again, and the SGD update (decay by the L2 penalty, then
        the step) about as much once more: ~3 x the forward pass, the usual 6N rule for
        dense models. Prediction costs a third of this.
        """
        return 6.0 * self.size

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._est.predict(check_features(X, self.n_features))

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        """Share of samples whose predicted class is right."""
        X, y = check_data(X, y, self.n_features, self.classes)
        return score(self._est.predict, X, y)


def centralized_baseline(
    dataset: Dataset, epochs: int, rng: np.random.Generator, model: str = "linear", **options: Any
) -> float:
    """Test accuracy of one learner trained on the whole training set for `epochs`:
    what a fleet could reach by pooling its data, on the same model and budget.
    `options` go to `make_learner` (the step size; `hidden` for the mlp)."""
    learner = make_learner(model, dataset.classes, dataset.n_features, rng, **options)
    learner.train(dataset.X_train, dataset.y_train, epochs=epochs)
    return learner.accuracy(dataset.X_test, dataset.y_test)


def average(vectors: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """The (weighted) mean of equally long parameter vectors; FedAvg weights by samples."""
    if len(vectors) == 0:
        raise ValueError("average needs at least one vector")
    rows = [np.asarray(v, dtype=np.float64) for v in vectors]
    shapes = {r.shape for r in rows}
    if len(shapes) != 1 or rows[0].ndim != 1:
        raise ValueError(f"vectors must be 1-D and equally long, got shapes {sorted(shapes)}")
    stacked = np.stack(rows)
    if weights is None:
        return stacked.mean(axis=0)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(rows),):
        raise ValueError(f"expected {len(rows)} weights, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weights must be finite, >= 0 and not all zero, got {w.tolist()}")
    return (w @ stacked) / w.sum()
