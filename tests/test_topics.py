"""Tests for the topic scheme, validation, MQTT filter matching and the subscription index."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarm import topics
from swarm.topics import (
    TopicError,
    TopicIndex,
    matches,
    validate_filter,
    validate_segment,
    validate_topic,
)

# --- scheme ----------------------------------------------------------------------------------


def test_scheme_builders() -> None:
    assert topics.ROOT == "swarm"
    assert topics.inbox("r1", "a7") == "swarm/r1/agent/a7/inbox"
    assert topics.region("r1", "eu") == "swarm/r1/region/eu"
    assert topics.metrics("r1") == "swarm/r1/metrics"
    assert topics.events("r1", "join") == "swarm/r1/events/join"
    assert topics.control("r1", "stop") == "swarm/r1/control/stop"
    assert topics.run_filter("r1") == "swarm/r1/#"
    assert topics.events_filter("r1") == "swarm/r1/events/#"
    assert topics.control_filter("r1") == "swarm/r1/control/#"
    assert topics.inbox_filter("r1") == "swarm/r1/agent/+/inbox"


def test_scheme_topics_are_valid_and_routed_by_the_filters() -> None:
    run = "r1"
    names = [
        topics.inbox(run, "a"),
        topics.region(run, "eu"),
        topics.metrics(run),
        topics.events(run, "join"),
        topics.control(run, "stop"),
    ]
    for name in names:
        validate_topic(name)
        assert matches(topics.run_filter(run), name)
        assert not matches(topics.run_filter("r2"), name)
    for f in (
        topics.run_filter(run),
        topics.events_filter(run),
        topics.control_filter(run),
        topics.inbox_filter(run),
    ):
        validate_filter(f)
    assert [n for n in names if matches(topics.events_filter(run), n)] == [names[3]]
    assert [n for n in names if matches(topics.control_filter(run), n)] == [names[4]]
    assert [n for n in names if matches(topics.inbox_filter(run), n)] == [names[0]]


@pytest.mark.parametrize("name", ["a", "agent-17", "x" * 128, "é", "a.b_c:d", "a$"])
def test_validate_segment_accepts(name: str) -> None:
    assert validate_segment("agent id", name) == name


@pytest.mark.parametrize("name", ["", "x" * 129, "a/b", "a+", "#", "a\0b", "$SYS", "$"])
def test_validate_segment_rejects(name: str) -> None:
    with pytest.raises(TopicError) as info:
        validate_segment("run id", name)
    message = str(info.value)
    assert message.startswith(f"run id {name!r} is invalid")
    assert "1-128 characters" in message
    assert "leading '$'" in message


def test_validate_segment_message_example() -> None:
    with pytest.raises(TopicError, match=r"^run id 'a/b' is invalid: use 1-128 characters"):
        validate_segment("run id", "a/b")


def test_topic_error_is_a_value_error() -> None:
    assert issubclass(TopicError, ValueError)


# --- topic / filter validation ---------------------------------------------------------------


@pytest.mark.parametrize("topic", ["a", "/", "a//b", "/a", "a/", "$SYS/x", "é/ü", "x" * 65535])
def test_validate_topic_accepts(topic: str) -> None:
    assert validate_topic(topic) == topic


@pytest.mark.parametrize(
    ("topic", "fragment"),
    [
        ("", "empty"),
        ("a/+", "wildcard"),
        ("a/#", "wildcard"),
        ("a+b", "wildcard"),
        ("a\0b", "NUL"),
        ("x" * 65536, "65535"),
        ("é" * 32768, "65535"),  # 65536 bytes in UTF-8
        ("\ud800", "UTF-8"),
    ],
)
def test_validate_topic_rejects(topic: str, fragment: str) -> None:
    with pytest.raises(TopicError, match=fragment):
        validate_topic(topic)


def test_validate_topic_rejects_non_str() -> None:
    with pytest.raises(TopicError, match="str"):
        validate_topic(b"a")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "filter_",
    ["#", "+", "a/#", "+/+", "/+", "+/", "a/+/b/#", "$SYS/#", "a//#", "é" * 32767, "a/b"],
)
def test_validate_filter_accepts(filter_: str) -> None:
    assert validate_filter(filter_) == filter_


@pytest.mark.parametrize(
    ("filter_", "fragment"),
    [
        ("", "empty"),
        ("a/#/b", "last level"),
        ("#/a", "last level"),
        ("a+", "whole level"),
        ("a/+b", "whole level"),
        ("#a", "whole level"),
        ("a/b#", "whole level"),
        ("a/\0", "NUL"),
        ("+" + "/+" * 32767 + "/", "65535"),
        ("x" * 65536, "65535"),
    ],
)
def test_validate_filter_rejects(filter_: str, fragment: str) -> None:
    with pytest.raises(TopicError, match=fragment):
        validate_filter(filter_)


# --- matches: spec examples ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter_", "topic", "expected"),
    [
        # MQTT 3.1.1 §4.7.1.2: multi-level wildcard
        ("sport/tennis/player1/#", "sport/tennis/player1", True),
        ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
        ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
        ("sport/tennis/player1/#", "sport/tennis/player2", False),
        ("sport/tennis/player1/#", "sport/tennis", False),
        ("sport/#", "sport", True),
        ("#", "sport/tennis", True),
        # §4.7.1.3: single-level wildcard
        ("sport/tennis/+", "sport/tennis/player1", True),
        ("sport/tennis/+", "sport/tennis/player2", True),
        ("sport/tennis/+", "sport/tennis/player1/ranking", False),
        ("sport/+", "sport", False),
        ("sport/+", "sport/", True),
        ("+/+", "/finance", True),
        ("/+", "/finance", True),
        ("+", "/finance", False),
        ("#", "/finance", True),
        # empty levels are levels
        ("a//b", "a//b", True),
        ("a/+/b", "a//b", True),
        ("a/+", "a/", True),
        ("+/a", "/a", True),
        ("a/#", "a", True),
        ("a/#", "a/", True),
        ("a/#", "a/b/c", True),
        ("a/#", "ab", False),
        ("a/b", "a/b/", False),
        ("a", "a/", False),
        ("+", "a", True),
        # §4.7.2: topics beginning with '$'
        ("#", "$SYS/x", False),
        ("+/x", "$SYS/x", False),
        ("+", "$SYS", False),
        ("$SYS/#", "$SYS/x", True),
        ("$SYS/#", "$SYS", True),
        ("$SYS/+", "$SYS/x", True),
        ("$SYS/x", "$SYS/x", True),
        ("a/#", "a/$x", True),
        ("a/+", "a/$x", True),
        # case sensitive, no normalisation
        ("A", "a", False),
        ("a /b", "a/b", False),
    ],
)
def test_matches_spec_examples(filter_: str, topic: str, expected: bool) -> None:
    assert matches(filter_, topic) is expected
    assert reference_matches(filter_, topic) is expected  # keep the oracle honest


# --- matches vs a reference implementation ---------------------------------------------------


def reference_matches(filter_: str, topic: str) -> bool:
    """Obviously-correct MQTT matching, level by level, recursively."""
    f_levels = filter_.split("/")
    t_levels = topic.split("/")
    if topic.startswith("$") and f_levels[0] in ("+", "#"):
        return False

    def rec(i: int, j: int) -> bool:
        if i == len(f_levels):
            return j == len(t_levels)
        if f_levels[i] == "#":
            return True  # matches the parent level and everything below it
        if j == len(t_levels):
            return False
        if f_levels[i] in ("+", t_levels[j]):
            return rec(i + 1, j + 1)
        return False

    return rec(0, 0)


LEVELS = ["", "a", "b", "$x"]
FIRST_LEVELS = [*LEVELS, "$SYS"]

topic_strategy = st.builds(
    lambda first, rest: "/".join([first, *rest]),
    st.sampled_from(FIRST_LEVELS),
    st.lists(st.sampled_from(LEVELS), max_size=4),
).filter(bool)

filter_strategy = st.builds(
    lambda first, rest, hash_tail: "/".join([first, *rest] + (["#"] if hash_tail else [])),
    st.sampled_from([*FIRST_LEVELS, "+"]),
    st.lists(st.sampled_from([*LEVELS, "+"]), max_size=4),
    st.booleans(),
).filter(bool) | st.just("#")


@given(filter_strategy, topic_strategy)
def test_matches_agrees_with_reference(filter_: str, topic: str) -> None:
    validate_filter(filter_)
    validate_topic(topic)
    assert matches(filter_, topic) == reference_matches(filter_, topic)


@given(topic_strategy)
def test_topic_matches_itself_as_filter(topic: str) -> None:
    assert matches(topic, topic)


# --- TopicIndex ------------------------------------------------------------------------------


def brute_force(pairs: list[tuple[str, str]], topic: str) -> list[str]:
    """Values whose filter matches, once each, ordered by their first matching pair."""
    result: list[str] = []
    for filter_, value in pairs:
        if value not in result and matches(filter_, topic):
            result.append(value)
    return result


def assert_index_empty(index: TopicIndex[str]) -> None:
    assert len(index) == 0
    assert index._exact == {}
    assert index._root.is_empty()
    assert index._wildcards == 0


def test_index_basic() -> None:
    index: TopicIndex[str] = TopicIndex()
    assert index.match("a/b") == ()
    assert index.add("a/b", "x")
    assert not index.add("a/b", "x")  # duplicate pair
    assert index.add("a/+", "y")
    assert index.add("#", "x")
    assert index.add("a/#", "z")
    assert len(index) == 4
    assert list(index.match("a/b")) == ["x", "y", "z"]
    assert list(index.match("a")) == ["x", "z"]
    assert list(index.match("$SYS/a")) == []
    assert index.remove("a/b", "x")
    assert not index.remove("a/b", "x")
    assert not index.remove("never/subscribed", "x")
    assert not index.remove("a/#/b", "x")  # invalid filter: simply absent
    assert list(index.match("a/b")) == ["y", "x", "z"]
    assert index.remove("#", "x")
    assert index.remove("a/+", "y")
    assert index.remove("a/#", "z")
    assert_index_empty(index)


def test_index_order_is_first_added_pair() -> None:
    index: TopicIndex[str] = TopicIndex()
    index.add("a/#", "late")
    index.add("a/b", "early")
    index.add("+/b", "late")  # a later pair of an already-listed value does not move it
    assert list(index.match("a/b")) == ["late", "early"]
    index.remove("a/#", "late")
    assert list(index.match("a/b")) == ["early", "late"]


def test_index_rejects_invalid_filters() -> None:
    index: TopicIndex[int] = TopicIndex()
    for bad in ("", "a/#/b", "a+", "#a", "a\0"):
        with pytest.raises(TopicError):
            index.add(bad, 1)
    assert len(index) == 0


def test_index_exact_match_returns_stored_list_without_copying() -> None:
    index: TopicIndex[str] = TopicIndex()
    index.add("swarm/r/agent/a1/inbox", "a1")
    first = index.match("swarm/r/agent/a1/inbox")
    assert first == ["a1"]
    assert index.match("swarm/r/agent/a1/inbox") is first
    index.add("swarm/r/events/#", "recorder")  # a non-matching wildcard keeps the fast path
    assert index.match("swarm/r/agent/a1/inbox") is first
    assert index.match("swarm/r/agent/a1/inbox") is first


def test_index_cleans_up_after_removal() -> None:
    index: TopicIndex[int] = TopicIndex()
    filters = ["a/b/c", "a/+/c", "a/+/#", "+/+", "#", "a/b/#", "/", "//+", "$SYS/#", "a"]
    for round_ in range(3):
        for i, f in enumerate(filters):
            index.add(f, i + round_)
        for t in ("a/b/c", "/", "$SYS/x", "a"):
            index.match(t)
        for i, f in enumerate(reversed(filters)):
            assert index.remove(f, len(filters) - 1 - i + round_)
        assert_index_empty(index)


FILTERS = ["a", "a/b", "a/+", "+/b", "a/#", "#", "+", "+/+", "/+", "a//b", "$SYS/#", "$SYS/+"]
FILTERS += ["a/+/#", "+/#", "", "a/"]  # "" is invalid and must be rejected by add
INDEX_TOPICS = ["a", "a/b", "b", "/", "a/", "/b", "a//b", "a/b/c", "$SYS", "$SYS/a", "b/b"]

operation = st.tuples(
    st.sampled_from(["add", "add", "remove"]),
    st.sampled_from(FILTERS),
    st.sampled_from(["v0", "v1", "v2", "v3"]),
)


@given(st.lists(operation, max_size=40), st.lists(st.sampled_from(INDEX_TOPICS), max_size=3))
def test_index_matches_brute_force(
    operations: list[tuple[str, str, str]], probes: list[str]
) -> None:
    index: TopicIndex[str] = TopicIndex()
    model: list[tuple[str, str]] = []  # pairs in the order they were (last) added
    for op, filter_, value in operations:
        pair = (filter_, value)
        if op == "add":
            if not filter_:
                with pytest.raises(TopicError):
                    index.add(filter_, value)
                continue
            assert index.add(filter_, value) == (pair not in model)
            if pair not in model:
                model.append(pair)
        else:
            assert index.remove(filter_, value) == (pair in model)
            if pair in model:
                model.remove(pair)
        assert len(index) == len(model)
        for topic in probes:  # interleaved lookups exercise memo invalidation
            assert list(index.match(topic)) == brute_force(model, topic)
    for topic in INDEX_TOPICS:
        assert list(index.match(topic)) == brute_force(model, topic)
    for filter_, value in list(model):
        assert index.remove(filter_, value)
    assert_index_empty(index)
