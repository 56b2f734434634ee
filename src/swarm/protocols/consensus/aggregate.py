"""Robust aggregation of model updates: rules that bound what f attackers can do.

Federated averaging takes the mean of the updates it receives, so one Sybil that sends a
large enough vector moves the model wherever it likes. The rules here give up some
statistical efficiency for a bound on that damage: each holds under a condition on the
number of updates n and of attackers f. They are pure functions over a 2-D array (one row
per update) so that agents, experiments and property tests share one implementation.

    rule          accepts n >=  the result stays with the honest updates while
    mean          1             f = 0: one attacker moves it anywhere (breakdown point 0)
    median        1             f < n/2 (per coordinate, inside the honest range)
    trimmed-mean  1             f <= floor(beta n) (per coordinate, inside the honest range)
    krum          2f + 3        n > 2f + 2 (Blanchard et al. 2017)
    multi-krum    2f + 3        n > 2f + 2 and 1 <= m <= n - f
    bulyan        4f + 3        n >= 4f + 3 (El Mhamdi et al. 2018)
    foolsgold     1             no count bound: it down-weights Sybils whose histories point
                                the same way (Fung et al. 2020), not a lone attacker

Every function validates what it is given and raises `AggregationError` naming the rule,
the numbers and what is needed; never an IndexError or a numpy warning, because the
callers are agents aggregating whatever their peers sent. Inputs of huge magnitude are
scaled by a power of two internally (exact), so finite inputs never overflow.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "AGGREGATORS",
    "Aggregate",
    "AggregationError",
    "Rule",
    "aggregate",
    "bulyan",
    "bulyan_indices",
    "check_updates",
    "clip",
    "foolsgold",
    "foolsgold_weights",
    "krum",
    "krum_scores",
    "mean",
    "median",
    "multi_krum",
    "multi_krum_indices",
    "trimmed_count",
    "trimmed_mean",
]

# Above this magnitude, sums of squares over 10^4 coordinates and hundreds of rows could
# overflow float64; below it, no scaling happens and results are bit-for-bit unscaled.
_HUGE = 2.0**400


# FoolsGold: 1 - cosine below this is rounding noise (d * eps for d up to ~10^6), not a
# different direction.
_SAME = 1e-9


class AggregationError(ValueError):
    """The updates or the rule's parameters cannot give a meaningful aggregate."""


# --------------------------------------------------------------------------- validation


def _prefix(rule: str | None) -> str:
    return f"{rule}: " if rule else ""


def _row_lengths(obj: Any) -> list[int]:
    try:
        return sorted({len(row) for row in obj})
    except TypeError:
        return []


def _matrix(obj: Any, rule: str | None, what: str) -> np.ndarray:
    where = _prefix(rule)
    try:
        arr = np.asarray(obj)
    except (TypeError, ValueError, OverflowError):
        lengths = _row_lengths(obj)
        if len(lengths) > 1:
            raise AggregationError(
                f"{where}{what} are ragged: rows have lengths {lengths}; "
                "every row must have the same length"
            ) from None
        raise AggregationError(f"{where}{what} must be a 2-D array of numbers") from None
    if arr.dtype.kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError, OverflowError):
            raise AggregationError(
                f"{where}{what} must be numbers (one row of equal length per update)"
            ) from None
    if arr.dtype.kind not in "biuf":
        raise AggregationError(f"{where}{what} must be numbers: got dtype {arr.dtype}")
    if arr.ndim in (1, 2) and arr.shape[0] == 0:
        raise AggregationError(f"{where}no {what}: got 0 rows, need at least one")
    if arr.ndim != 2:
        raise AggregationError(
            f"{where}{what} must be 2-D (one row per update): got shape {arr.shape}"
        )
    if arr.shape[1] == 0:
        raise AggregationError(f"{where}{what} have zero columns: each row needs a value")
    x = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise AggregationError(
            f"{where}{what} contain {int(bad.sum())} non-finite values (NaN or inf) in "
            f"{rows.size} rows (first: row {int(rows[0])}); every value must be finite"
        )
    return x


