"""Reputation over rounds: who keeps getting left out by the aggregation rule.

A robust rule decides about one round; a Sybil that is left out round after round should
eventually be ignored before the rule even runs, and reported. Each identity's score is an
exponential moving average of "was my update kept" (1) or "left out" (0): one bad round
does not condemn an honest client, a steady pattern does. Sans-I/O and deterministic.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

__all__ = ["Reputation"]


def _unit(name: str, value: object, *, upper_open: bool = False) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
    else:
        number = math.nan
    inside = 0.0 <= number < 1.0 if upper_open else 0.0 <= number <= 1.0
    if not inside:
        allowed = "[0, 1)" if upper_open else "[0, 1]"
        raise ValueError(f"reputation {name} must be a number in {allowed}: got {value!r}")
    return number


def _identity(identity: object) -> int:
    if isinstance(identity, bool) or not isinstance(identity, numbers.Integral):
        raise ValueError(f"an identity is an int: got {identity!r}")
    return int(identity)


class Reputation:
    """Per-identity scores in [0, 1]: score = decay * score + (1 - decay) * kept.

    Identities never observed have the `initial` score. An identity is trusted while its
    score is >= `threshold`, and flagged once it has been observed `min_observations`
    times and its score is below the threshold (so a new identity is not flagged on its
    first unlucky round).
    """

    def __init__(
        self,
        *,
        initial: float = 1.0,
        decay: float = 0.8,
        threshold: float = 0.5,
        min_observations: int = 3,
    ) -> None:
        self.initial = _unit("initial", initial)
        self.decay = _unit("decay", decay, upper_open=True)
        self.threshold = _unit("threshold", threshold)
        count: object = min_observations  # checked as given: callers may pass anything
        if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 1:
            raise ValueError(f"reputation min_observations must be an int >= 1: got {count!r}")
        self.min_observations = int(count)
        self._scores: dict[int, float] = {}
        self._counts: dict[int, int] = {}

    def observe(self, identity: int, kept: bool) -> None:
        """Record one round: was this identity's update kept by the rule?"""
        key = _identity(identity)
        target = 1.0 if kept else 0.0
        score = self._scores.get(key, self.initial)
        self._scores[key] = min(1.0, max(0.0, self.decay * score + (1.0 - self.decay) * target))
        self._counts[key] = self._counts.get(key, 0) + 1

    def observe_round(self, identities: Iterable[int], kept: Iterable[int]) -> None:
        """Observe every identity of a round; those in `kept` were kept, the rest not."""
        chosen = {_identity(i) for i in kept}
        for identity in identities:
            self.observe(identity, _identity(identity) in chosen)

    def score(self, identity: int) -> float:
        """The identity's current score (`initial` if never observed)."""
        return self._scores.get(_identity(identity), self.initial)

    def observations(self, identity: int) -> int:
        """How many rounds this identity has been observed in."""
        return self._counts.get(_identity(identity), 0)

    def trusted(self, identity: int) -> bool:
        """Whether updates from this identity should still be aggregated."""
        return self.score(identity) >= self.threshold

    def flagged(self) -> set[int]:
        """Identities observed at least `min_observations` times whose score is below threshold."""
        return {
            identity
            for identity, count in self._counts.items()
            if count >= self.min_observations and self._scores[identity] < self.threshold
        }
