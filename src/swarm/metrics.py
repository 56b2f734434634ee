"""Counters and summary statistics shared by brokers, agents and the recorder.

Counters are additive so that shards of a fleet can be summed; variance uses the
pairwise merge of (count, mean, M2) for the same reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(slots=True)
class MessageCounters:
    """What happened to messages in one process; the summary's `messages` section."""

    sent: int = 0  # publishes
    delivered: int = 0  # copies handed to a subscriber
    dropped: int = 0  # copies lost to loss, partitions, full inboxes or closed links
    dropped_malformed: int = 0  # payloads a receiver could not decode or validate
    dropped_spoofed: int = 0  # messages whose claimed sender is not the client that published
    # messages a fleet client received that no fleet process sent (no valid seal, or a
    # replay): counted apart from delivered, so they cannot hide loss
    received_foreign: int = 0
    bytes: int = 0  # payload bytes published

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def add(self, other: MessageCounters) -> None:
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)


@dataclass(slots=True)
class Moments:
    """Count, mean and sum of squared deviations; mergeable across shards."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def of(cls, values: Iterable[float]) -> Moments:
        out = cls()
        for value in values:
            out.count += 1
            delta = value - out.mean
            out.mean += delta / out.count
            out.m2 += delta * (value - out.mean)
        return out

    def merge(self, other: Moments) -> Moments:
        if other.count == 0:
            return Moments(self.count, self.mean, self.m2)
        if self.count == 0:
            return Moments(other.count, other.mean, other.m2)
        count = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / count
        m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / count
        return Moments(count, mean, m2)

    @property
    def variance(self) -> float:
        """Population variance (the spread of the fleet's estimates, not a sample)."""
        return self.m2 / self.count if self.count else math.nan
