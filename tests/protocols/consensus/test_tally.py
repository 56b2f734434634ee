"""VoteTally: the three rules, idempotent votes, bounded memory and input checks."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarm.protocols.consensus.tally import RULES, VoteTally

# (subject, voter, yes)
Vote = tuple[int, int, bool]

votes_st = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 7), st.booleans()), max_size=60)
tallies_st = st.tuples(st.sampled_from(RULES), st.integers(1, 4))


def cast(tally: VoteTally, votes: list[Vote]) -> list[bool]:
    return [tally.vote(subject, voter, yes) for subject, voter, yes in votes]


def outcome(tally: VoteTally, subjects: range = range(4)) -> list[tuple[tuple[int, int], bool]]:
    return [(tally.counts(s), tally.accepted(s)) for s in subjects]


# ------------------------------------------------------------------------------ rules


def test_any_accepts_at_the_first_yes_whatever_the_quorum() -> None:
    tally = VoteTally("any", quorum=5)
    assert tally.vote("ice", 1, False) is False
    assert tally.vote("ice", 2, False) is False
    assert tally.vote("ice", 3, True) is True
    assert tally.accepted("ice") and tally.counts("ice") == (1, 2)
    assert tally.vote("ice", 4, True) is False  # True exactly once


def test_quorum_needs_that_many_distinct_yes_voters() -> None:
    tally = VoteTally("quorum", quorum=3)
    assert cast(tally, [("ice", 1, True), ("ice", 1, True), ("ice", 2, True)]) == [False] * 3
    assert not tally.accepted("ice") and tally.counts("ice") == (2, 0)
    # No votes do not hold a quorum back.
    assert cast(tally, [("ice", 3, False), ("ice", 4, False), ("ice", 5, True)]) == [
        False,
        False,
        True,
    ]
    assert tally.accepted("ice") and tally.counts("ice") == (3, 2)


def test_majority_needs_the_quorum_and_more_yes_than_no() -> None:
    tally = VoteTally("majority", quorum=2)
    cast(tally, [("ice", 1, False), ("ice", 2, False), ("ice", 3, True), ("ice", 4, True)])
    assert tally.counts("ice") == (2, 2) and not tally.accepted("ice")  # a tie is not enough
    assert tally.vote("ice", 5, True) is True
    assert tally.counts("ice") == (3, 2)


def test_majority_with_quorum_one_accepts_a_lone_yes_only_when_unopposed() -> None:
    tally = VoteTally("majority")
    assert tally.vote("a", 1, True) is True
    tally.vote("b", 1, False)
    assert tally.vote("b", 2, True) is False
    assert tally.vote("b", 3, True) is True


def test_acceptance_is_final() -> None:
    tally = VoteTally("majority", quorum=1)
    assert tally.vote("ice", 1, True) is True
    assert cast(tally, [("ice", v, False) for v in range(2, 10)]) == [False] * 8
    assert tally.accepted("ice") and tally.counts("ice") == (1, 8)


def test_the_first_vote_of_a_voter_counts_and_later_ones_are_ignored() -> None:
    tally = VoteTally("quorum", quorum=2)
    tally.vote("ice", 1, False)
    assert tally.vote("ice", 1, True) is False  # a changed vote
    assert tally.counts("ice") == (0, 1)
    # Votes are per subject: voter 1 may still vote on another one.
    tally.vote("fog", 1, True)
    assert tally.counts("fog") == (1, 0)


def test_subjects_are_independent_and_any_hashable() -> None:
    tally = VoteTally("quorum", quorum=2)
    cast(tally, [((3, 4), 1, True), ("x", 1, True), ((3, 4), 2, True)])
    assert tally.accepted((3, 4)) and not tally.accepted("x")
    assert tally.counts("never") == (0, 0) and not tally.accepted("never")
    assert len(tally) == 2
    with pytest.raises(TypeError):
        tally.vote(["unhashable"], 1, True)


def test_defaults() -> None:
    tally = VoteTally()
    assert (tally.rule, tally.quorum, tally.memory) == ("any", 1, 1024)
    assert len(tally) == 0


# ----------------------------------------------------------------------------- memory


def test_memory_forgets_the_oldest_subject_and_its_acceptance() -> None:
    tally = VoteTally("any", memory=2)
    assert tally.vote("a", 1, True)
    tally.vote("b", 1, False)
    tally.vote("a", 2, True)  # a vote does not refresh "a": eviction follows insertion
    tally.vote("c", 1, False)
    assert len(tally) == 2
    assert not tally.accepted("a") and tally.counts("a") == (0, 0)
    assert tally.counts("b") == (0, 1) and tally.counts("c") == (0, 1)
    # A forgotten subject starts afresh: it can be accepted, and counted, again.
    assert tally.vote("a", 1, True) is True
    assert tally.counts("b") == (0, 0)  # ...and evicted "b"


def test_memory_of_one_remembers_only_the_last_subject() -> None:
    tally = VoteTally("quorum", quorum=2, memory=1)
    cast(tally, [("a", 1, True), ("b", 2, True), ("a", 3, True)])
    assert len(tally) == 1 and tally.counts("a") == (1, 0) and tally.counts("b") == (0, 0)


# ------------------------------------------------------------------------- validation


@pytest.mark.parametrize("rule", ["all", "Any", "", None, 1, ("any",)])
def test_unknown_rule_is_an_error_naming_the_choices(rule: Any) -> None:
    with pytest.raises(ValueError, match=r"rule must be one of any, quorum, majority, got"):
        VoteTally(rule)


@pytest.mark.parametrize("name", ["quorum", "memory"])
@pytest.mark.parametrize("value", [0, -1, 1.0, 2.5, "2", None, True, False])
def test_quorum_and_memory_must_be_positive_ints(name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"{name} must be an int >= 1, got {value!r}"):
        VoteTally("quorum", **{name: value})


def test_quorum_is_checked_even_where_the_rule_ignores_it() -> None:
    with pytest.raises(ValueError, match="quorum"):
        VoteTally("any", quorum=0)


@pytest.mark.parametrize("voter", [True, False, 1.0, "1", None, (1,)])
def test_voter_must_be_an_int(voter: Any) -> None:
    tally = VoteTally()
    with pytest.raises(ValueError, match=r"voter must be an int id, got"):
        tally.vote("ice", voter, True)
    assert len(tally) == 0


@pytest.mark.parametrize("yes", [1, 0, "yes", None, 1.0])
def test_yes_must_be_a_bool(yes: Any) -> None:
    tally = VoteTally()
    with pytest.raises(ValueError, match=r"yes must be a bool, got"):
        tally.vote("ice", 1, yes)
    assert len(tally) == 0


def test_large_and_negative_voter_ids_are_fine() -> None:
    tally = VoteTally("quorum", quorum=2)
    assert not tally.vote("ice", -(2**40), True)
    assert tally.vote("ice", 2**70, True)


# ----------------------------------------------------------------------- properties


def reference(rule: str, quorum: int, memory: int, votes: list[Vote]) -> tuple[Any, list[bool]]:
    """The semantics written out plainly: subject -> [voters, yes, no, accepted]."""
    need = 1 if rule == "any" else quorum
    state: OrderedDict[int, list[Any]] = OrderedDict()
    returns = []
    for subject, voter, yes in votes:
        if subject not in state:
            state[subject] = [set(), 0, 0, False]
            if len(state) > memory:
                state.popitem(last=False)
        entry = state[subject]
        fresh = voter not in entry[0]
        if fresh:
            entry[0].add(voter)
            entry[1 if yes else 2] += 1
        holds = entry[1] >= need and (rule != "majority" or entry[1] > entry[2])
        returns.append(fresh and holds and not entry[3])
        entry[3] = entry[3] or holds
    return {s: (e[1], e[2], e[3]) for s, e in state.items()}, returns


@given(tallies_st, st.integers(1, 5), votes_st)
def test_matches_the_reference_semantics(
    rule_quorum: tuple[str, int], memory: int, votes: list[Vote]
) -> None:
    rule, quorum = rule_quorum
    tally = VoteTally(rule, quorum, memory)
    returns = cast(tally, votes)
    model, expected = reference(rule, quorum, memory, votes)
    assert returns == expected
    assert len(tally) == len(model)
    for subject in range(4):
        yes, no, accepted = model.get(subject, (0, 0, False))
        assert tally.counts(subject) == (yes, no)
        assert tally.accepted(subject) is accepted


@given(tallies_st, votes_st, st.data())
def test_redelivered_and_changed_votes_change_nothing(
    rule_quorum: tuple[str, int], votes: list[Vote], data: st.DataObject
) -> None:
    tally = VoteTally(*rule_quorum)
    cast(tally, votes)
    before = outcome(tally)
    if votes:
        again = data.draw(st.lists(st.sampled_from(votes), max_size=30), label="replays")
        flip = data.draw(st.lists(st.booleans(), min_size=len(again), max_size=len(again)))
        replays = [(s, v, yes != f) for (s, v, yes), f in zip(again, flip, strict=True)]
        assert not any(cast(tally, replays))
    assert outcome(tally) == before


@given(tallies_st, votes_st, st.randoms(use_true_random=False))
def test_counts_do_not_depend_on_the_order_of_votes(
    rule_quorum: tuple[str, int], votes: list[Vote], random: Any
) -> None:
    rule, quorum = rule_quorum
    first = list({(s, v): (s, v, yes) for s, v, yes in reversed(votes)}.values())
    shuffled = first[:]
    random.shuffle(shuffled)
    a, b = VoteTally(rule, quorum), VoteTally(rule, quorum)
    cast(a, first)
    cast(b, shuffled)
    for subject in range(4):
        assert a.counts(subject) == b.counts(subject)
        yes, no = a.counts(subject)
        # The final counts decide whenever they satisfy the rule: the last yes vote
        # arrived with every yes counted and at most the final no votes.
        holds = yes >= (1 if rule == "any" else quorum) and (rule != "majority" or yes > no)
        if holds or rule != "majority":
            assert a.accepted(subject) is b.accepted(subject) is holds


@given(tallies_st, votes_st)
def test_acceptance_only_grows_and_is_announced_once(
    rule_quorum: tuple[str, int], votes: list[Vote]
) -> None:
    rule, quorum = rule_quorum
    tally = VoteTally(rule, quorum)
    announced: set[int] = set()
    for subject, voter, yes in votes:
        was = tally.accepted(subject)
        yes_before = tally.counts(subject)[0]
        if tally.vote(subject, voter, yes):
            assert subject not in announced and not was
            announced.add(subject)
            # Only a fresh yes vote can tip a subject.
            assert yes and tally.counts(subject)[0] == yes_before + 1
        assert tally.accepted(subject) is (subject in announced)
        if was:
            assert tally.accepted(subject)
        if tally.accepted(subject) and rule != "any":
            assert tally.counts(subject)[0] >= quorum
