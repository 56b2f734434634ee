"""The federated server's defenses: a robust rule, clipping, reputation, and who it flagged.

FedAvg's weighted mean lets one client move the global model anywhere; this module puts
any rule of `swarm.protocols.consensus.aggregate` in its place and keeps the books a study of
Sybil attacks needs: which identities the rule left out, round after round, so that the
summary can report detection precision and recall against the true Sybils.

An update is *kept* when a selection rule (Multi-Krum, Bulyan, FoolsGold) let it in;
Krum keeps a single update, so for the books it counts its n - f best-scored ones as
kept (the rest are what its theory discards). Coordinate-wise rules (median, trimmed
mean) and the mean select nobody, so for them an update counts as kept when it points
the same way as the coordinate-wise median (positive dot product): a sign-flipped update
does not. That signal feeds reputation only. An identity is *flagged* by a selection
rule when most of its updates were left out (at least `MIN_ROUNDS` of them seen), and by
reputation when its standing fell below the threshold. With `reputation` on, updates
from identities below the threshold are ignored before the rule runs, and the rule
then expects that many fewer attackers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from swarm.protocols.consensus.aggregate import (
    AGGREGATORS,
    AggregationError,
    aggregate,
    multi_krum_indices,
)
from swarm.protocols.consensus.reputation import Reputation

__all__ = ["MIN_ROUNDS", "Entry", "RobustServer"]

MIN_ROUNDS = 2  # updates seen from an identity before it can be flagged
SELECTING = frozenset({"krum", "multi-krum", "bulyan", "foolsgold"})  # rules that pick rows


@dataclass(frozen=True, slots=True)
class Entry:
    """One client's update for a round."""

    src: int
    samples: int
    delta: np.ndarray


@dataclass
class RobustServer:
    """How a FedAvg server combines a round's updates, and its record of each identity."""

    rule: str = "mean"
    f: int = 1
    beta: float = 0.2
    max_norm: float = 0.0
    reputation: Reputation | None = None
    seen: dict[int, int] = field(default_factory=dict)  # updates received, by identity
    left_out: dict[int, int] = field(default_factory=dict)  # ... and not kept
    refused: int = 0  # rounds the rule could not run (too few updates, all weights 0)
    ignored: int = 0  # updates dropped for bad reputation
    _histories: dict[int, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rule not in AGGREGATORS:
            raise ValueError(f"unknown aggregator {self.rule!r}; allowed: {', '.join(AGGREGATORS)}")

    def combine(self, entries: list[Entry]) -> np.ndarray | None:
        """The round's step for the global model, or None when no step can be taken."""
        f = self.f
        if self.reputation is not None:
            trusted = [e for e in entries if self.reputation.trusted(e.src)]
            dropped = len(entries) - len(trusted)
            self.ignored += dropped
            f = max(0, f - dropped)  # those were the attackers the rule had to expect
            entries = trusted
        if not entries:
            return None
        if len(entries) < AGGREGATORS[self.rule].min_updates(f):
            self.refused += 1
            return None
        updates = np.stack([e.delta for e in entries])
        histories = None
        if self.rule == "foolsgold":
            for e in entries:
                self._histories[e.src] = self._histories.get(e.src, 0.0) + e.delta
            histories = np.stack([self._histories[e.src] for e in entries])
        try:
            result = aggregate(
                self.rule,
                updates,
                f=f,
                beta=self.beta,
                weights=np.array([e.samples for e in entries], dtype=float),
                histories=histories,
                max_norm=self.max_norm or None,
            )
        except AggregationError:
            self.refused += 1
            return None
        kept = self._kept(updates, f, result.kept)
        for e, ok in zip(entries, kept, strict=True):
            self.seen[e.src] = self.seen.get(e.src, 0) + 1
            if not ok:
                self.left_out[e.src] = self.left_out.get(e.src, 0) + 1
            if self.reputation is not None:
                self.reputation.observe(e.src, bool(ok))
        return result.vector

    def _kept(self, updates: np.ndarray, f: int, kept: np.ndarray | None) -> np.ndarray:
        if self.rule == "krum":
            kept = multi_krum_indices(updates, f, len(updates) - f)
        if kept is not None:
            mask = np.zeros(len(updates), dtype=bool)
            mask[np.asarray(kept, dtype=np.int64)] = True
            return mask
        return updates @ np.median(updates, axis=0) > 0.0

    @property
    def flags(self) -> bool:
        """Whether this defense names identities (a selection rule, or reputation)."""
        return self.rule in SELECTING or self.reputation is not None

    def flagged(self) -> set[int]:
        """Identities this server takes for attackers (none unless `flags`)."""
        flagged: set[int] = set()
        if self.rule in SELECTING:
            flagged = {
                src
                for src, n in self.seen.items()
                if n >= MIN_ROUNDS and self.left_out.get(src, 0) * 2 > n
            }
        if self.reputation is not None:
            flagged |= self.reputation.flagged()
        return flagged
