"""Taxi-side hazard perception, and how fast the fleet becomes aware of hazards.

`HazardModel` turns raw sensor readings (from `city`) into the small embedding a taxi
gossips, and judges whether a reading is a real hazard. It is fitted once per run
on readings drawn from the same sensor model, so every taxi shares one model.
`AwarenessTracker` measures the outcome: awareness latency per hazard, misses and
wrong decisions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from swarm.workloads.hazards.city import KINDS, CityConfig, Hazard, sample_features

__all__ = [
    "AwarenessTracker",
    "HazardModel",
    "check_embedding",
    "compound_judges",
    "labelled_readings",
]

SPURIOUS = -1  # label of a spurious reading; real kinds are indices into KINDS
REAL_FRACTION = 0.5  # share of real hazards in a training set
_F32_MAX = float(np.finfo(np.float32).max)


def labelled_readings(
    config: CityConfig, rng: np.random.Generator, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """n readings and their labels (kind index, or SPURIOUS); half real, kinds uniform."""
    probs = [REAL_FRACTION / len(KINDS)] * len(KINDS) + [1.0 - REAL_FRACTION]
    labels = rng.choice(len(KINDS) + 1, size=n, p=probs)
    labels[labels == len(KINDS)] = SPURIOUS
    return sample_features(config, rng, labels), labels


def check_embedding(vec: object, dim: int) -> np.ndarray:
    """`vec` as a float32 vector of length `dim`, or ValueError with a one-line reason.

    Peers' embeddings arrive off the wire; anything that is not a finite real vector of
    the right length is rejected before it reaches the classifier.
    """
    if isinstance(vec, str | bytes):
        raise ValueError(f"embedding is {type(vec).__name__}, not a vector")
    try:
        arr = np.asarray(vec)
    except (TypeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"embedding is not an array: {reason}") from None
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"embedding dtype {arr.dtype} is not a real number type")
    if arr.ndim != 1:
        raise ValueError(f"embedding must be 1-D, got shape {arr.shape}")
    if arr.size != dim:
        raise ValueError(f"embedding length must be {dim}, got {arr.size}")
    wide = arr.astype(np.float64)
    if not np.isfinite(wide).all():
        raise ValueError("embedding contains NaN or infinity")
    if (np.abs(wide) > _F32_MAX).any():
        raise ValueError("embedding value exceeds the float32 range")
    return wide.astype(np.float32)


class HazardModel:
    """StandardScaler + PCA embedding, and a multinomial logistic regression on it.

    The classifier predicts the kind or "spurious"; the probability of a real hazard is
    one minus P(spurious). Inference applies the fitted parameters with plain numpy,
    which matches `embedder.transform` / `classifier.predict_proba` and avoids
    scikit-learn's per-call overhead on single vectors.
    """

    def __init__(self, embedder: Pipeline, classifier: LogisticRegression) -> None:
        self.embedder = embedder
        self.classifier = classifier
        scaler: StandardScaler = embedder.named_steps["scale"]
        pca: PCA = embedder.named_steps["pca"]
        self.n_features = int(scaler.n_features_in_)
        self.embedding_dim = int(pca.n_components_)
        self._shift = scaler.mean_ + pca.mean_ * scaler.scale_
        self._proj = (pca.components_ / scaler.scale_).T
        self._coef = classifier.coef_.T
        self._intercept = classifier.intercept_
        self._classes = [int(c) for c in classifier.classes_]
        self._spurious = self._classes.index(SPURIOUS)

    @classmethod
    def fit(
        cls, config: CityConfig, rng: np.random.Generator, n_samples: int = 2000
    ) -> HazardModel:
        """Fit on `n_samples` fresh readings from the sensor model of `config`."""
        if n_samples < max(config.embedding_dim, 2 * (len(KINDS) + 1)):
            raise ValueError(f"n_samples={n_samples} is too few to fit the model")
        features, labels = labelled_readings(config, rng, n_samples)
        embedder = Pipeline(
            [
                ("scale", StandardScaler()),
                ("pca", PCA(config.embedding_dim, svd_solver="full")),
            ]
        )
        emb = embedder.fit_transform(features).astype(np.float32)
        classifier = LogisticRegression(max_iter=1000).fit(emb, labels)
        return cls(embedder, classifier)

    def embed(self, features: np.ndarray) -> np.ndarray:
        """float32 embedding of one reading (n_features,) or a batch (m, n_features)."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim not in (1, 2) or x.shape[-1] != self.n_features:
            raise ValueError(f"features must have {self.n_features} columns, got {x.shape}")
        # (x - mean) / scale - pca_mean, then project: folded into one affine map.
        return ((x - self._shift) @ self._proj).astype(np.float32)

    def check_embedding(self, vec: object) -> np.ndarray:
        """Validate a peer's embedding against this model's dimension (see module function)."""
        return check_embedding(vec, self.embedding_dim)

    def _proba(self, emb: np.ndarray) -> np.ndarray:
        logits = emb.astype(np.float64) @ self._coef + self._intercept
        logits -= logits.max(axis=-1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=-1, keepdims=True)

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """Probability real for each row of an (m, embedding_dim) batch."""
        emb = np.asarray(embeddings, dtype=np.float32).reshape(-1, self.embedding_dim)
        return 1.0 - self._proba(emb)[:, self._spurious]

    def score(self, embedding: object) -> float:
        """Probability that the embedded reading is a real hazard."""
        return float(self.scores(self.check_embedding(embedding))[0])

    def is_real(self, embedding: object) -> bool:
        return self.score(embedding) >= 0.5

    def kind(self, embedding: object) -> str | None:
        """Most likely kind, or None when spurious is the most likely class."""
        label = self._classes[int(np.argmax(self._proba(self.check_embedding(embedding))))]
        return None if label == SPURIOUS else KINDS[label]

    def accuracy(self, features: np.ndarray, labels: np.ndarray) -> float:
        """Share of readings whose real-vs-spurious decision matches the labels."""
        real = self.scores(self.embed(np.atleast_2d(features))) >= 0.5
        return float(np.mean(real == (np.asarray(labels) != SPURIOUS)))


