"""Hypothesis strategies for vote arrays, for property tests of voting rules.

They draw what `swarm.protocols.consensus.voting` takes: non-negative int labels, one row per voter.
`honest_and_sybil_votes` draws the adversarial case the agreement and validity properties
talk about: honest voters who agree, plus Sybils who vote anything.

    from hypothesis import given
    from swarm.protocols.consensus.voting import quorum
    from swarm.testing.voting import honest_and_sybil_votes

    @given(honest_and_sybil_votes(level=0.75))
    def test_validity(case):
        votes, honest, _ = case
        assert quorum(votes, 0.75) == honest
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from swarm.protocols.consensus.voting import quorum_size

__all__ = ["honest_and_sybil_votes", "vote_arrays"]

_K = st.integers(1, 15)
_M = st.none() | st.integers(1, 4)
_HONEST_K = st.integers(1, 21)


def _strategy(value: object) -> st.SearchStrategy:
    return value if isinstance(value, st.SearchStrategy) else st.just(value)


def vote_arrays(
    *,
    k: int | st.SearchStrategy[int] = _K,
    m: int | st.SearchStrategy[int | None] | None = _M,
    labels: int | st.SearchStrategy[int] = 3,
) -> st.SearchStrategy[np.ndarray]:
    """Int64 vote arrays of K voters: shape (K,) when m is None, else (K, m).

    `labels` is how many labels there are (votes in range(labels)), or a strategy for one
    vote. By default K is 1..15 and m is None or 1..4, so rules see both shapes.

        vote_arrays(k=5, m=None, labels=2)          # 5 binary votes on one decision
        vote_arrays(k=st.integers(3, 9), m=10)      # 3..9 voters, 10 decisions
        vote_arrays(labels=st.sampled_from([0, 7]))  # sparse labels
    """
    if isinstance(labels, int):
        if labels < 1:
            raise ValueError(f"labels = {labels}: need at least one label")
        elements: st.SearchStrategy[int] = st.integers(0, labels - 1)
    else:
        elements = labels

    @st.composite
    def draw_votes(draw: st.DrawFn) -> np.ndarray:
        n = draw(_strategy(k))
        cols = draw(_strategy(m))
        shape = (n,) if cols is None else (n, cols)
        return draw(hnp.arrays(np.int64, shape, elements=elements))

    return draw_votes()


def honest_and_sybil_votes(
    *,
    k: int | st.SearchStrategy[int] = _HONEST_K,
    labels: int = 4,
    level: float | Fraction | None = None,
) -> st.SearchStrategy[tuple[np.ndarray, int, int]]:
    """(votes, honest_label, n_sybil): K votes (shape (K,)) in which every honest voter
    votes `honest_label` and `n_sybil` Sybils vote arbitrary labels in range(labels),
    in shuffled positions. There is always at least one honest voter.

    With `level`, the Sybils stay below the quorum margin: n_sybil <= K - quorum_size(level,
    K), so the honest share is at least `level`.

        honest_and_sybil_votes(k=7)                   # 0..6 Sybils among 7 voters
        honest_and_sybil_votes(k=10, level=0.7)       # at most 3 Sybils
    """
    if labels < 1:
        raise ValueError(f"labels = {labels}: need at least one label")

    @st.composite
    def draw_case(draw: st.DrawFn) -> tuple[np.ndarray, int, int]:
        n = draw(_strategy(k))
        if n < 1:
            raise ValueError(f"k = {n}: need at least one voter")
        most = n - 1 if level is None else n - quorum_size(level, n)
        n_sybil = draw(st.integers(0, most))
        honest = draw(st.integers(0, labels - 1))
        sybil = draw(st.lists(st.integers(0, labels - 1), min_size=n_sybil, max_size=n_sybil))
        order = draw(st.permutations(range(n)))
        votes = np.array([honest] * (n - n_sybil) + sybil, dtype=np.int64)[order]
        return votes, honest, n_sybil

    return draw_case()
