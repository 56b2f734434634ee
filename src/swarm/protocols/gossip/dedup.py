"""Bounded memory of message ids already seen.

A gossip node must drop duplicates, but a node that lives for days cannot remember every
id forever: the cache forgets the oldest ids first once it holds `capacity` of them.
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["SeenCache"]


class SeenCache:
    """Insertion-ordered set with a capacity; `add` reports whether the id was new."""

    __slots__ = ("_ids", "capacity")

    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._ids: dict[Hashable, None] = {}

    def __contains__(self, item: Hashable) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, item: Hashable) -> bool:
        """Remember `item`; True if it was not remembered before."""
        ids = self._ids
        if item in ids:
            return False
        ids[item] = None
        if len(ids) > self.capacity:
            del ids[next(iter(ids))]
        return True
