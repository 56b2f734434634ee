"""Local training queued during a round's preparation and run as one batch.

In a round where every agent acts at once, each learning agent queues its local
training here (`add`, from its core's `prepare`), and the first agent to act runs all
of it (`flush`): `train_together` takes every learner's t-th step in one set of numpy
calls, where training each learner alone costs a dozen calls per sample. A learner's
samples, order and arithmetic are those of its own `train`: the batch changes the speed,
not the figures.
"""

from __future__ import annotations

import numpy as np

from swarm.workloads.learn.learner import Learner
from swarm.workloads.learn.linear import SKLEARN_PASS, Job, LinearLearner, train_together

__all__ = ["TrainingPool"]


class TrainingPool:
    """Queued local training of linear learners, run together on `flush`."""

    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}

    def __len__(self) -> int:
        return len(self._jobs)

    def add(
        self,
        learner: Learner,
        X: np.ndarray,
        y: np.ndarray,
        epochs: int,
        batch_size: int | None,
        rng: np.random.Generator,
    ) -> int:
        """Queue `learner.train(X, y, epochs, batch_size, rng)`; the samples it will process.

        The shuffle is drawn from `rng` now, as `train` would draw it. Learners that cannot
        be batched (the scikit-learn adapter, a pass long enough for scikit-learn's own
        loop) train at once.
        """
        if not isinstance(learner, LinearLearner):
            return learner.train(X, y, epochs=epochs, batch_size=batch_size, rng=rng)
        if id(learner) in self._jobs:
            self.flush()  # a second pass of the same learner starts from the first's end
        X, y, signs, order = learner.plan(X, y, epochs, batch_size, rng)
        if order.size >= SKLEARN_PASS:
            learner.train_sklearn(X, y, order)
        elif order.size:
            self._jobs[id(learner)] = (learner, X, signs, order)
        return int(order.size)

    def flush(self) -> None:
        """Run everything queued, in batches of learners that share a shape and step."""
        if not self._jobs:
            return
        groups: dict[tuple[tuple[int, ...], float], list[Job]] = {}
        for job in self._jobs.values():
            groups.setdefault((job[0].coef.shape, job[0].eta), []).append(job)
        self._jobs = {}
        for jobs in groups.values():
            train_together(jobs)
