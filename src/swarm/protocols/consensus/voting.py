"""Voting rules and the laws that predict how well they do.

Why vote at all: Condorcet's jury theorem says that K independent voters, each right
with probability p > 1/2, are right by majority with a probability that grows towards 1
with K. That is the compound-capability law of a fleet: many mediocre detectors make a
good one, *if their errors are independent*. `majority_law`, `any_of_law` and
`quorum_law` are the binomial predictions; `simulate_votes` draws votes that follow them,
or, with `correlation` > 0, votes whose errors are shared, which is how a fleet of copies
of one model falls short of the law.

Votes are non-negative int labels, one row per voter: shape (K,) for one decision, or
(K, M) for M decisions, one column each. A rule returns an int for 1-D votes and an int
array of length M for 2-D votes.

Tie rule: `majority` and `weighted` break a tie toward the smallest label. That is
deterministic (the same votes always give the same decision on every node, which a
consensus rule needs) but not fair, which is why `majority_law` counts an even-K tie as
half right and the tests compare `majority` with the law on odd K only.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

import numpy as np

__all__ = [
    "NO_DECISION",
    "VotingError",
    "any_of",
    "any_of_law",
    "majority",
    "majority_law",
    "quorum",
    "quorum_law",
    "quorum_size",
    "simulate_votes",
    "weighted",
]

NO_DECISION = -1  # what `quorum` returns when no label reaches the level


class VotingError(ValueError):
    """Votes, weights, a level or a law's argument that no rule can use."""


# -- rules -----------------------------------------------------------------------------------


def majority(votes: object) -> int | np.ndarray:
    """The label with the most votes per decision (plurality); ties go to the smallest."""
    v, flat = _votes(votes)
    label, _ = _winners(v, np.ones(v.shape[0], dtype=np.int64))
    return _out(label, flat)


def weighted(votes: object, weights: object) -> int | np.ndarray:
    """The label with the largest total weight per decision; ties go to the smallest.

    `weights` holds one finite, non-negative weight per voter with a positive total. Totals
    are float sums, so a tie means an exact float tie.
    """
    v, flat = _votes(votes)
    label, _ = _winners(v, _weights(weights, v.shape[0]))
    return _out(label, flat)


def quorum(votes: object, level: float | Fraction) -> int | np.ndarray:
    """The label that holds at least `level` of the K votes, else NO_DECISION.

    `level` lies in (0.5, 1], so at most one label can reach it. A label qualifies when
    its count is at least `quorum_size(level, K)`, an exact integer comparison.
    """
    v, flat = _votes(votes)
    need = quorum_size(level, v.shape[0])
    label, count = _winners(v, np.ones(v.shape[0], dtype=np.int64))
    return _out(np.where(count >= need, label, NO_DECISION), flat)


def any_of(votes: object) -> int | np.ndarray:
    """Detection: 1 if any voter says 1 (positive), else 0; labels must be 0 or 1.

    Any-of trades false alarms for recall: one detector firing is enough.
    """
    v, flat = _votes(votes)
    if v.max() > 1:
        raise VotingError(f"any_of needs 0/1 labels, got label {int(v.max())}")
    return _out(v.max(axis=0), flat)


