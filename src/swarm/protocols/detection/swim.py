"""SWIM failure detection (Das, Gupta and Motivala, DSN 2002) as a sans-I/O core.

Every protocol period a member pings one other member. If no ack arrives by the period's
timeout, it asks `k` others to ping that member for it (`ping-req`); if no ack, direct or
relayed, arrives by the end of the period, the member is *suspected*. A suspicion that
is not refuted within `suspicion_periods` is *confirmed*: the member is declared failed
and dropped. A live member refutes a suspicion of itself by raising its incarnation
number. Membership changes travel piggybacked on pings and acks, each retransmitted a
bounded number of times (infection-style dissemination, SWIM section 4.1).

The driver calls `on_period(period, rng)` at each period's start, `on_timeout(period,
rng)` at the direct ping's timeout, and `on_message(src, kind, body)` per message; each
returns the messages to send as (member, kind, body). No clock, socket or task here.
Two drivers: `simulate` (lockstep periods, no broker) and a fleet's agents
(`swarm.fleet.detection`), which carry the messages over their Link as wire kinds
`ping`, `ack` and `ping-req`.

Target selection: "random" (a uniform member each period: the paper's analysis, expected
first detection after 1 / (1 - (1 - 1/(n-1))^(n-1)) -> e/(e-1) periods) or
"round-robin" (a fresh random order each pass: every member is pinged within 2n - 1
periods, section 4.3).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np

from swarm import wire

__all__ = [
    "ALIVE",
    "CONFIRM",
    "SELECTIONS",
    "SUSPECT",
    "Send",
    "Swim",
    "SwimError",
    "default_suspicion_periods",
    "expected_first_detection",
]

Send = tuple[int, str, Any]
ALIVE, SUSPECT, CONFIRM = "alive", "suspect", "confirm"
SELECTIONS = ("random", "round-robin")
MAX_UPDATES = 32  # membership updates piggybacked on one message


class SwimError(ValueError):
    """A message body or a setting SWIM cannot use; a malformed message changes nothing."""


KINDS = ("ping", "ack", "ping-req")
CODES = {"ping": 60, "ack": 61, "ping-req": 62}  # docs/wire.md keeps the registry
for _kind in KINDS:
    wire.register_kind(_kind, CODES[_kind])


def _checked(updates: Any) -> list[tuple[str, int, int]]:
    """Piggybacked membership updates, every one checked before any is applied."""
    if not isinstance(updates, list) or len(updates) > MAX_UPDATES:
        raise SwimError("updates is not a list of at most 32 [kind, member, incarnation]")
    out = []
    for update in updates:
        if not (isinstance(update, list) and len(update) == 3):
            raise SwimError(f"update {update!r} is not [kind, member, incarnation]")
        kind, member, incarnation = update
        if kind not in (ALIVE, SUSPECT, CONFIRM):
            raise SwimError(f"update kind {kind!r} is not alive, suspect or confirm")
        if type(member) is not int or type(incarnation) is not int or incarnation < 0:
            raise SwimError(f"update {update!r}: member and incarnation must be ints")
        out.append((kind, member, incarnation))
    return out


def default_suspicion_periods(n: int) -> int:
    """How long a suspicion waits for a refutation: 4 log10(n) periods, at least 3.

    A refutation must spread to the whole group, which infection-style dissemination does
    in O(log n) periods; the factor is memberlist's (HashiCorp) `SuspicionMult`."""
    return max(3, math.ceil(4 * math.log10(max(n, 2))))


def expected_first_detection(n: int) -> float:
    """Expected periods from a crash to its first suspicion, members picking targets
    uniformly (SWIM section 3.1): 1 / (1 - (1 - 1/(n-1))^(n-1)), e/(e-1) for large n."""
    if type(n) is not int or n < 2:
        raise SwimError(f"n = {n!r}: SWIM needs at least 2 members")
    return 1.0 / (1.0 - (1.0 - 1.0 / (n - 1)) ** (n - 1))


@dataclass(slots=True)
class _Member:
    state: str  # ALIVE or SUSPECT (confirmed members are removed)
    incarnation: int
    since: int = 0  # period the suspicion began


