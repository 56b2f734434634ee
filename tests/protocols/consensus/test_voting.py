"""Tests for swarm.protocols.consensus.voting: each rule and its tie rule, every input error, the
agreement/validity properties under Sybil votes, and the acceptance criterion: simulated
independent voters are as accurate as the binomial law says, within sampling error, and
correlated ones are not.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarm.protocols.consensus.voting import (
    NO_DECISION,
    VotingError,
    any_of,
    any_of_law,
    majority,
    majority_law,
    quorum,
    quorum_law,
    quorum_size,
    simulate_votes,
    weighted,
)
from swarm.testing.voting import honest_and_sybil_votes, vote_arrays

LEVELS = st.floats(0.5, 1.0, exclude_min=True)
TRIALS = 20_000

# -- rules -----------------------------------------------------------------------------------


def test_majority_takes_the_plurality_per_column() -> None:
    assert majority([3, 1, 3, 2, 1, 3]) == 3
    got = majority([[0, 1, 2], [1, 1, 2], [1, 0, 0]])
    assert got.dtype == np.int64
    assert got.tolist() == [1, 1, 2]


def test_one_decision_gives_an_int_and_many_give_an_array() -> None:
    assert type(majority(np.array([1, 1, 0]))) is int
    assert type(quorum([1, 1, 0], 0.6)) is int
    assert type(any_of([0, 1])) is int
    assert type(weighted([1, 0], [1, 2])) is int
    assert majority([[4], [4], [1]]).tolist() == [4]


def test_ties_go_to_the_smallest_label() -> None:
    assert majority([2, 1, 1, 2]) == 1
    assert majority([5, 3]) == 3
    assert majority([[7, 0], [2, 9]]).tolist() == [2, 0]
    assert weighted([4, 2], [1.5, 1.5]) == 2
    assert weighted([0, 1, 2], [1.0, 2.0, 2.0]) == 1


def test_plurality_need_not_be_a_majority() -> None:
    assert majority([0, 0, 1, 2, 3]) == 0
    assert quorum([0, 0, 1, 2, 3], 0.51) == NO_DECISION


def test_labels_far_apart_are_counted_without_a_dense_table() -> None:
    assert majority([10**15, 10**15, 3]) == 10**15


def test_weighted_follows_weight_not_headcount() -> None:
    assert weighted([0, 1, 1], [3.0, 1.0, 1.0]) == 0
    assert weighted([0, 1, 1], [1.0, 1.0, 1.0]) == 1
    # A zero weight takes a voter out.
    assert weighted([5, 2, 2], [1.0, 0.0, 0.0]) == 5
    assert weighted([[0, 1], [1, 1], [1, 0]], [2.5, 1.0, 1.0]).tolist() == [0, 1]


def test_quorum_decides_only_at_or_above_the_level() -> None:
    assert quorum([1, 1, 0, 1, 1], 0.8) == 1
    assert quorum([1, 1, 0, 1, 0], 0.8) == NO_DECISION
    assert quorum([[2, 0], [2, 1], [2, 0]], 1.0).tolist() == [2, NO_DECISION]


@pytest.mark.parametrize(
    ("level", "k", "need"),
    [(0.55, 20, 11), (0.7, 10, 7), (0.6, 5, 3), (0.6, 10, 6), (0.75, 4, 3), (1.0, 7, 7)],
)
def test_quorum_boundaries_are_exact(level: float, k: int, need: int) -> None:
    # 0.7 * 10 is 7.000000000000001 in floats and 0.55 * 20 is 11.000000000000002:
    # a naive ceil would ask for one vote too many.
    assert quorum_size(level, k) == need
    others = list(range(2, 2 + k - need))  # one vote each, far below any quorum
    assert quorum([1] * need + others, level) == 1
    assert quorum([1] * (need - 1) + [*others, 2 + k], level) == NO_DECISION


def test_quorum_takes_a_fraction_as_is() -> None:
    assert quorum_size(Fraction(2, 3), 9) == 6
    assert quorum([1] * 6 + [0] * 3, Fraction(2, 3)) == 1


def test_any_of_fires_on_one_positive() -> None:
    assert any_of([0, 0, 1]) == 1
    assert any_of([0, 0, 0]) == 0
    assert any_of(np.array([True, False])) == 1
    assert any_of([[0, 1, 0], [0, 0, 0]]).tolist() == [0, 1, 0]


def test_integral_floats_are_labels() -> None:
    assert majority([2.0, 2.0, 1.0]) == 2


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("votes", "message"),
    [
        ([], "empty"),
        (np.zeros((0, 3), dtype=int), "empty"),
        (np.zeros((3, 0), dtype=int), "empty"),
        ([1.5, 1.0], "integer labels"),
        ([1.0, math.nan], "NaN"),
        ([1.0, math.inf], "integer labels"),
        (["a", "b"], "integer labels"),
        ([-1, 0], ">= 0"),
        ([[1], [1, 2]], "rectangular"),
        (np.zeros((2, 2, 2), dtype=int), "1-D"),
        (np.array([2**63], dtype=np.uint64), "int64"),
    ],
)
def test_bad_votes_are_refused_by_every_rule(votes: object, message: str) -> None:
    for rule in (majority, any_of, lambda v: quorum(v, 0.75), lambda v: weighted(v, [1])):
        with pytest.raises(VotingError, match=message):
            rule(votes)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1.0, 1.0], "shape"),
        ([[1.0, 1.0, 1.0]], "shape"),
        ([1.0, -0.5, 1.0], ">= 0"),
        ([0.0, 0.0, 0.0], "positive"),
        ([1.0, math.nan, 1.0], "finite"),
        ([1.0, math.inf, 1.0], "finite"),
        ([1e308, 1e308, 1e308], "finite total"),
        (["x", "y", "z"], "numbers"),
    ],
)
def test_bad_weights_are_refused(weights: object, message: str) -> None:
    with pytest.raises(VotingError, match=message):
        weighted([0, 1, 1], weights)


@pytest.mark.parametrize(
    ("level", "message"),
    [
        (0.5, "> 0.5 so at most one label"),
        (0.2, "> 0.5"),
        (Fraction(1, 2), "> 0.5"),
        (1.01, "<= 1"),
        (math.nan, "finite"),
        (math.inf, "finite"),
        ("0.7", "expected a number"),
        (True, "expected a number"),
    ],
)
def test_bad_levels_are_refused(level: object, message: str) -> None:
    with pytest.raises(VotingError, match=message):
        quorum([1, 1, 1], level)
    with pytest.raises(VotingError, match=message):
        quorum_law(0.7, 3, level)


def test_any_of_refuses_labels_other_than_0_and_1() -> None:
    with pytest.raises(VotingError, match="0/1"):
        any_of([0, 2])


def test_voting_error_is_a_value_error() -> None:
    assert issubclass(VotingError, ValueError)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: majority_law(1.2, 3), "p = 1.2"),
        (lambda: majority_law(-0.1, 3), "p = -0.1"),
        (lambda: majority_law(math.nan, 3), "p = nan"),
        (lambda: any_of_law(0.5, 0), "k = 0"),
        (lambda: any_of_law(0.5, 2.0), "k = 2.0"),
        (lambda: quorum_law(0.5, True, 0.6), "k = True"),
        (lambda: quorum_size(0.6, 0), "k = 0"),
    ],
)
def test_laws_refuse_impossible_arguments(call, message: str) -> None:
    with pytest.raises(VotingError, match=message):
        call()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p": 2.0}, "p = 2.0"),
        ({"k": 0}, "k = 0"),
        ({"trials": 0}, "trials = 0"),
        ({"correlation": 1.5}, "correlation"),
        ({"correlation": -0.1}, "correlation"),
        ({"rng": 42}, "Generator"),
        ({"truth": [1, 0]}, "shape"),
        ({"truth": 2}, "0 or 1"),
        ({"truth": 0.5}, "0/1"),
    ],
)
def test_simulate_votes_refuses_bad_arguments(kwargs: dict, message: str) -> None:
    args = {"p": 0.6, "k": 3, "trials": 5, "rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(VotingError, match=message):
        simulate_votes(**args)


# -- laws ------------------------------------------------------------------------------------


def test_law_values() -> None:
    assert majority_law(0.6, 5) == pytest.approx(0.68256, abs=1e-15)
    assert majority_law(0.8, 1) == pytest.approx(0.8, abs=1e-15)
    assert any_of_law(0.6, 5) == pytest.approx(1 - 0.4**5, abs=1e-15)
    assert quorum_law(0.9, 4, 1.0) == pytest.approx(0.9**4, abs=1e-15)
    assert majority_law(0.0, 7) == 0.0
    assert majority_law(1.0, 7) == 1.0
    assert any_of_law(0.0, 3) == 0.0


@given(p=st.floats(0.0, 1.0), k=st.integers(1, 60))
def test_a_fair_tie_break_makes_an_even_jury_no_better_than_one_voter_less(
    p: float, k: int
) -> None:
    # Condorcet: with a fair coin on ties, 2n voters are exactly as good as 2n - 1.
    if k % 2 == 0:
        assert majority_law(p, k) == pytest.approx(majority_law(p, k - 1), abs=1e-12)
    assert majority_law(0.5, k) == pytest.approx(0.5, abs=1e-12)
    assert 0.0 <= majority_law(p, k) <= 1.0


@given(p=st.floats(0.5, 1.0, exclude_min=True), k=st.integers(1, 40))
def test_condorcet_more_voters_are_never_worse_when_p_exceeds_a_half(p: float, k: int) -> None:
    assert majority_law(p, k + 2) >= majority_law(p, k) - 1e-12
    assert majority_law(p, k) >= p - 1e-12


def _enumerated(rule, p: float, k: int) -> float:
    """P(rule(votes) == 1) summed over all 2^k outcomes (truth = 1), one column each."""
    outcomes = np.array(list(itertools.product((0, 1), repeat=k))).T
    right = outcomes.sum(axis=0)
    chance = p**right * (1 - p) ** (k - right)
    return math.fsum(chance[np.atleast_1d(rule(outcomes)) == 1])


@given(p=st.floats(0.0, 1.0), half=st.integers(0, 4), level=LEVELS)
def test_the_laws_are_the_rules_summed_over_every_outcome(
    p: float, half: int, level: float
) -> None:
    k = 2 * half + 1  # odd: the deterministic tie rule never acts
    assert majority_law(p, k) == pytest.approx(_enumerated(majority, p, k), abs=1e-12)
    assert any_of_law(p, k) == pytest.approx(_enumerated(any_of, p, k), abs=1e-12)
    rule = lambda v: quorum(v, level)  # noqa: E731
    assert quorum_law(p, k, level) == pytest.approx(_enumerated(rule, p, k), abs=1e-12)


def test_quorum_just_above_a_half_is_a_strict_majority() -> None:
    for k in (1, 3, 7, 21):
        assert quorum_law(0.7, k, 0.500001) == pytest.approx(majority_law(0.7, k), abs=1e-15)


# -- properties ------------------------------------------------------------------------------


@given(data=st.data(), level=LEVELS)
def test_agreement_and_validity_under_sybils(data: st.DataObject, level: float) -> None:
    votes, honest, n_sybil = data.draw(honest_and_sybil_votes(level=level))
    k = len(votes)
    assert (k - n_sybil) / k >= level - 1e-12
    assert quorum(votes, level) == honest
    assert 2 * n_sybil < k
    assert majority(votes) == honest


@given(honest_and_sybil_votes(k=st.integers(1, 31)))
def test_a_sybil_minority_never_outvotes_agreeing_honest_voters(case) -> None:
    votes, honest, n_sybil = case
    if 2 * n_sybil < len(votes):
        assert majority(votes) == honest
        assert quorum(votes, 0.5000001) == honest


@given(votes=vote_arrays(), a=LEVELS, b=LEVELS)
def test_quorum_is_monotone_in_the_level(votes: np.ndarray, a: float, b: float) -> None:
    low, high = min(a, b), max(a, b)
    at_low = np.atleast_1d(quorum(votes, low))
    at_high = np.atleast_1d(quorum(votes, high))
    # Raising the level never creates a decision ...
    assert not ((at_low == NO_DECISION) & (at_high != NO_DECISION)).any()
    # ... and a decision at a high level is the same decision at any lower level.
    decided = at_high != NO_DECISION
    assert (at_low[decided] == at_high[decided]).all()


@given(votes=vote_arrays(), level=LEVELS)
def test_a_quorum_decision_is_the_majority_decision(votes: np.ndarray, level: float) -> None:
    got = np.atleast_1d(quorum(votes, level))
    decided = got != NO_DECISION
    assert (got[decided] == np.atleast_1d(majority(votes))[decided]).all()


@given(votes=vote_arrays())
def test_majority_is_a_label_that_was_voted_and_has_the_most_votes(votes: np.ndarray) -> None:
    cols = votes.reshape(len(votes), -1)
    for col, winner in zip(cols.T, np.atleast_1d(majority(votes)), strict=True):
        counts = {label: int((col == label).sum()) for label in set(col.tolist())}
        best = max(counts.values())
        assert winner == min(label for label, n in counts.items() if n == best)


@given(votes=vote_arrays(), weight=st.floats(1e-6, 1e6))
def test_equal_weights_are_majority(votes: np.ndarray, weight: float) -> None:
    got = weighted(votes, np.full(len(votes), weight))
    assert np.array_equal(got, majority(votes))


@given(data=st.data(), votes=vote_arrays(labels=2))
def test_rules_do_not_depend_on_the_order_of_voters(data: st.DataObject, votes: np.ndarray) -> None:
    order = data.draw(st.permutations(range(len(votes))))
    size = len(votes)
    weights = np.array(data.draw(st.lists(st.integers(1, 9), min_size=size, max_size=size)))
    weights = weights.astype(np.float64)
    shuffled = votes[order]
    assert np.array_equal(majority(shuffled), majority(votes))
    assert np.array_equal(quorum(shuffled, 0.7), quorum(votes, 0.7))
    assert np.array_equal(any_of(shuffled), any_of(votes))
    # Integer weights sum exactly, in any order.
    assert np.array_equal(weighted(shuffled, weights[order]), weighted(votes, weights))


@given(data=st.data(), votes=vote_arrays(labels=2))
def test_any_of_is_monotone(data: st.DataObject, votes: np.ndarray) -> None:
    before = np.atleast_1d(any_of(votes))
    # Turning one vote positive never turns a detection off ...
    flipped = votes.copy()
    index = data.draw(st.sampled_from(list(np.ndindex(votes.shape))))
    flipped[index] = 1
    after = np.atleast_1d(any_of(flipped))
    assert (after >= before).all()
    assert after[index[1] if votes.ndim == 2 else 0] == 1
    # ... nor does one more voter.
    extra = data.draw(vote_arrays(k=1, m=None if votes.ndim == 1 else votes.shape[1], labels=2))
    assert (np.atleast_1d(any_of(np.concatenate([votes, extra]))) >= before).all()


# -- simulation against the laws (the acceptance criterion) -----------------------------------


def _within(measured: float, law: float, trials: int, sigmas: float = 4.0) -> bool:
    se = math.sqrt(law * (1 - law) / trials)
    return abs(measured - law) <= sigmas * se


@pytest.mark.parametrize(("p", "k", "seed"), [(0.6, 5, 1), (0.7, 11, 2), (0.55, 21, 3)])
def test_independent_majority_agrees_with_the_binomial_law(p: float, k: int, seed: int) -> None:
    votes = simulate_votes(p, k, TRIALS, np.random.default_rng(seed))
    measured = float(np.mean(majority(votes) == 1))
    law = majority_law(p, k)
    assert _within(measured, law, TRIALS), (measured, law)
    assert measured > p  # the jury beats its average member


@pytest.mark.parametrize(("p", "k", "seed"), [(0.6, 5, 4), (0.1, 11, 5), (0.05, 21, 6)])
def test_independent_any_of_agrees_with_its_law(p: float, k: int, seed: int) -> None:
    votes = simulate_votes(p, k, TRIALS, np.random.default_rng(seed))
    measured = float(np.mean(any_of(votes) == 1))
    law = any_of_law(p, k)
    assert _within(measured, law, TRIALS), (measured, law)


@pytest.mark.parametrize(("p", "k", "level", "seed"), [(0.7, 11, 0.75, 7), (0.8, 6, 0.6, 8)])
def test_independent_quorum_agrees_with_its_law(p: float, k: int, level: float, seed: int) -> None:
    votes = simulate_votes(p, k, TRIALS, np.random.default_rng(seed))
    measured = float(np.mean(quorum(votes, level) == 1))
    law = quorum_law(p, k, level)
    assert _within(measured, law, TRIALS), (measured, law)


def test_correlated_errors_break_the_binomial_law() -> None:
    p, k, rho = 0.6, 11, 0.5
    votes = simulate_votes(p, k, TRIALS, np.random.default_rng(9), correlation=rho)
    measured = float(np.mean(majority(votes) == 1))
    law = majority_law(p, k)
    se = math.sqrt(law * (1 - law) / TRIALS)
    assert measured < law - 10 * se, (measured, law)
    # A common-mode trial is right with p, an independent one with the law.
    mixture = rho * p + (1 - rho) * law
    assert _within(measured, mixture, TRIALS), (measured, mixture)
    # Each voter alone is still right with probability p.
    assert _within(float(votes.mean()), p, TRIALS * k)


# -- simulate_votes --------------------------------------------------------------------------


def test_simulate_votes_shape_and_determinism() -> None:
    a = simulate_votes(0.7, 4, 50, np.random.default_rng(3), correlation=0.3)
    b = simulate_votes(0.7, 4, 50, np.random.default_rng(3), correlation=0.3)
    assert a.shape == (4, 50)
    assert a.dtype == np.int64
    assert set(np.unique(a).tolist()) <= {0, 1}
    assert np.array_equal(a, b)


def test_full_correlation_makes_every_voter_the_same() -> None:
    votes = simulate_votes(0.5, 7, 200, np.random.default_rng(0), correlation=1.0)
    assert (votes == votes[0]).all()


def test_simulated_votes_follow_the_truth() -> None:
    truth = np.array([0, 1, 0, 1])
    assert (simulate_votes(1.0, 3, 4, np.random.default_rng(0), truth=truth) == truth).all()
    assert (simulate_votes(0.0, 3, 4, np.random.default_rng(0), truth=truth) == 1 - truth).all()
    assert (simulate_votes(1.0, 2, 3, np.random.default_rng(0), truth=0) == 0).all()


def test_a_law_is_never_above_one_even_by_an_ulp() -> None:
    """fsum of binomial terms near p = 1 can round to 1 + 2e-16; a probability may not."""
    for p in np.linspace(0.95, 1.0, 2001):
        for k in (5, 11, 31, 59, 60):
            assert majority_law(float(p), k) <= 1.0
            assert quorum_law(float(p), k, 0.6) <= 1.0