def quorum_size(level: float | Fraction, k: int) -> int:
    """The fewest of `k` votes that make a share of at least `level`: ceil(level * k).

    A float level is read as the shortest decimal that prints as it (0.55 means 11/20),
    and the ceiling is taken in exact rational arithmetic, so float error never moves a
    boundary: 11 of 20 votes reach 0.55, and 7 of 10 reach 0.7. A `Fraction` is used as is.
    """
    k = _count("k", k)
    frac = _level(level)
    return -(-frac.numerator * k // frac.denominator)


# -- laws ------------------------------------------------------------------------------------


def majority_law(p: float, k: int) -> float:
    """P(a binary majority of k independent voters, each right w.p. p, is right).

    Sum over j > k/2 of C(k, j) p^j (1-p)^(k-j); for even k a tie counts half, as a fair
    coin would break it. `majority` breaks ties deterministically, so compare on odd k.
    """
    p, k = _probability(p), _count("k", k)
    terms = [_binom(k, j, p) for j in range(k // 2 + 1, k + 1)]
    if k % 2 == 0:
        terms.append(0.5 * _binom(k, k // 2, p))
    return min(1.0, math.fsum(terms))  # binomial terms' rounding can exceed 1 by an ulp


def any_of_law(p: float, k: int) -> float:
    """P(at least one of k independent detectors fires on a real event): 1 - (1-p)^k.

    p is each detector's recall.
    """
    p, k = _probability(p), _count("k", k)
    return 1.0 - (1.0 - p) ** k


def quorum_law(p: float, k: int, level: float | Fraction) -> float:
    """P(at least quorum_size(level, k) of k independent voters are right), each w.p. p."""
    p, k = _probability(p), _count("k", k)
    need = quorum_size(level, k)
    return min(1.0, math.fsum(_binom(k, j, p) for j in range(need, k + 1)))


def simulate_votes(
    p: float,
    k: int,
    trials: int,
    rng: np.random.Generator,
    correlation: float = 0.0,
    truth: object = None,
) -> np.ndarray:
    """Binary votes, shape (k, trials), of k voters each right with probability p.

    With probability `correlation` a trial is common-mode: one shared draw decides whether
    every voter is right, so each voter is still right w.p. p but they err together, and
    majority accuracy falls from `majority_law(p, k)` towards p. `truth` is the correct
    0/1 label, one for all trials or one per trial (default: all 1).
    """
    p, k, trials = _probability(p), _count("k", k), _count("trials", trials)
    if not isinstance(rng, np.random.Generator):
        raise VotingError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    rho = _real("correlation", correlation)
    if not 0.0 <= rho <= 1.0:
        raise VotingError(f"correlation = {correlation!r}: must be in [0, 1]")
    target = np.ones(trials, dtype=np.int64) if truth is None else _truth(truth, trials)
    right = rng.random((k, trials)) < p
    common = rng.random(trials) < rho
    shared = rng.random(trials) < p
    right[:, common] = shared[common]
    return np.where(right, target, 1 - target)


# -- internals -------------------------------------------------------------------------------


def _winners(v: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of `v`, the label with the largest total weight (smallest on a tie).

    Sorts (column, label) pairs and sums each run, so memory stays O(K * M) whatever the
    labels are; returns the winning labels and their totals, one per column.
    """
    k, m = v.shape
    col = np.repeat(np.arange(m), k)
    lab = v.T.ravel()
    w = np.tile(weights, m)
    order = np.lexsort((lab, col))  # stable: within a run, voters stay in their order
    col, lab, w = col[order], lab[order], w[order]
    start = np.flatnonzero(np.r_[True, (col[1:] != col[:-1]) | (lab[1:] != lab[:-1])])
    totals = np.add.reduceat(w, start)
    gcol, glab = col[start], lab[start]
    best = np.lexsort((glab, -totals, gcol))
    first = best[np.r_[True, gcol[best][1:] != gcol[best][:-1]]]
    return glab[first], totals[first]


def _out(labels: np.ndarray, flat: bool) -> int | np.ndarray:
    labels = np.asarray(labels, dtype=np.int64)
    return int(labels[0]) if flat else labels


def _votes(votes: object) -> tuple[np.ndarray, bool]:
    """Checked votes as a (K, M) int64 array, and whether the input was 1-D."""
    try:
        a = np.asarray(votes)
    except ValueError as exc:
        raise VotingError("votes must be a rectangular array (one row per voter)") from exc
    if a.ndim not in (1, 2):
        raise VotingError(f"votes must be 1-D (K,) or 2-D (K, M), got shape {a.shape}")
    if a.size == 0:
        raise VotingError(f"votes are empty (shape {a.shape}): need at least one voter")
    if a.dtype == np.bool_:
        a = a.astype(np.int64)
    elif np.issubdtype(a.dtype, np.floating):
        if np.isnan(a).any():
            raise VotingError("votes contain NaN: every voter must cast an integer label")
        bad = a[~np.isfinite(a) | (a != np.round(a))]
        if bad.size:
            raise VotingError(f"votes must be integer labels, got {bad[0].item()!r}")
    elif not np.issubdtype(a.dtype, np.integer):
        raise VotingError(f"votes must be integer labels, got dtype {a.dtype}")
    if (a < 0).any():
        raise VotingError(f"labels must be >= 0, got {a.min().item()!r}")
    if a.max() >= 2**63:
        raise VotingError(f"labels must fit in int64, got {a.max().item()!r}")
    a = a.astype(np.int64)
    return (a[:, None], True) if a.ndim == 1 else (a, False)


def _weights(weights: object, k: int) -> np.ndarray:
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise VotingError("weights must be a 1-D array of numbers, one per voter") from exc
    if w.ndim != 1 or w.shape[0] != k:
        raise VotingError(f"weights must have shape ({k},), one per voter, got {w.shape}")
    if not np.isfinite(w).all():
        raise VotingError("weights must be finite (no NaN or inf)")
    if (w < 0).any():
        raise VotingError(f"weights must be >= 0, got {w.min().item()!r}")
    with np.errstate(over="ignore"):  # an overflowing total is reported below
        total = float(w.sum())
    if not 0 < total < math.inf:
        raise VotingError(f"weights must have a positive, finite total, got {total!r}")
    return w


def _level(level: object) -> Fraction:
    if isinstance(level, Fraction):
        frac = level
    else:
        x = _real("level", level)
        if not math.isfinite(x):
            raise VotingError(f"level = {level!r}: must be a finite number")
        frac = Fraction(repr(x))
    if frac <= Fraction(1, 2):
        raise VotingError(f"level = {level!r}: must be > 0.5 so at most one label can reach it")
    if frac > 1:
        raise VotingError(f"level = {level!r}: must be <= 1 (a share of the votes)")
    return frac


def _truth(truth: object, trials: int) -> np.ndarray:
    t = np.asarray(truth)
    if not np.issubdtype(t.dtype, np.integer) and t.dtype != np.bool_:
        raise VotingError(f"truth must be 0/1 int labels, got dtype {t.dtype}")
    t = np.broadcast_to(t.astype(np.int64), (trials,)) if t.ndim == 0 else t.astype(np.int64)
    if t.shape != (trials,):
        raise VotingError(f"truth must be one label or {trials} labels, got shape {t.shape}")
    if ((t != 0) & (t != 1)).any():
        raise VotingError("truth labels must be 0 or 1")
    return t


def _binom(k: int, j: int, p: float) -> float:
    return math.comb(k, j) * p**j * (1.0 - p) ** (k - j)


def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise VotingError(f"{name} = {value!r}: expected a number")
    return float(value)


def _probability(p: object) -> float:
    x = _real("p", p)
    if not 0.0 <= x <= 1.0:  # also rejects NaN
        raise VotingError(f"p = {p!r}: must be a probability in [0, 1]")
    return x


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise VotingError(f"{name} = {value!r}: expected an integer")
    if value < 1:
        raise VotingError(f"{name} = {value!r}: must be >= 1")
    return int(value)