@dataclass(slots=True)
class _Awareness:
    appeared_at: float
    audience: frozenset[int]
    learned: dict[int, float] = field(default_factory=dict)
    expired_at: float | None = None


def latency_percentiles(latencies: Iterable[float]) -> dict[str, float | None]:
    """p50, p90 and p99 of awareness latencies; None each when no hazard was reached."""
    lat = np.asarray(list(latencies), dtype=float)
    if not lat.size:
        return {"p50": None, "p90": None, "p99": None}
    p50, p90, p99 = np.percentile(lat, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99)}


class AwarenessTracker:
    """Per-hazard awareness latency: time until `share` of the hazard's audience knew it.

    The audience is the set of taxis within `radius_m` when the hazard appeared, and is
    fixed then: a taxi that drives away still has to learn of the hazard, one that
    arrives later does not count. This makes the denominator independent of mobility
    after the event. Hazards with an empty audience are counted but have no latency;
    hazards that expire before the share knew them are "missed". Knowledge is counted
    only if it arrived strictly before expiry.
    """

    def __init__(self, radius_m: float, share: float = 0.9) -> None:
        if not radius_m > 0 or not math.isfinite(radius_m):
            raise ValueError(f"radius_m must be a finite positive number, got {radius_m!r}")
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share!r}")
        self.radius_m = float(radius_m)
        self.share = float(share)
        self._hazards: dict[int, _Awareness] = {}
        self.false_alarms: list[tuple[int, float]] = []
        self.missed_decisions: list[tuple[int, int, float]] = []

    def needed(self, audience_size: int) -> int:
        """How many audience taxis must know; the epsilon stops 0.9 * 10 rounding to 10."""
        return max(1, math.ceil(self.share * audience_size - 1e-9))

    def record(self, hazard_id: int, appeared_at: float, audience: Iterable[int]) -> None:
        """Start tracking a hazard with an explicit audience."""
        if hazard_id in self._hazards:
            raise ValueError(f"hazard {hazard_id} is already tracked")
        self._hazards[hazard_id] = _Awareness(float(appeared_at), frozenset(map(int, audience)))

    def appeared(self, hazard: Hazard, positions: np.ndarray) -> frozenset[int]:
        """Track `hazard`; its audience is the taxis in `positions` within radius_m."""
        pos = np.asarray(positions, dtype=float).reshape(-1, 2)
        d2 = (pos[:, 0] - hazard.x) ** 2 + (pos[:, 1] - hazard.y) ** 2
        self.record(hazard.id, hazard.appeared_at, np.flatnonzero(d2 <= self.radius_m**2))
        return self._hazards[hazard.id].audience

    def audience(self, hazard_id: int) -> frozenset[int]:
        return self._hazards[hazard_id].audience

    def learned(self, hazard_id: int, taxi: int, time: float) -> bool:
        """Note that `taxi` knew the hazard at `time`; True if it is a new audience member."""
        rec = self._hazards[hazard_id]
        if time < rec.appeared_at:
            raise ValueError(f"hazard {hazard_id} learned at {time} before it appeared")
        if taxi not in rec.audience:
            return False
        first = taxi not in rec.learned
        rec.learned[taxi] = min(time, rec.learned.get(taxi, math.inf))
        return first

    def expired(self, hazard_id: int, time: float) -> None:
        self._hazards[hazard_id].expired_at = float(time)

    def false_alarm(self, taxi: int, time: float) -> None:
        """A taxi judged a spurious reading to be a real hazard."""
        self.false_alarms.append((int(taxi), float(time)))

    def missed_decision(self, taxi: int, hazard_id: int, time: float) -> None:
        """A taxi judged a reading of a real hazard to be spurious."""
        self.missed_decisions.append((int(taxi), int(hazard_id), float(time)))

    def reached_at(self, hazard_id: int) -> float | None:
        """When `share` of the hazard's audience knew it (before expiry); None if not yet."""
        return self._reached_at(self._hazards[hazard_id])

    def _reached_at(self, rec: _Awareness) -> float | None:
        k = self.needed(len(rec.audience))
        if len(rec.learned) < k:
            return None
        t = sorted(rec.learned.values())[k - 1]
        return t if rec.expired_at is None or t < rec.expired_at else None

    def latencies(self) -> np.ndarray:
        """Latencies of hazards that reached the share, in order of tracking."""
        out = []
        for rec in self._hazards.values():
            if rec.audience and (t := self._reached_at(rec)) is not None:
                out.append(t - rec.appeared_at)
        return np.asarray(out, dtype=float)

    def percentiles(self) -> dict[str, float | None]:
        return latency_percentiles(self.latencies())

    def summary(self) -> dict[str, int | float | None]:
        """Counts and latency percentiles; `pending` hazards are live and not yet reached."""
        with_audience = [r for r in self._hazards.values() if r.audience]
        reached = sum(self._reached_at(r) is not None for r in with_audience)
        missed = sum(
            r.expired_at is not None and self._reached_at(r) is None for r in with_audience
        )
        return {
            "hazards": len(self._hazards),
            "with_audience": len(with_audience),
            "without_audience": len(self._hazards) - len(with_audience),
            "reached": reached,
            "missed": missed,
            "pending": len(with_audience) - reached - missed,
            "false_alarms": len(self.false_alarms),
            "missed_decisions": len(self.missed_decisions),
            **self.percentiles(),
        }


