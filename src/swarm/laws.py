"""Analytic predictions that runs are compared against.

Sources: Pittel 1987, "On spreading a rumor" (push on the complete graph informs all n
nodes in log2(n) + ln(n) + O(1) rounds); Demers et al. 1987, section 1.4 (residue of
rumor mongering with feedback and coin: s = exp(-(k + 1)(1 - s))).
"""

from __future__ import annotations

import math

__all__ = ["push_rounds_complete", "rumor_residue_feedback_coin"]


def push_rounds_complete(n: int) -> float:
    """Expected rounds for push (fanout 1) to inform all n nodes of a complete graph."""
    if n < 2:
        return 0.0
    return math.log2(n) + math.log(n)


def rumor_residue_feedback_coin(k: int) -> float:
    """Fraction never informed by rumor mongering with feedback and a 1/k coin.

    Solves s = exp(-(k + 1)(1 - s)) for its root in (0, 1) by fixed-point iteration
    (the map is a contraction near that root).
    """
    s = 0.5
    for _ in range(10_000):
        nxt = math.exp(-(k + 1) * (1 - s))
        if abs(nxt - s) < 1e-15:
            break
        s = nxt
    return s