def check_updates(updates: Any, *, rule: str | None = None) -> np.ndarray:
    """The updates as a finite float64 (n, d) array with n, d >= 1, or AggregationError.

    Refuses empty sets, non-2-D input, ragged rows, zero columns, NaN/inf and non-numbers,
    because each of them would otherwise surface as a numpy warning or a wrong vector deep
    inside a rule. `rule` prefixes the message so callers see which rule refused.
    """
    return _matrix(updates, rule, "updates")


def _check_f(f: Any, rule: str) -> int:
    if isinstance(f, bool) or not isinstance(f, numbers.Integral) or f < 0:
        raise AggregationError(
            f"{rule}: f (the number of attackers to tolerate) must be an int >= 0: got {f!r}"
        )
    return int(f)


def _check_beta(beta: Any) -> float:
    ok = isinstance(beta, numbers.Real) and not isinstance(beta, bool)
    if not ok or not 0.0 <= float(beta) < 0.5:
        raise AggregationError(
            f"trimmed-mean: beta (the fraction trimmed from each end) must be a number in "
            f"[0, 0.5): got {beta!r}"
        )
    return float(beta)


def _need(rule: str, bound: str, n: int, f: int, least: int) -> None:
    if n < least:
        raise AggregationError(
            f"{rule} needs {bound} updates: got n={n}, f={f} (need at least {least})"
        )


def _check_weights(weights: Any, n: int, rule: str) -> np.ndarray:
    """Weights normalised to sum 1 (divided by their maximum first, so no overflow)."""
    try:
        w = np.asarray(weights)
    except (TypeError, ValueError):
        raise AggregationError(f"{rule}: weights must be a 1-D array of numbers") from None
    if w.dtype.kind not in "biuf":
        raise AggregationError(f"{rule}: weights must be numbers: got dtype {w.dtype}")
    if w.shape != (n,):
        raise AggregationError(
            f"{rule}: weights need one value per update, shape ({n},): got shape {w.shape}"
        )
    w = w.astype(np.float64)
    if not np.isfinite(w).all():
        raise AggregationError(f"{rule}: weights must be finite")
    if (w < 0).any():
        raise AggregationError(f"{rule}: weights must be >= 0: got {float(w.min())}")
    top = float(w.max())
    if top <= 0.0:
        raise AggregationError(f"{rule}: weights must have a positive sum: all are 0")
    w = w / top
    return w / w.sum()


# --------------------------------------------------------------------------- numerics


def _exponent(x: np.ndarray) -> int:
    """The power of two that brings huge inputs into range; 0 for ordinary data."""
    top = float(np.abs(x).max())
    return int(np.frexp(top)[1]) if top > _HUGE else 0


def _down(x: np.ndarray, e: int) -> np.ndarray:
    return np.ldexp(x, -e) if e else x


def _up(v: np.ndarray, e: int) -> np.ndarray:
    if not e:
        return v
    with np.errstate(over="ignore"):
        return np.ldexp(v, e)