class Swim:
    """One member's view and its part of the protocol."""

    def __init__(
        self,
        me: int,
        members: Iterable[int],
        *,
        k: int = 3,
        suspicion_periods: int | None = None,
        retransmit: float = 3.0,
        selection: str = "random",
        incarnation: int = 0,
    ) -> None:
        """`incarnation` above 0 is a member coming back (a repaired device): it announces
        itself alive with it, and members that had confirmed it failed take it back."""
        if type(k) is not int or k < 0:
            raise SwimError(f"k = {k!r}: the indirect probes must be a count >= 0")
        self.members: dict[int, _Member] = {m: _Member(ALIVE, 0) for m in members if m != me}
        # Kept beside `members` so that a period costs O(1), not O(n): the members in
        # order (rebuilt when one is dropped) and the suspects, by number.
        self._ids: list[int] | None = None
        self._suspects: set[int] = set()
        if suspicion_periods is None:
            suspicion_periods = default_suspicion_periods(len(self.members) + 1)
        if type(suspicion_periods) is not int or suspicion_periods < 1:
            raise SwimError(f"suspicion_periods = {suspicion_periods!r}: at least 1")
        if selection not in SELECTIONS:
            raise SwimError(f"selection = {selection!r}: one of {', '.join(SELECTIONS)}")
        if not (isinstance(retransmit, int | float) and 0 < retransmit < 1000):
            raise SwimError(f"retransmit = {retransmit!r}: must be in (0, 1000)")
        if type(incarnation) is not int or incarnation < 0:
            raise SwimError(f"incarnation = {incarnation!r}: a count >= 0")
        self.me = me
        self.k = k
        self.suspicion_periods = suspicion_periods
        self.selection = selection
        self.retransmit = retransmit
        self.incarnation = incarnation
        self.period = -1
        self.target: int | None = None  # this period's ping target
        self.acked = True  # whether the target answered (directly or through others)
        self._seq = 0  # even: our own pings
        self._relay_seq = -1  # odd: pings made for others (ping-req)
        # our seq -> (requester, its seq, period): relays still waiting for an ack
        self._relays: dict[int, tuple[int, int, int]] = {}
        self._order: list[int] = []  # round-robin pass
        self._updates: dict[int, tuple[str, int, int]] = {}  # member -> (kind, inc, sends left)
        # What this member concluded, for measurement: (period, member) pairs; `probed`
        # lists the suspicions its own probes raised (the rest it heard from others).
        self.suspected: list[tuple[int, int]] = []
        self.probed: list[tuple[int, int]] = []
        self.confirmed: list[tuple[int, int]] = []
        self.refuted = 0  # suspicions of itself it answered
        self.sent = 0  # messages its driver sent for it (counted by the driver)
        self._gone: dict[int, int] = {}  # confirmed failed -> the incarnation confirmed
        if incarnation > 0:
            self._spread(ALIVE, me, incarnation)

    # -- the protocol period -------------------------------------------------------------
    def on_period(self, period: int, rng: np.random.Generator) -> list[Send]:
        """Judge the last period's target, expire suspicions, ping a new target."""
        self.period = period
        # An ack later than its period is of no use to the requester: forget the relay.
        self._relays = {k: v for k, v in self._relays.items() if v[2] >= period - 1}
        target = self.target
        if target is not None and not self.acked and target in self.members:  # noqa: SIM102
            if self._suspect(target, self.members[target].incarnation):
                self.probed.append((period, target))
        for member in sorted(self._suspects):
            if period - self.members[member].since >= self.suspicion_periods:
                self._confirm(member)
        self.target = self._choose(rng)
        self.acked = self.target is None
        if self.target is None:
            return []
        return [(self.target, "ping", self._body(seq=self._next_seq()))]

    def on_timeout(self, period: int, rng: np.random.Generator) -> list[Send]:
        """No ack yet: ask up to k other members to ping the target for us."""
        if self.acked or self.target is None or period != self.period:
            return []
        others = [m for m in self.members if m != self.target]
        if not others:
            return []
        chosen = rng.choice(len(others), size=min(self.k, len(others)), replace=False)
        seq = self._seq
        return [
            (others[int(i)], "ping-req", self._body(seq=seq, target=self.target))
            for i in sorted(chosen.tolist())
        ]

    # -- messages ------------------------------------------------------------------------
    def on_message(self, src: int, kind: str, body: Any) -> list[Send]:
        """Checked whole before anything changes: a malformed message changes nothing."""
        if kind not in KINDS:
            raise SwimError(f"SWIM does not accept {kind!r}")
        if not isinstance(body, dict):
            raise SwimError(f"{kind} body is {type(body).__name__}, not a map")
        seq = body.get("seq")
        if type(seq) is not int:
            raise SwimError(f"{kind}: seq {seq!r} is not an int")
        target = body.get("target")
        if kind == "ping-req" and (type(target) is not int or target == self.me):
            raise SwimError(f"ping-req: target {target!r} is not another member")
        self._learn(_checked(body.get("updates", [])))
        if kind == "ping":
            return [(src, "ack", self._body(seq=seq))]
        if kind == "ack":
            if src == self.target and seq == self._seq:
                self.acked = True
            relay = self._relays.pop(seq, None)
            if relay is not None:  # we pinged for someone: pass the ack on
                requester, their_seq, _ = relay
                return [(requester, "ack", self._body(seq=their_seq, of=src))]
            if body.get("of") == self.target and seq == self._seq:
                self.acked = True  # relayed through a ping-req
            return []
        # ping-req: ping the target for the requester, and pass its ack on
        assert type(target) is int
        mine = self._next_relay_seq()
        self._relays[mine] = (src, seq, self.period)
        return [(target, "ping", self._body(seq=mine))]

    # -- membership ----------------------------------------------------------------------
    def _choose(self, rng: np.random.Generator) -> int | None:
        if self._ids is None:
            self._ids = list(self.members)
        members = self._ids
        if not members:
            return None
        if self.selection == "random":
            return members[int(rng.integers(len(members)))]
        while self._order and self._order[0] not in self.members:
            self._order.pop(0)
        if not self._order:
            self._order = [members[int(i)] for i in rng.permutation(len(members))]
        return self._order.pop(0)

    def _suspect(self, member: int, incarnation: int) -> bool:
        """Whether this is news: a suspicion of a member not already suspected."""
        entry = self.members.get(member)
        if entry is None or incarnation < entry.incarnation:
            return False
        if entry.state == SUSPECT and incarnation == entry.incarnation:
            return False
        entry.state, entry.incarnation, entry.since = SUSPECT, incarnation, self.period
        self._suspects.add(member)
        self.suspected.append((self.period, member))
        self._spread(SUSPECT, member, incarnation)
        return True

    def _confirm(self, member: int) -> None:
        entry = self.members.pop(member, None)
        if entry is not None:
            self._gone[member] = entry.incarnation
            self._ids = None
            self._suspects.discard(member)
            self.confirmed.append((self.period, member))
            self._spread(CONFIRM, member, entry.incarnation)

    def _learn(self, updates: list[tuple[str, int, int]]) -> None:
        for kind, member, incarnation in updates:
            if member == self.me:
                if kind in (SUSPECT, CONFIRM) and incarnation >= self.incarnation:
                    self.incarnation = incarnation + 1  # refute: "I am alive, and newer"
                    self.refuted += 1
                    self._spread(ALIVE, self.me, self.incarnation)
                continue
            if kind == SUSPECT:
                self._suspect(member, incarnation)
            elif kind == ALIVE:
                entry = self.members.get(member)
                if entry is None and incarnation > self._gone.get(member, -1):
                    # a new member, or one declared failed that is back, newer than then
                    self._gone.pop(member, None)
                    self.members[member] = _Member(ALIVE, incarnation)
                    self._ids = None
                    self._spread(ALIVE, member, incarnation)
                elif entry is not None and incarnation > entry.incarnation:
                    entry.state, entry.incarnation = ALIVE, incarnation
                    self._suspects.discard(member)
                    self._spread(ALIVE, member, incarnation)
            else:
                entry = self.members.get(member)
                # a confirmation of an earlier life does not remove the member's new one
                if entry is not None and incarnation >= entry.incarnation:
                    self._confirm(member)

    def _spread(self, kind: str, member: int, incarnation: int) -> None:
        """Piggyback this change on the next ceil(retransmit * log2(n + 1)) messages."""
        sends = math.ceil(self.retransmit * math.log2(len(self.members) + 2))
        self._updates[member] = (kind, incarnation, sends)

    def _body(self, **fields: Any) -> dict[str, Any]:
        updates: list[list[Any]] = []
        for member, (kind, incarnation, left) in list(islice(self._updates.items(), MAX_UPDATES)):
            updates.append([kind, member, incarnation])
            if left <= 1:
                del self._updates[member]
            else:
                self._updates[member] = (kind, incarnation, left - 1)
        return {**fields, "updates": updates}

    def _next_seq(self) -> int:
        self._seq += 2
        return self._seq

    def _next_relay_seq(self) -> int:
        self._relay_seq += 2
        return self._relay_seq

    @property
    def view(self) -> Sequence[int]:
        """The members this one believes are in the group (suspects included)."""
        return list(self.members)