JUDGES_TRAIN = 2000  # readings the compound judges learn from
JUDGES_TEST = 2000  # and are scored on
INDEPENDENT_TRIALS = 20_000  # simulated independent voters, for the law's own check


def compound_judges(config: CityConfig, rng: np.random.Generator) -> dict[str, Any]:
    """K different learners judge real-vs-spurious readings; measured beside the laws.

    The members (logistic regression, a tree, k-NN, naive Bayes, a forest) learn from the
    same readings, so their mistakes are correlated: the `measured` majority falls short of
    the binomial law that `independent` voters of the same accuracy reach (simulated, to
    show the law holds when its assumption does). Any-of, the detector's rule, catches
    more real hazards than any member and raises more false alarms.
    """
    from swarm.protocols.consensus import voting
    from swarm.protocols.consensus.ensemble import Ensemble, evaluate

    features, labels = labelled_readings(config, rng, JUDGES_TRAIN + JUDGES_TEST)
    real = (labels != SPURIOUS).astype(np.int64)
    train, test = slice(0, JUDGES_TRAIN), slice(JUDGES_TRAIN, None)
    ensemble = Ensemble.fit(features[train], real[train], seed=int(rng.integers(2**31)))
    measured = evaluate(ensemble, features[test], real[test])
    k, p = measured["k"], measured["mean_member_accuracy"]
    votes = voting.simulate_votes(p, k, INDEPENDENT_TRIALS, rng)
    independent = {
        "majority": float(np.mean(voting.majority(votes) == 1)),
        "majority_law": voting.majority_law(p, k),
        "any_of": float(np.mean(voting.any_of(votes) == 1)),
        "any_of_law": voting.any_of_law(p, k),
        "trials": INDEPENDENT_TRIALS,
    }
    return {"measured": measured, "independent": independent}
