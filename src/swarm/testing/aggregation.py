"""Hypothesis strategies for update matrices, for property tests of aggregation rules.

They draw what `swarm.protocols.consensus.aggregate` takes: finite float64 arrays, one row per
update. Values stay in [-bound, bound] (1e6 by default) so that sums and squared
distances of a test's own reference computation cannot overflow. `honest_and_byzantine`
draws the adversarial case a breakdown bound talks about: honest rows plus attackers who
send anything, with as many attackers as a rule tolerates (or one more).

    from hypothesis import given
    from swarm.protocols.consensus.aggregate import median
    from swarm.testing.aggregation import honest_and_byzantine

    @given(honest_and_byzantine(rule="median"))
    def test_median_stays_with_the_honest(case):
        updates, honest, _ = case
        out = median(updates)
        assert (updates[honest].min(axis=0) <= out).all()
        assert (out <= updates[honest].max(axis=0)).all()
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from swarm.protocols.consensus.aggregate import AGGREGATORS

__all__ = ["ATTACKERS", "BOUND", "finite_floats", "honest_and_byzantine", "update_matrices"]

BOUND = 1e6
ATTACKERS = ("below-bound", "worst-tolerated", "over-bound")
_N = st.integers(1, 10)
_D = st.integers(1, 5)


def _strategy(value: object) -> st.SearchStrategy:
    return value if isinstance(value, st.SearchStrategy) else st.just(value)


def finite_floats(bound: float = BOUND) -> st.SearchStrategy[float]:
    """Finite floats in [-bound, bound] (subnormals and signed zeros included).

    finite_floats(1.0)   # entries of a normalised gradient
    """
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False)


def update_matrices(
    n: int | st.SearchStrategy[int] = _N,
    d: int | st.SearchStrategy[int] = _D,
    *,
    elements: st.SearchStrategy[float] | None = None,
) -> st.SearchStrategy[np.ndarray]:
    """Float64 arrays of shape (n, d): n updates of d coordinates.

    `n` and `d` are ints or strategies; `elements` defaults to `finite_floats()`.

        update_matrices()                                  # 1..10 updates, 1..5 coordinates
        update_matrices(n=st.integers(7, 15), d=3)         # enough rows for Bulyan with f=1
        update_matrices(elements=st.sampled_from([0.0, 1.0]))  # many ties
    """
    values = finite_floats() if elements is None else elements

    @st.composite
    def draw_matrix(draw: st.DrawFn) -> np.ndarray:
        rows = draw(_strategy(n))
        cols = draw(_strategy(d))
        if rows < 0 or cols < 0:
            raise ValueError(f"update_matrices: n = {rows}, d = {cols}: need sizes >= 0")
        return draw(hnp.arrays(np.float64, (rows, cols), elements=values))

    return draw_matrix()


def _attacker_rows(f: int, d: int, bound: float) -> st.SearchStrategy[np.ndarray]:
    """Arbitrary rows, extreme rows, or one row repeated (colluding Sybils)."""
    arbitrary = hnp.arrays(np.float64, (f, d), elements=finite_floats(bound))
    extreme = hnp.arrays(np.float64, (f, d), elements=st.sampled_from([-bound, bound]))
    colluding = hnp.arrays(np.float64, (1, d), elements=finite_floats(bound)).map(
        lambda row: np.repeat(row, f, axis=0)
    )
    return st.one_of(arbitrary, extreme, colluding)


def honest_and_byzantine(
    max_n: int = 12,
    max_d: int = 4,
    *,
    rule: str = "median",
    attackers: str = "below-bound",
    beta: float = 0.25,
    bound: float = BOUND,
) -> st.SearchStrategy[tuple[np.ndarray, np.ndarray, int]]:
    """(updates, honest_mask, f): n <= max_n rows of d <= max_d coordinates, of which f
    are attackers in shuffled positions; `honest_mask` is True on the honest rows, and
    there is always at least one.

    f is chosen against `rule`'s tolerance, `AGGREGATORS[rule].max_attackers(n, beta)`:
    "below-bound" draws any f the rule tolerates (0 up to the largest), "worst-tolerated"
    takes the largest, and "over-bound" one more, where the guarantee no longer holds
    (or, for Krum and Bulyan, the rule refuses). Attackers send arbitrary values in
    [-bound, bound], only extremes, or all the same row; honest rows are arbitrary too.

        honest_and_byzantine(rule="krum", attackers="worst-tolerated")  # n = 2f + 3 or 2f + 4
        honest_and_byzantine(rule="trimmed-mean", beta=0.2)            # f <= floor(0.2 n)
        honest_and_byzantine(rule="median", attackers="over-bound")    # f >= n/2
    """
    if rule not in AGGREGATORS:
        raise ValueError(f"unknown rule {rule!r}: choose one of {', '.join(AGGREGATORS)}")
    if attackers not in ATTACKERS:
        raise ValueError(f"attackers={attackers!r}: choose one of {', '.join(ATTACKERS)}")
    if max_d < 1:
        raise ValueError(f"max_d = {max_d}: need at least one coordinate")
    tolerance = AGGREGATORS[rule].max_attackers
    extra = 1 if attackers == "over-bound" else 0
    sizes = [
        n
        for n in range(1, max_n + 1)
        if tolerance(n, beta) >= 0 and tolerance(n, beta) + extra <= n - 1
    ]
    if not sizes:
        raise ValueError(f"max_n = {max_n} is too small for {rule} with {attackers} attackers")

    @st.composite
    def draw_case(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
        n = draw(st.sampled_from(sizes))
        most = tolerance(n, beta)
        f = draw(st.integers(0, most)) if attackers == "below-bound" else most + extra
        d = draw(st.integers(1, max_d))
        honest = draw(update_matrices(n - f, d, elements=finite_floats(bound)))
        bad = draw(_attacker_rows(f, d, bound))
        order = np.array(draw(st.permutations(range(n))), dtype=np.int64)
        updates = np.empty((n, d))
        mask = np.zeros(n, dtype=bool)
        updates[order[: n - f]] = honest
        updates[order[n - f :]] = bad
        mask[order[: n - f]] = True
        return updates, mask, f

    return draw_case()
