"""SeenCache: a bounded, insertion-ordered memory of message ids."""

from __future__ import annotations

from collections import OrderedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarm.protocols.gossip.dedup import SeenCache


def test_add_reports_whether_the_id_was_new() -> None:
    cache = SeenCache(3)
    assert cache.add("a") is True
    assert cache.add("a") is False
    assert cache.add(1) is True
    assert cache.add((1, 2)) is True
    assert cache.add(1) is False
    assert len(cache) == 3
    assert "a" in cache and 1 in cache and (1, 2) in cache and "b" not in cache


def test_holds_at_most_capacity_ids() -> None:
    cache = SeenCache(4)
    for i in range(100):
        assert cache.add(i)
        assert len(cache) == min(i + 1, 4)
    assert [i for i in range(100) if i in cache] == [96, 97, 98, 99]


def test_forgets_the_oldest_insertion_first() -> None:
    cache = SeenCache(3)
    for item in "abc":
        cache.add(item)
    # Seeing "a" again does not refresh it: eviction follows first insertion.
    assert cache.add("a") is False
    assert cache.add("d") is True
    assert "a" not in cache and {"b", "c", "d"} == {x for x in "abcd" if x in cache}
    assert cache.add("e") is True
    assert "b" not in cache
    # A forgotten id counts as new again, and evicts the now-oldest.
    assert cache.add("a") is True
    assert "c" not in cache and len(cache) == 3


def test_capacity_one_remembers_only_the_last_id() -> None:
    cache = SeenCache(1)
    assert cache.add("x") and not cache.add("x")
    assert cache.add("y") and "x" not in cache and "y" in cache
    assert cache.add("x")


def test_default_capacity() -> None:
    cache = SeenCache()
    assert cache.capacity == 4096
    for i in range(5000):
        cache.add(i)
    assert len(cache) == 4096 and 903 not in cache and 904 in cache


@pytest.mark.parametrize("capacity", [0, -1, -4096])
def test_capacity_below_one_is_an_error(capacity: int) -> None:
    with pytest.raises(ValueError, match="capacity"):
        SeenCache(capacity)


@given(st.integers(1, 8), st.lists(st.integers(0, 12), max_size=200))
def test_behaves_like_a_fifo_bounded_set(capacity: int, items: list[int]) -> None:
    cache = SeenCache(capacity)
    model: OrderedDict[int, None] = OrderedDict()
    for item in items:
        new = item not in model
        assert cache.add(item) is new
        if new:
            model[item] = None
            if len(model) > capacity:
                model.popitem(last=False)
        assert len(cache) == len(model) <= capacity
        assert all((i in cache) == (i in model) for i in range(13))
