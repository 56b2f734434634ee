"""Counting peers' votes on a subject (a hazard, a rumor) until the fleet may believe it.

A taxi hears "hazard at X" from peers, some of them Sybils, often several times over
(gossip delivers duplicates). `VoteTally` decides per subject with one of three rules:

- ``"any"``: the first yes vote is enough (fast, and trivially fooled by one liar);
- ``"quorum"``: at least ``quorum`` distinct voters said yes;
- ``"majority"``: at least ``quorum`` said yes *and* more said yes than no.

Votes count per distinct voter and only the first one does: a re-delivered or changed
vote is ignored, so duplicates can never tip a decision. Distinctness stops replays, not
Sybils: an attacker with ``quorum`` identities still wins, so whoever admits voters (the
agent) must make identities costly. Acceptance is final, and memory is bounded: past
``memory`` subjects the oldest is forgotten, acceptance included, and starts afresh if it
is voted on again. Sans-I/O and plain dicts and sets, since it runs once per message.
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["RULES", "VoteTally"]

RULES = ("any", "quorum", "majority")


class _Subject:
    __slots__ = ("accepted", "no", "voters", "yes")

    def __init__(self) -> None:
        self.voters: set[int] = set()
        self.yes = 0
        self.no = 0
        self.accepted = False


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


class VoteTally:
    """Per-subject vote counts and a decision rule; see the module docstring.

    >>> tally = VoteTally("quorum", quorum=2)
    >>> tally.vote("ice@5", voter=7, yes=True), tally.vote("ice@5", voter=7, yes=True)
    (False, False)
    >>> tally.vote("ice@5", voter=9, yes=True), tally.accepted("ice@5")
    (True, True)
    """

    __slots__ = ("_majority", "_need", "_subjects", "memory", "quorum", "rule")

    def __init__(self, rule: str = "any", quorum: int = 1, memory: int = 1024) -> None:
        if not isinstance(rule, str) or rule not in RULES:
            raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
        self.rule = rule
        self.quorum = _positive_int("quorum", quorum)
        self.memory = _positive_int("memory", memory)
        # "any" is "quorum" with a quorum of one.
        self._need = 1 if rule == "any" else self.quorum
        self._majority = rule == "majority"
        self._subjects: dict[Hashable, _Subject] = {}

    def __len__(self) -> int:
        return len(self._subjects)

    def vote(self, subject: Hashable, voter: int, yes: bool) -> bool:
        """Count `voter`'s first vote on `subject`; True only on the vote that accepts it."""
        if type(voter) is not int and (isinstance(voter, bool) or not isinstance(voter, int)):
            raise ValueError(f"voter must be an int id, got {voter!r}")
        if type(yes) is not bool:
            raise ValueError(f"yes must be a bool, got {yes!r}")
        subjects = self._subjects
        entry = subjects.get(subject)
        if entry is None:
            entry = subjects[subject] = _Subject()
            if len(subjects) > self.memory:
                del subjects[next(iter(subjects))]
        elif voter in entry.voters:
            return False
        entry.voters.add(voter)
        if not yes:
            # A no vote can neither raise the yes count nor make yes > no.
            entry.no += 1
            return False
        entry.yes += 1
        if entry.accepted or entry.yes < self._need or (self._majority and entry.yes <= entry.no):
            return False
        entry.accepted = True
        return True

    def accepted(self, subject: Hashable) -> bool:
        """Whether `subject` has been accepted (False for one never seen or forgotten)."""
        entry = self._subjects.get(subject)
        return entry is not None and entry.accepted

    def counts(self, subject: Hashable) -> tuple[int, int]:
        """(distinct yes voters, distinct no voters) on `subject`."""
        entry = self._subjects.get(subject)
        return (0, 0) if entry is None else (entry.yes, entry.no)
