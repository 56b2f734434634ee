"""Tests for swarm.protocols.consensus.aggregate: known values, refusals that name the numbers, and
properties at and beyond each rule's breakdown bound."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from swarm.protocols.consensus.aggregate import (
    AGGREGATORS,
    Aggregate,
    AggregationError,
    aggregate,
    bulyan,
    bulyan_indices,
    check_updates,
    clip,
    foolsgold,
    foolsgold_weights,
    krum,
    krum_scores,
    mean,
    median,
    multi_krum,
    multi_krum_indices,
    trimmed_count,
    trimmed_mean,
)
from swarm.testing.aggregation import (
    finite_floats,
    honest_and_byzantine,
    update_matrices,
)

BETA = 0.25
POINTS = [[0.0], [1.0], [2.0], [3.0], [100.0]]  # Krum scores with f=1: [5, 2, 2, 5, 19013]


def gaussian(seed: int, n: int, d: int) -> np.ndarray:
    """Continuous random rows: no ties between scores, so selections are unique."""
    return np.random.default_rng(seed).normal(size=(n, d))


def inside(out: np.ndarray, rows: np.ndarray) -> bool:
    return bool(np.all(rows.min(axis=0) <= out) and np.all(out <= rows.max(axis=0)))


# --------------------------------------------------------------------------- reference code


def ref_scores(x: np.ndarray, k: int) -> list[float]:
    scores = []
    for i in range(len(x)):
        dists = sorted(float(np.sum((x[i] - x[j]) ** 2)) for j in range(len(x)) if j != i)
        scores.append(sum(dists[:k]))
    return scores


def ref_bulyan(x: np.ndarray, f: int) -> tuple[np.ndarray, list[int]]:
    """Bulyan written out with loops, straight from the description."""
    remaining = list(range(len(x)))
    chosen = []
    for _ in range(len(x) - 2 * f):
        r = len(remaining)
        k = min(max(r - f - 2, 1), r - 1)
        scores = ref_scores(x[remaining], k) if r > 1 else [0.0]
        ties = [i for i, score in zip(remaining, scores, strict=True) if score == min(scores)]
        best = min(ties, key=lambda i: (tuple(x[i]), i))
        chosen.append(best)
        remaining.remove(best)
    chosen.sort()
    beta = len(chosen) - 2 * f
    out = []
    for j in range(x.shape[1]):
        values = sorted(x[chosen, j])
        centre = float(np.median(values))
        closest = sorted(values, key=lambda v: abs(v - centre))[:beta]
        out.append(sum(closest) / beta)
    return np.array(out), chosen


# --------------------------------------------------------------------------- check_updates


def test_check_updates_converts_to_float64() -> None:
    out = check_updates([[1, 2], [3, 4]])
    assert out.dtype == np.float64 and out.shape == (2, 2)
    np.testing.assert_array_equal(out, [[1.0, 2.0], [3.0, 4.0]])


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ([], "0 rows"),
        (np.empty((0, 3)), "0 rows"),
        ([1.0, 2.0], "2-D"),
        (np.zeros((2, 2, 2)), "2-D"),
        ([[1.0, 2.0], [3.0]], "ragged"),
        (np.zeros((3, 0)), "zero columns"),
        ([["a", "b"]], "numbers"),
        ([[1j, 2.0]], "numbers"),
        (np.array([[object()]], dtype=object), "numbers"),
        ([[math.nan, 1.0], [math.inf, -math.inf]], "3 non-finite"),
    ],
)
def test_check_updates_refuses(bad: Any, words: str) -> None:
    with pytest.raises(AggregationError, match=words):
        check_updates(bad)


def test_rules_name_themselves_when_refusing_bad_updates() -> None:
    for rule in ("median", "krum", "bulyan"):
        with pytest.raises(AggregationError, match=f"^{rule}: .*non-finite"):
            aggregate(rule, [[math.nan]])


# --------------------------------------------------------------------------- mean, median, trimmed


def test_mean_known_and_weighted() -> None:
    x = [[0.0, 2.0], [2.0, 4.0]]
    np.testing.assert_allclose(mean(x), [1.0, 3.0])
    np.testing.assert_allclose(mean(x, weights=[3, 1]), [0.5, 2.5])
    np.testing.assert_allclose(mean(x, weights=[0, 5]), [2.0, 4.0])


@pytest.mark.parametrize(
    ("weights", "words"),
    [
        ([1.0], r"shape \(2,\)"),
        ([[1.0, 1.0]], r"shape \(2,\)"),
        ([1.0, -1.0], ">= 0"),
        ([1.0, math.nan], "finite"),
        ([0.0, 0.0], "positive sum"),
        (["a", "b"], "numbers"),
    ],
)
def test_mean_refuses_bad_weights(weights: Any, words: str) -> None:
    with pytest.raises(AggregationError, match=f"mean: .*{words}"):
        mean([[0.0], [1.0]], weights=weights)


def test_one_attacker_moves_the_mean_anywhere() -> None:
    honest = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    target = np.array([1e6, -1e6])
    attacker = 4 * target - honest.sum(axis=0)
    x = np.vstack([honest, attacker])
    np.testing.assert_allclose(mean(x), target)
    assert inside(median(x), honest)  # one attacker of four: the median holds


@given(
    update_matrices(n=st.integers(1, 8), d=st.integers(1, 4), elements=finite_floats(1e3)),
    hnp.arrays(np.float64, 4, elements=finite_floats(1e6)),
)
def test_mean_breakdown_point_is_zero(honest: np.ndarray, target: np.ndarray) -> None:
    """For any honest rows, one attacker can put the mean on any target it likes."""
    target = target[: honest.shape[1]]
    attacker = (len(honest) + 1) * target - honest.sum(axis=0)
    out = mean(np.vstack([honest, attacker]))
    np.testing.assert_allclose(out, target, rtol=1e-9, atol=1e-6)


def test_median_known_values() -> None:
    np.testing.assert_array_equal(median([[1.0, 9.0], [3.0, 7.0], [2.0, 8.0]]), [2.0, 8.0])
    np.testing.assert_array_equal(median([[1.0], [2.0], [4.0], [10.0]]), [3.0])


def test_median_breaks_down_at_half() -> None:
    """n = 4, f = 2 = n/2: the attackers drag the median outside the honest range."""
    honest = np.array([[0.0], [1.0]])
    x = np.vstack([honest, [[100.0], [100.0]]])
    assert median(x)[0] == 50.5
    assert not inside(median(x), honest)


def test_trimmed_mean_known_values() -> None:
    x = [[1.0, -5.0], [2.0, 0.0], [3.0, 1.0], [4.0, 2.0], [100.0, 3.0]]
    np.testing.assert_allclose(trimmed_mean(x, 0.2), [3.0, 1.0])
    np.testing.assert_allclose(trimmed_mean(x, 0.0), mean(x))
    np.testing.assert_allclose(trimmed_mean(x, 0.49), median(x))


def test_trimmed_count_is_the_intended_floor() -> None:
    assert trimmed_count(100, 0.29) == 29  # 0.29 * 100 is 28.999999999999996 in floats
    assert trimmed_count(10, 0.1) == 1
    assert trimmed_count(9, 0.1) == 0
    assert trimmed_count(100, 0.5 - 1e-12) == 49  # never trims everything


@pytest.mark.parametrize("beta", [0.5, -0.1, 1.0, math.nan, math.inf, "0.2", True, None])
def test_trimmed_mean_refuses_beta(beta: Any) -> None:
    with pytest.raises(AggregationError, match=r"trimmed-mean: beta .*\[0, 0\.5\)"):
        trimmed_mean([[1.0], [2.0]], beta)


# --------------------------------------------------------------------------- Krum family


def test_krum_scores_and_choice() -> None:
    np.testing.assert_allclose(krum_scores(POINTS, 1), [5.0, 2.0, 2.0, 5.0, 19013.0])
    np.testing.assert_array_equal(krum(POINTS, 1), [1.0])  # tie 1 vs 2: lowest index


def test_krum_ties_go_to_the_lowest_index() -> None:
    x = [[5.0, 5.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [9.0, 9.0]]
    assert aggregate("krum", x, f=1).kept.tolist() == [1]


def test_krum_matches_the_reference_loops() -> None:
    x = gaussian(1, 12, 7)
    np.testing.assert_allclose(krum_scores(x, 3), ref_scores(x, 12 - 3 - 2), rtol=1e-10)


def test_multi_krum_known_values() -> None:
    np.testing.assert_array_equal(multi_krum_indices(POINTS, 1, 3), [0, 1, 2])  # stable tie
    np.testing.assert_array_equal(multi_krum_indices(POINTS, 1, 1), [1])
    np.testing.assert_allclose(multi_krum(POINTS, 1, 4), [1.5])


@pytest.mark.parametrize(("n", "f"), [(5, 2), (2, 0), (6, 2), (7, 3)])
def test_krum_refuses_too_few_updates(n: int, f: int) -> None:
    message = f"krum needs n > 2f + 2 updates: got n={n}, f={f} (need at least {2 * f + 3})"
    with pytest.raises(AggregationError) as info:
        krum(np.zeros((n, 2)), f)
    assert str(info.value) == message
    with pytest.raises(AggregationError, match=r"^multi-krum needs n > 2f"):
        multi_krum(np.zeros((n, 2)), f, 1)


@pytest.mark.parametrize("f", [-1, 1.5, True, "1", None])
def test_krum_refuses_bad_f(f: Any) -> None:
    with pytest.raises(AggregationError, match=r"krum: f .* int >= 0"):
        krum(np.zeros((9, 2)), f)


@pytest.mark.parametrize("m", [0, 5, -1, 2.0, True])
def test_multi_krum_refuses_bad_m(m: Any) -> None:
    with pytest.raises(
        AggregationError, match=r"multi-krum needs 1 <= m <= n - f: got m=.* n=5, f=1"
    ):
        multi_krum(POINTS, 1, m)


def test_bulyan_matches_the_reference_loops() -> None:
    for seed, (n, f) in enumerate([(7, 1), (11, 2), (15, 3), (8, 1), (3, 0)]):
        x = gaussian(seed, n, 5)
        expected, chosen = ref_bulyan(x, f)
        assert bulyan_indices(x, f).tolist() == chosen
        np.testing.assert_allclose(bulyan(x, f), expected, rtol=1e-12, atol=1e-12)


def test_bulyan_leaves_out_the_attacker() -> None:
    x = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [1000.0]])
    assert 6 not in bulyan_indices(x, 1)
    assert 0.0 <= bulyan(x, 1)[0] <= 5.0


@pytest.mark.parametrize(("n", "f"), [(6, 1), (10, 2), (2, 0)])
def test_bulyan_refuses_too_few_updates(n: int, f: int) -> None:
    message = f"bulyan needs n >= 4f + 3 updates: got n={n}, f={f} (need at least {4 * f + 3})"
    with pytest.raises(AggregationError) as info:
        bulyan(np.zeros((n, 2)), f)
    assert str(info.value) == message
    with pytest.raises(AggregationError, match=r"^bulyan needs"):
        bulyan_indices(np.zeros((n, 2)), f)


@given(st.integers(0, 6), st.integers(1, 4))
def test_krum_and_bulyan_refuse_at_the_bound(f: int, d: int) -> None:
    with pytest.raises(AggregationError, match="krum needs n > 2f"):
        krum(np.ones((2 * f + 2, d)), f)
    with pytest.raises(AggregationError, match="bulyan needs n >= 4f"):
        bulyan(np.ones((4 * f + 2, d)), f)
    krum(np.ones((2 * f + 3, d)), f)
    bulyan(np.ones((4 * f + 3, d)), f)


@given(honest_and_byzantine(rule="krum", attackers="over-bound"))
def test_krum_refuses_more_attackers_than_it_tolerates(case: Any) -> None:
    updates, _, f = case
    with pytest.raises(AggregationError, match="krum needs"):
        krum(updates, f)


# --------------------------------------------------------------------------- clip, FoolsGold


def test_clip_scales_long_rows_only() -> None:
    out = clip([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]], 1.0)
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]])


def test_clip_handles_huge_rows() -> None:
    out = clip([[1e308, 1e308, -1e308]], 2.0)
    np.testing.assert_allclose(out, [[2 / math.sqrt(3), 2 / math.sqrt(3), -2 / math.sqrt(3)]])


@pytest.mark.parametrize("max_norm", [0.0, -1.0, math.inf, math.nan, "1", True])
def test_clip_refuses_bad_max_norm(max_norm: Any) -> None:
    with pytest.raises(AggregationError, match="clip: max_norm must be a finite number > 0"):
        clip([[1.0]], max_norm)


@given(update_matrices(), st.floats(1e-3, 1e3))
def test_clip_bounds_norms_and_keeps_directions(x: np.ndarray, max_norm: float) -> None:
    out = clip(x, max_norm)
    norms = np.linalg.norm(out, axis=1)
    assert np.all(norms <= max_norm * (1 + 1e-12))
    short = np.linalg.norm(x, axis=1) <= max_norm
    np.testing.assert_array_equal(out[short], x[short])
    assert np.all((out == 0) | (np.sign(out) == np.sign(x)))


def test_foolsgold_zeroes_colluding_sybils_and_keeps_the_honest() -> None:
    rng = np.random.default_rng(7)
    honest = rng.normal(size=(10, 200))
    sybils = np.repeat(rng.normal(size=(1, 200)), 5, axis=0)
    w = foolsgold_weights(np.vstack([honest, sybils]))
    np.testing.assert_allclose(w[:10], 1.0)
    np.testing.assert_allclose(w[10:], 0.0, atol=1e-6)


def test_foolsgold_single_identity_and_degenerate_histories() -> None:
    np.testing.assert_array_equal(foolsgold_weights([[3.0, -1.0]]), [1.0])
    np.testing.assert_array_equal(foolsgold_weights(np.zeros((4, 3))), np.ones(4))
    np.testing.assert_array_equal(foolsgold_weights([[1.0, 2.0]] * 3), np.zeros(3))


def test_foolsgold_refuses_when_everyone_looks_like_a_sybil() -> None:
    with pytest.raises(AggregationError, match=r"^foolsgold: every identity looks like a sybil"):
        foolsgold([[1.0], [2.0]], [[1.0, 1.0], [2.0, 2.0]])
    with pytest.raises(AggregationError, match="one history per update: got 1 histories for 2"):
        foolsgold([[1.0], [2.0]], [[1.0, 1.0]])


def test_foolsgold_weights_the_mean() -> None:
    histories = [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]  # the last two collude
    np.testing.assert_allclose(foolsgold([[4.0], [-8.0], [-8.0]], histories), [4.0])


@given(update_matrices(n=st.integers(1, 12), d=st.integers(1, 6)))
def test_foolsgold_weights_are_in_the_unit_interval(histories: np.ndarray) -> None:
    w = foolsgold_weights(histories)
    assert w.shape == (len(histories),)
    assert np.all((w >= 0.0) & (w <= 1.0))


# --------------------------------------------------------------------------- registry, dispatch


def test_registry() -> None:
    assert list(AGGREGATORS) == [
        "mean", "median", "trimmed-mean", "krum", "multi-krum", "bulyan", "foolsgold",
    ]  # fmt: skip
    assert [rule.min_updates(2) for rule in AGGREGATORS.values()] == [1, 1, 1, 7, 7, 11, 1]
    for name, rule in AGGREGATORS.items():
        assert rule.name == name and rule.doc and rule.breakdown
    assert AGGREGATORS["krum"].max_attackers(9, 0.1) == 3
    assert AGGREGATORS["bulyan"].max_attackers(2, 0.1) == -1
    assert AGGREGATORS["trimmed-mean"].max_attackers(10, 0.2) == 2


def test_aggregate_refuses_unknown_rule() -> None:
    with pytest.raises(AggregationError, match="unknown aggregator 'avg': choose one of mean, "):
        aggregate("avg", [[1.0]])


def test_aggregate_dispatch_and_kept() -> None:
    x = np.array(POINTS)
    result = aggregate("krum", x, f=1)
    assert isinstance(result, Aggregate)
    assert result.kept.tolist() == [1] and result.vector.tolist() == [1.0]
    assert aggregate("multi-krum", x, f=1).kept.tolist() == [0, 1, 2, 3]  # m = n - f
    assert aggregate("multi-krum", x, f=1, m=2).kept.tolist() == [1, 2]
    assert aggregate("median", x).kept is None
    assert aggregate("mean", x, weights=[1, 1, 1, 1, 0]).vector.tolist() == [1.5]
    assert aggregate("trimmed-mean", x, beta=0.2).vector.tolist() == [2.0]
    y = gaussian(3, 7, 2)
    result = aggregate("bulyan", y, f=1)
    assert result.kept.tolist() == bulyan_indices(y, 1).tolist()
    np.testing.assert_array_equal(result.vector, bulyan(y, 1))
    histories = [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]
    assert aggregate("foolsgold", [[1.0]] * 3, histories=histories).kept.tolist() == [0]


def test_aggregate_clips_first() -> None:
    result = aggregate("mean", [[3.0, 4.0], [0.0, 0.0]], max_norm=1.0)
    np.testing.assert_allclose(result.vector, [0.3, 0.4])
    with pytest.raises(AggregationError, match="clip: max_norm"):
        aggregate("mean", [[1.0]], max_norm=0.0)


def test_aggregate_refuses_missing_histories_and_bad_f() -> None:
    with pytest.raises(AggregationError, match="foolsgold needs histories"):
        aggregate("foolsgold", [[1.0]])
    with pytest.raises(AggregationError, match=r"median: f .* int >= 0"):
        aggregate("median", [[1.0]], f=-1)


def test_no_warnings_on_huge_values() -> None:
    """pytest turns RuntimeWarning into an error, so overflow would fail here."""
    x = np.array([[1e308, -1e308], [1.0, 2.0], [3.0, 1.0], [2.0, 2.0], [1.5, 1.5], [1, 1]])
    x = np.vstack([x, [[2.0, 1.0]]])
    for name in AGGREGATORS:
        out = aggregate(name, x, f=1, histories=np.abs(gaussian(0, 7, 3))).vector
        assert np.all(np.isfinite(out))
    assert aggregate("krum", x, f=1).kept[0] != 0
    assert np.all(krum_scores(x, 1)[1:] < krum_scores(x, 1)[0])


# --------------------------------------------------------------------------- breakdown properties


@given(
    st.one_of(
        honest_and_byzantine(rule="median"),
        honest_and_byzantine(rule="median", attackers="worst-tolerated"),
    )
)
def test_median_stays_in_the_honest_range(case: Any) -> None:
    updates, honest, f = case
    assert f < len(updates) / 2
    assert inside(median(updates), updates[honest])


@given(
    st.one_of(
        honest_and_byzantine(rule="trimmed-mean", beta=BETA),
        honest_and_byzantine(rule="trimmed-mean", beta=BETA, attackers="worst-tolerated"),
    )
)
def test_trimmed_mean_stays_in_the_honest_range(case: Any) -> None:
    updates, honest, f = case
    assert f <= math.floor(BETA * len(updates))
    assert inside(trimmed_mean(updates, BETA), updates[honest])


@st.composite
def ball_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int, float, float]:
    """Honest rows in the ball B(c, r); attackers at distance >= R from c, where

        (n - 2f - 1)(R - r)^2 > (n - f - 2)(2r)^2.

    Why that suffices: two honest rows are at most 2r apart, and an honest row has
    n - f - 1 honest others, so its score (the n - f - 2 nearest) is at most
    (n - f - 2)(2r)^2. An attacker is at least R - r from every honest row (triangle
    inequality); among its n - f - 2 nearest, at most f - 1 are other attackers (maybe at
    distance 0), so at least n - 2f - 1 >= 1 are honest, and its score is at least
    (n - 2f - 1)(R - r)^2. Hence every attacker scores worse than every honest row.
    """
    f = draw(st.integers(0, 3))
    n = draw(st.integers(2 * f + 3, 2 * f + 8))
    d = draw(st.integers(1, 4))
    c = draw(hnp.arrays(np.float64, d, elements=st.floats(-1e3, 1e3)))
    r = draw(st.floats(0.01, 10.0))
    raw = draw(hnp.arrays(np.float64, (n - f, d), elements=st.floats(-1.0, 1.0)))
    honest = c + r * raw / math.sqrt(d)  # |raw row| <= sqrt(d)
    slack = draw(st.floats(1.05, 10.0))
    big_r = r + 2 * r * math.sqrt((n - f - 2) / (n - 2 * f - 1)) * slack
    shape = (1, d) if draw(st.booleans()) else (f, d)  # (1, d): colluding, on one point
    dirs = draw(hnp.arrays(np.float64, shape, elements=st.floats(-1.0, 1.0)))
    dirs[np.linalg.norm(dirs, axis=1) < 1e-3] = 1.0
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    far = np.array(draw(st.lists(st.floats(1.0, 100.0), min_size=len(dirs), max_size=len(dirs))))
    attackers = np.broadcast_to(c + dirs * (big_r * far)[:, None], (f, d))
    order = np.array(draw(st.permutations(range(n))))
    updates = np.empty((n, d))
    updates[order[: n - f]] = honest
    updates[order[n - f :]] = attackers
    mask = np.zeros(n, dtype=bool)
    mask[order[: n - f]] = True
    r_hat = float(np.linalg.norm(honest - c, axis=1).max())
    big_r_hat = float(np.linalg.norm(attackers - c, axis=1).min()) if f else math.inf
    return updates, mask, f, r_hat, big_r_hat


@given(ball_cases())
def test_krum_selects_an_honest_row_when_attackers_are_far(case: Any) -> None:
    updates, honest, f, r, big_r = case
    n = len(updates)
    assert n > 2 * f + 2  # the generator kept its promise, as measured
    assert f == 0 or (n - 2 * f - 1) * (big_r - r) ** 2 > (n - f - 2) * (2 * r) ** 2
    assert honest[aggregate("krum", updates, f=f).kept[0]]
    # Every attacker scores worse than every honest row, so the n - f best are the honest.
    np.testing.assert_array_equal(multi_krum_indices(updates, f, n - f), np.flatnonzero(honest))


# --------------------------------------------------------------------------- permutation invariance


@given(update_matrices(n=st.integers(1, 10), d=st.integers(1, 4)), st.randoms())
def test_coordinate_wise_rules_ignore_row_order(x: np.ndarray, random: Any) -> None:
    order = list(range(len(x)))
    random.shuffle(order)
    y = x[order]
    np.testing.assert_array_equal(median(y), median(x))
    np.testing.assert_array_equal(trimmed_mean(y, BETA), trimmed_mean(x, BETA))
    np.testing.assert_allclose(mean(y), mean(x), rtol=1e-9, atol=1e-6)


@given(
    st.integers(0, 2**32 - 1),
    # n >= f + 4: Krum with a single neighbour (n = f + 3) ties mutual nearest neighbours.
    st.integers(0, 3).flatmap(lambda f: st.tuples(st.just(f), st.integers(4 * f + 4, 4 * f + 9))),
    st.integers(1, 6),
    st.randoms(),
)
def test_selection_rules_ignore_row_order(
    seed: int, fn: tuple[int, int], d: int, random: Any
) -> None:
    f, n = fn
    x = gaussian(seed, n, d)
    order = list(range(n))
    random.shuffle(order)
    y = x[order]
    np.testing.assert_allclose(krum(y, f), krum(x, f))
    np.testing.assert_allclose(multi_krum(y, f, n - f), multi_krum(x, f, n - f))
    np.testing.assert_allclose(bulyan(y, f), bulyan(x, f), rtol=1e-12, atol=1e-12)
    histories = np.abs(gaussian(seed + 1, n, d + 2))
    np.testing.assert_allclose(
        foolsgold(y, histories[order]), foolsgold(x, histories), rtol=1e-9, atol=1e-12
    )
    scores = krum_scores(x, f)
    np.testing.assert_allclose(krum_scores(y, f), scores[order], rtol=1e-9, atol=1e-12)


@given(update_matrices(n=st.integers(11, 14), d=st.integers(1, 4)))
def test_every_rule_returns_one_finite_vector(x: np.ndarray) -> None:
    histories = np.abs(x) + 1.0
    for name in AGGREGATORS:
        try:
            result = aggregate(name, x, f=2, histories=histories)
        except AggregationError as exc:  # FoolsGold may call everyone a Sybil
            assert name == "foolsgold" and "sybil" in str(exc)
            continue
        assert result.vector.shape == (x.shape[1],) and result.vector.dtype == np.float64
        assert np.all(np.isfinite(result.vector))