def _squared_distances(x: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances by the Gram trick.

    Rows are centred on the coordinate-wise median first: distances do not change, and
    far-away attackers no longer inflate the norms whose cancellation costs precision.
    """
    z = x - np.median(x, axis=0)
    sq = np.einsum("ij,ij->i", z, z)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)
    d2 = (d2 + d2.T) / 2.0
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, 0.0)
    return d2


def _neighbour_scores(d2: np.ndarray, k: int) -> np.ndarray:
    """Each row's sum of its k smallest squared distances to the other rows."""
    n = len(d2)
    if k <= 0 or n == 1:
        return np.zeros(n)
    others = d2.copy()
    np.fill_diagonal(others, np.inf)
    return np.sort(others, axis=1)[:, :k].sum(axis=1)


def _clip_to(v: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Keep a mean inside the range of what it averaged, which rounding can leave by an ulp."""
    return np.clip(v, values.min(axis=0), values.max(axis=0))


# --------------------------------------------------------------------------- coordinate-wise


def mean(updates: Any, weights: Any = None) -> np.ndarray:
    """The (weighted) mean: FedAvg's rule, the most efficient with no attackers.

    Breakdown: f = 0. A single attacker moves it arbitrarily (breakdown point 0).
    `weights` (e.g. sample counts) are 1-D, one per row, finite, >= 0, positive sum.
    """
    x = check_updates(updates, rule="mean")
    e = _exponent(x)
    xs = _down(x, e)
    if weights is None:
        return _up(xs.mean(axis=0), e)
    w = _check_weights(weights, len(x), "mean")
    return _up(_clip_to(w @ xs, xs), e)


def median(updates: Any) -> np.ndarray:
    """The coordinate-wise median.

    Breakdown: f < n/2. Each coordinate then stays inside the honest rows' range.
    """
    x = check_updates(updates, rule="median")
    e = _exponent(x)
    return _up(np.median(_down(x, e), axis=0), e)


def trimmed_count(n: int, beta: float) -> int:
    """k = floor(beta n): rows trimmed from each end per coordinate (and attackers tolerated).

    A tolerance of 1e-9 makes floor(0.29 * 100) 29, as meant, not 28; k < n/2 always.
    """
    beta = _check_beta(beta)
    return min(math.floor(beta * n + 1e-9), (n - 1) // 2)


def trimmed_mean(updates: Any, beta: float) -> np.ndarray:
    """Per coordinate, drop the k = floor(beta n) smallest and largest values, average the rest.

    Breakdown: f <= k attackers; each coordinate then stays inside the honest range.
    beta is the fraction trimmed from EACH end, 0 <= beta < 0.5.
    """
    x = check_updates(updates, rule="trimmed-mean")
    n = len(x)
    k = trimmed_count(n, beta)
    e = _exponent(x)
    rest = np.sort(_down(x, e), axis=0)[k : n - k]
    return _up(_clip_to(rest.mean(axis=0), rest), e)


# --------------------------------------------------------------------------- Krum family


def _krum_prepared(updates: Any, f: Any, rule: str) -> tuple[np.ndarray, int, np.ndarray, int]:
    x = check_updates(updates, rule=rule)
    f = _check_f(f, rule)
    _need(rule, "n > 2f + 2", len(x), f, 2 * f + 3)
    e = _exponent(x)
    scores = _neighbour_scores(_squared_distances(_down(x, e)), len(x) - f - 2)
    return x, f, scores, e


def krum_scores(updates: Any, f: int) -> np.ndarray:
    """Per row, the sum of squared distances to its n - f - 2 nearest other rows.

    Blanchard et al. 2017: an honest row has many honest rows close by, an attacker has
    to be far from them to do harm, so its score grows. Breakdown: n > 2f + 2.
    """
    _, _, scores, e = _krum_prepared(updates, f, "krum")
    return _up(scores, 2 * e)


def krum(updates: Any, f: int) -> np.ndarray:
    """The row with the lowest Krum score (ties: lowest index).

    Breakdown: n > 2f + 2 (n >= 2f + 3), f >= 0.
    """
    x, _, scores, _ = _krum_prepared(updates, f, "krum")
    return x[int(np.argmin(scores))].copy()


def _check_m(m: Any, n: int, f: int) -> int:
    if isinstance(m, bool) or not isinstance(m, numbers.Integral) or not 1 <= int(m) <= n - f:
        raise AggregationError(f"multi-krum needs 1 <= m <= n - f: got m={m!r} with n={n}, f={f}")
    return int(m)


def multi_krum_indices(updates: Any, f: int, m: int) -> np.ndarray:
    """Indices (ascending) of the m rows with the lowest Krum scores, stable on ties.

    Breakdown: n > 2f + 2 and 1 <= m <= n - f.
    """
    x, f, scores, _ = _krum_prepared(updates, f, "multi-krum")
    m = _check_m(m, len(x), f)
    return np.sort(np.argsort(scores, kind="stable")[:m])


def multi_krum(updates: Any, f: int, m: int) -> np.ndarray:
    """The mean of the m rows Multi-Krum selects: Krum's safety, less of its variance.

    Breakdown: n > 2f + 2 and 1 <= m <= n - f.
    """
    x = check_updates(updates, rule="multi-krum")
    return mean(x[multi_krum_indices(x, f, m)])


def _bulyan_selection(xs: np.ndarray, f: int) -> np.ndarray:
    n = len(xs)
    d2 = _squared_distances(xs)
    remaining = np.arange(n)
    chosen: list[int] = []
    for _ in range(n - 2 * f):
        r = len(remaining)
        # Krum on the remaining set with the same f; once that set is smaller than Krum's
        # own bound, keep at least one neighbour so the score still measures closeness.
        k = min(max(r - f - 2, 1), r - 1)
        scores = _neighbour_scores(d2[np.ix_(remaining, remaining)], k)
        ties = np.flatnonzero(scores == scores.min())
        # With one neighbour, mutual nearest neighbours always tie: prefer the
        # lexicographically smallest row (then the lowest index), so row order never matters.
        rows = xs[remaining[ties]]
        best = int(ties[np.lexsort(rows.T[::-1])[0]])
        chosen.append(int(remaining[best]))
        remaining = np.delete(remaining, best)
    return np.sort(np.array(chosen, dtype=np.int64))


def _bulyan(updates: Any, f: Any) -> tuple[np.ndarray, np.ndarray]:
    x = check_updates(updates, rule="bulyan")
    f = _check_f(f, "bulyan")
    _need("bulyan", "n >= 4f + 3", len(x), f, 4 * f + 3)
    e = _exponent(x)
    xs = _down(x, e)
    chosen = _bulyan_selection(xs, f)
    selected = np.sort(xs[chosen], axis=0)
    beta = len(selected) - 2 * f
    distance = np.abs(selected - np.median(selected, axis=0))
    order = np.argsort(distance, axis=0, kind="stable")[:beta]
    closest = np.take_along_axis(selected, order, axis=0)
    return _up(_clip_to(closest.mean(axis=0), closest), e), chosen


def bulyan_indices(updates: Any, f: int) -> np.ndarray:
    """The theta = n - 2f rows (ascending) Bulyan selects by Krum applied repeatedly.

    Each round runs Krum on the rows not yet selected with the same f, using at least one
    neighbour once the remaining set is below Krum's own bound; ties go to the
    lexicographically smallest row, then the lowest index.

    Breakdown: n >= 4f + 3.
    """
    x = check_updates(updates, rule="bulyan")
    f = _check_f(f, "bulyan")
    _need("bulyan", "n >= 4f + 3", len(x), f, 4 * f + 3)
    return _bulyan_selection(_down(x, _exponent(x)), f)


def bulyan(updates: Any, f: int) -> np.ndarray:
    """Bulyan (El Mhamdi et al. 2018): Krum selection, then a trimmed mean around the median.

    Krum alone lets an attacker hide a large push in one coordinate; Bulyan then keeps,
    per coordinate, the beta = theta - 2f selected values closest to their median and
    averages them. Ties in closeness go to the smaller value, so row order never matters.
    Breakdown: n >= 4f + 3.
    """
    return _bulyan(updates, f)[0]


# --------------------------------------------------------------------------- clipping, FoolsGold


def _check_max_norm(max_norm: Any) -> float:
    ok = isinstance(max_norm, numbers.Real) and not isinstance(max_norm, bool)
    if not ok or not math.isfinite(max_norm) or max_norm <= 0:
        raise AggregationError(f"clip: max_norm must be a finite number > 0: got {max_norm!r}")
    return float(max_norm)


def clip(updates: Any, max_norm: float) -> np.ndarray:
    """Each row scaled down to L2 norm <= max_norm (up to rounding); shorter rows untouched.

    Norm clipping bounds what any single update can contribute, which is what makes the
    mean tolerable at all under attack (and differential privacy possible).
    """
    x = check_updates(updates, rule="clip")
    limit = _check_max_norm(max_norm)
    top = np.abs(x).max(axis=1)
    safe = np.where(top > 0.0, top, 1.0)
    unit = x / safe[:, None]
    root = np.sqrt(np.einsum("ij,ij->i", unit, unit))  # norm / top, >= 1 when top > 0
    with np.errstate(over="ignore"):
        norms = top * root
    long = norms > limit
    out = x.copy()
    out[long] = unit[long] * (limit / root[long])[:, None]
    return out


def foolsgold_weights(histories: Any) -> np.ndarray:
    """FoolsGold (Fung, Yoon, Beschastnikh 2020): weights in [0, 1], ~0 for Sybils.

    Sybils pushing one goal send updates whose histories point the same way, while honest
    clients' histories differ. Weights fall with each identity's largest cosine similarity
    to another (pardoning honest clients that merely resemble a Sybil), then go through
    the paper's logit (kappa = 1). `histories` has one row per identity, the sum of its
    past updates; zero rows have cosine 0 with everyone. Breakdown: no count bound; a
    lone attacker with its own direction gets full weight.
    """
    h = _matrix(histories, "foolsgold", "histories")
    n = len(h)
    if n == 1:
        return np.ones(1)
    top = np.abs(h).max(axis=1)
    u = h / np.where(top > 0.0, top, 1.0)[:, None]
    norms = np.sqrt(np.einsum("ij,ij->i", u, u))
    unit = np.divide(u, norms[:, None], out=np.zeros_like(u), where=norms[:, None] > 0.0)
    cs = np.clip(unit @ unit.T, -1.0, 1.0)
    np.fill_diagonal(cs, -np.inf)
    # v_i = max_j cs_ij, floored at 0 as in the reference code (its diagonal holds 0), so
    # that v_j > v_i implies v_j > 0 and pardoning never divides by zero.
    v = np.maximum(cs.max(axis=1), 0.0)
    pardon = v[None, :] > v[:, None]
    ratio = np.divide(
        np.broadcast_to(v[:, None], (n, n)), v[None, :], out=np.ones((n, n)), where=pardon
    )
    alpha = np.clip(1.0 - (cs * ratio).max(axis=1), 0.0, 1.0)
    # Copies have cosine 1 only up to rounding; rescaling by max(alpha) below would blow
    # that noise up to full weight, so directions equal within _SAME count as copies.
    alpha[alpha < _SAME] = 0.0
    best = float(alpha.max())
    if best <= 0.0:
        return np.zeros(n)
    alpha = alpha / best
    alpha[alpha == 1.0] = 0.99
    weights = np.zeros(n)
    positive = alpha > 0.0
    a = alpha[positive]
    weights[positive] = np.log(a / (1.0 - a)) + 0.5
    return np.clip(weights, 0.0, 1.0)


def _foolsgold(x: np.ndarray, histories: Any) -> tuple[np.ndarray, np.ndarray]:
    h = _matrix(histories, "foolsgold", "histories")
    if len(h) != len(x):
        raise AggregationError(
            f"foolsgold needs one history per update: got {len(h)} histories for {len(x)} updates"
        )
    w = foolsgold_weights(h)
    if not (w > 0.0).any():
        raise AggregationError("foolsgold: every identity looks like a sybil (all weights 0)")
    return mean(x, w), np.flatnonzero(w > 0.0)


def foolsgold(updates: Any, histories: Any) -> np.ndarray:
    """The mean of `updates` weighted by `foolsgold_weights(histories)` (row i is identity i).

    Raises AggregationError when every weight is 0. Breakdown: see `foolsgold_weights`.
    """
    return _foolsgold(check_updates(updates, rule="foolsgold"), histories)[0]


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True, eq=False)
class Aggregate:
    """A rule's result, and which rows it was made of (for the books on who was left out).

    `kept` holds the row indices a selection rule let in (Krum: one; Multi-Krum, Bulyan:
    the selected; FoolsGold: weight > 0); None for mean and coordinate-wise rules.
    """

    vector: np.ndarray
    kept: np.ndarray | None


@dataclass(frozen=True)
class Rule:
    """A registered rule and what it promises, for scenarios, tables and callers."""

    name: str
    doc: str
    breakdown: str
    min_updates: Callable[[int], int]  # smallest n the rule accepts with f attackers
    max_attackers: Callable[[int, float], int]  # largest f guarded for (n, beta); -1: none


AGGREGATORS: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule(
            "mean",
            "(weighted) mean, FedAvg's rule",
            "f = 0: one attacker moves it arbitrarily",
            lambda f: 1,
            lambda n, beta: 0,
        ),
        Rule(
            "median",
            "coordinate-wise median",
            "f < n/2",
            lambda f: 1,
            lambda n, beta: (n - 1) // 2,
        ),
        Rule(
            "trimmed-mean",
            "coordinate-wise mean without the floor(beta n) extremes at each end",
            "f <= floor(beta n)",
            lambda f: 1,
            lambda n, beta: trimmed_count(n, beta),
        ),
        Rule(
            "krum",
            "the update closest to its n - f - 2 nearest neighbours",
            "n > 2f + 2",
            lambda f: 2 * f + 3,
            lambda n, beta: max((n - 3) // 2, -1),
        ),
        Rule(
            "multi-krum",
            "mean of the m updates with the best Krum scores",
            "n > 2f + 2, 1 <= m <= n - f",
            lambda f: 2 * f + 3,
            lambda n, beta: max((n - 3) // 2, -1),
        ),
        Rule(
            "bulyan",
            "Krum selection of n - 2f updates, then a trimmed mean around their median",
            "n >= 4f + 3",
            lambda f: 4 * f + 3,
            lambda n, beta: max((n - 3) // 4, -1),
        ),
        Rule(
            "foolsgold",
            "mean weighted down for identities whose histories point the same way",
            "no count bound: only Sybils that share a direction are down-weighted",
            lambda f: 1,
            lambda n, beta: 0,
        ),
    )
}


def aggregate(
    name: str,
    updates: Any,
    *,
    f: int = 0,
    beta: float = 0.1,
    m: int | None = None,
    weights: Any = None,
    histories: Any = None,
    max_norm: float | None = None,
) -> Aggregate:
    """Run the rule called `name` on `updates`, after clipping them to `max_norm` if given.

    One entry point so that a server can switch rules from configuration: options a rule
    does not use are ignored (`weights` are sample weights for "mean" only, `beta` is for
    "trimmed-mean", `m` for "multi-krum" (default n - f), `histories` for "foolsgold",
    which requires one row per update); `f` is validated for every rule.
    """
    if name not in AGGREGATORS:
        raise AggregationError(
            f"unknown aggregator {name!r}: choose one of {', '.join(AGGREGATORS)}"
        )
    x = check_updates(updates, rule=name)
    f = _check_f(f, name)
    if max_norm is not None:
        x = clip(x, max_norm)
    if name == "mean":
        return Aggregate(mean(x, weights), None)
    if name == "median":
        return Aggregate(median(x), None)
    if name == "trimmed-mean":
        return Aggregate(trimmed_mean(x, beta), None)
    if name == "krum":
        x, f, scores, _ = _krum_prepared(x, f, "krum")
        best = int(np.argmin(scores))
        return Aggregate(x[best].copy(), np.array([best]))
    if name == "multi-krum":
        chosen = multi_krum_indices(x, f, len(x) - f if m is None else m)
        return Aggregate(mean(x[chosen]), chosen)
    if name == "bulyan":
        return Aggregate(*_bulyan(x, f))
    if histories is None:
        raise AggregationError(
            "foolsgold needs histories: one row per update, the sum of that identity's past updates"
        )
    vector, kept = _foolsgold(x, histories)
    return Aggregate(vector, kept)
