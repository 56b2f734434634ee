"""Gossip and consensus cores as hypothesis state machines, on `swarm.testing.gossip`.

Each machine drives a `Network` of sans-I/O cores one step at a time: tick an agent,
deliver, drop or duplicate any in-flight message (so every order is possible), crash
an agent, and let Sybils (ids outside the fleet) inject votes, rumors and forged bodies.

- `PushSumMachine`: push-sum conserves mass. Live agents' (s, w), plus what is in
  flight, plus what was lost (dropped, sent to a crashed agent, or held by it when it
  crashed) equals the initial totals plus what Sybils and duplicates added. Push-sum is
  *not* idempotent: a duplicated share is new mass, and a well-formed share from a Sybil
  is absorbed, since cores check a body's form, not its sender (agents must drop
  duplicates below the core and admit peers). So both are booked explicitly rather
  than ignored; a forged body must raise `ProtocolViolation` and change nothing.
- `RumorMachine`: dissemination cores de-duplicate. Delivering a copy of a message again
  leaves the receiver's rumor store and seen-ids exactly as after the first copy. The
  one exception is true of the code and asserted as such: a duplicated rumor-mongering
  `feedback` counts as another contact, so it may only cool rumors (contacts up, hot to
  cold), never change what is known (`test_a_duplicated_feedback_is_another_contact`).
  No rumor appears that nobody originated or injected, and honest traffic is never
  rejected.
- `VoteMachine`: honest agents and Sybils vote on hazards into one `VoteTally` per agent,
  carried by the network (duplicates and reordering included). Counts always equal the
  first delivered vote per distinct voter; `vote` returns True exactly once, on the vote
  that tips the rule; an accepted subject has at least `quorum` yes voters (and had more
  yes than no when accepted, under "majority"); and with fewer Sybils than the quorum a
  false hazard is never accepted (under "any" one Sybil suffices, by design).

Replaying a failure: the TestCases use `print_blob=True`, so a failure prints a line
``@reproduce_failure("<version>", b"...")``; put that decorator on the machine class
(e.g. above ``class PushSumMachine``) and rerun to replay exactly that example. Failures
are also saved in hypothesis' example database (``.hypothesis/``) and replayed first on
the next run. ``pytest --hypothesis-seed=N`` fixes the random seed of a whole run, and
``@seed(N)`` on a machine class fixes it for that machine. Step counts are modest for CI;
``HYPOTHESIS_PROFILE=long`` runs many more examples.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from swarm.protocols.consensus.tally import RULES, VoteTally
from swarm.protocols.gossip.aggregation import AVG_OFFER, AVG_REPLY, PUSH_SUM, PushSum
from swarm.protocols.gossip.core import ProtocolViolation, Send
from swarm.protocols.gossip.dissemination import (
    EXCHANGE,
    EXCHANGE_REPLY,
    FEEDBACK,
    PROTOCOLS,
    PULL,
    PULL_REPLY,
    PUSH,
    RUMOR,
    RumorMongering,
)
from swarm.protocols.gossip.topology import build_topology
from swarm.testing.gossip import (
    Message,
    Network,
    fake_ids,
    initial_values,
    topologies,
    wire_bodies,
)

REL = 1e-9
GARBAGE = wire_bodies()
MACHINE_SETTINGS = settings(print_blob=True, stateful_step_count=30)

# Picks an element of a list whose length is only known when the rule runs; small
# numbers shrink to the first element.
index = st.integers(0, 2**16)
# Several deliveries per step: swarm testing often disables rules, and messages that
# are never delivered test nothing.
indices = st.lists(index, min_size=1, max_size=4)


def pick(items: list[Any], i: int) -> Any:
    return items[i % len(items)]


class NetworkMachine(RuleBasedStateMachine):
    """Rules every machine shares: deliver, drop and duplicate messages in flight.

    Subclasses set `self.net`; the `delivering`, `delivered` and `duplicated` hooks let
    them check or book each step.
    """

    net: Network

    def delivering(self, msg: Message) -> None:
        """Called before `msg` is handed to its receiver."""

    def delivered(self, msg: Message, rejected: bool) -> None:
        """Called after `msg` was handed to its receiver (and maybe refused)."""

    def duplicated(self, msg: Message) -> None:
        """Called after a second copy of `msg` went in flight."""

    def deliver_at(self, i: int) -> None:
        at = i % len(self.net.in_flight)
        msg = self.net.in_flight[at]
        self.delivering(msg)
        before = len(self.net.rejected)
        self.net.deliver(at)
        self.delivered(msg, len(self.net.rejected) > before)

    @precondition(lambda self: self.net.in_flight)
    @rule(picks=indices)
    def deliver(self, picks: list[int]) -> None:
        for i in picks:
            if self.net.in_flight:
                self.deliver_at(i)

    @precondition(lambda self: self.net.in_flight)
    @rule(i=index, duplicate=st.booleans())
    def fault(self, i: int, duplicate: bool) -> None:
        """Lose a message in flight, or send a second copy of it."""
        at = i % len(self.net.in_flight)
        if duplicate:
            self.duplicated(self.net.duplicate(at))
        else:
            self.net.drop(at)

    def can_crash(self) -> bool:
        """At most half the fleet crashes: a fleet of one tests little."""
        return 2 * (len(self.net.crashed) + 1) <= len(self.net)

    def sybil_deliver(self, src: int, dst: int, kind: str, body: Any) -> tuple[Message, bool]:
        """A Sybil's message, delivered at once; returns it and whether it was refused."""
        before = len(self.net.rejected)
        msg = self.net.inject(src, dst, kind, body)
        self.net.deliver(len(self.net.in_flight) - 1)
        return msg, len(self.net.rejected) > before


# ----------------------------------------------------------------------------- push-sum

fleets = topologies(max_n=10).flatmap(
    lambda topo: st.tuples(
        st.just(topo),
        initial_values(topo.n),
        st.integers(1, min(3, topo.min_degree)),
    )
)

# Bodies no push-sum core may accept, whatever the shape of its values.
FORGED_PUSH_SUM = [
    [math.nan, 1.0],
    [math.inf, 1.0],
    [1.0, math.nan],
    [1.0, math.inf],
    [1.0, 0.0],
    [1.0, -1.0],
    [1.0, True],
    [True, 1.0],
    ["1", 1.0],
    [[1.0], 1.0],
    [np.full(3, math.nan), 1.0],
    [np.zeros(2), 0.5],
    [1.0],
    [1.0, 1.0, 1.0],
    {"s": 1.0, "w": 1.0},
    None,
]


def holding(core: PushSum) -> tuple[np.ndarray, float]:
    return np.array(core.s, dtype=float, copy=True), core.w


class PushSumMachine(NetworkMachine):
    @initialize(fleet=fleets, seed=st.integers(0, 2**32 - 1))
    def build(self, fleet: tuple[Any, list[Any], int], seed: int) -> None:
        topo, values, fanout = fleet
        self.net = Network([PushSum(i, topo, v, fanout=fanout) for i, v in enumerate(values)], seed)
        self.shape = np.shape(values[0])
        # What entered the fleet (s, w), and the sum of |s| that bounds rounding error.
        self.entered = [self.total(values), float(topo.n)]
        self.magnitude = self.total(np.abs(np.asarray(values, dtype=float)))
        self.crashed_held = [self.total([]), 0.0]

    def total(self, parts: Any) -> np.ndarray:
        out = np.zeros(self.shape)
        for part in parts:
            out = out + np.asarray(part, dtype=float)
        return out

    def book(self, body: list[Any]) -> None:
        """Mass that entered from outside: a Sybil's share or a duplicated one."""
        self.entered[0] = self.entered[0] + np.asarray(body[0], dtype=float)
        self.entered[1] += body[1]
        self.magnitude = self.magnitude + np.abs(np.asarray(body[0], dtype=float))

    def duplicated(self, msg: Message) -> None:
        self.book(msg.body)

    @rule(picks=indices)
    def tick(self, picks: list[int]) -> None:
        for i in picks:
            self.net.tick(pick(self.net.live(), i))

    @precondition(lambda self: self.can_crash())
    @rule(i=index)
    def crash(self, i: int) -> None:
        agent = pick(self.net.live(), i)
        s, w = holding(self.net.cores[agent])
        self.crashed_held[0] = self.crashed_held[0] + s
        self.crashed_held[1] += w
        self.net.crash(agent)
        assert self.net.tick(agent) == []

    @rule(data=st.data(), i=index, how=st.sampled_from(["share", "forgery", "garbage"]))
    def sybil(self, data: st.DataObject, i: int, how: str) -> None:
        """An id outside the fleet sends to a live agent.

        A well-formed share is absorbed, not refused (cores check form, not senders). A
        known forgery is refused with ProtocolViolation and leaves the receiver as it was.
        Garbage of any kind is refused so, or else is a well-formed share and absorbed.
        """
        src = data.draw(fake_ids(len(self.net)), label="sybil id")
        kind = PUSH_SUM
        if how == "share":
            size = math.prod(self.shape)
            xs = data.draw(st.lists(st.floats(-1e6, 1e6), min_size=size, max_size=size))
            w = data.draw(st.floats(1e-3, 10.0), label="w")
            body: Any = [np.array(xs).reshape(self.shape) if self.shape else xs[0], w]
        elif how == "forgery":
            body = data.draw(st.sampled_from(FORGED_PUSH_SUM), label="body")
        else:
            kind = data.draw(st.sampled_from([PUSH_SUM, AVG_OFFER, AVG_REPLY]), label="kind")
            body = data.draw(GARBAGE, label="body")
        dst = pick(self.net.live(), i)
        before = holding(self.net.cores[dst])
        msg, rejected = self.sybil_deliver(src, dst, kind, body)
        if rejected:
            assert how != "share"
            after = holding(self.net.cores[dst])
            assert np.array_equal(before[0], after[0]) and before[1] == after[1]
        else:
            assert how != "forgery" and kind == PUSH_SUM
            assert type(msg.body) is list and len(msg.body) == 2 and msg.body[1] > 0
            self.book(msg.body)

    @invariant()
    def mass_is_conserved(self) -> None:
        net = self.net
        live = [net.cores[i] for i in net.live()]
        travelling = net.in_flight + net.lost
        s = self.total([c.s for c in live] + [m.body[0] for m in travelling])
        w = math.fsum([c.w for c in live] + [m.body[1] for m in travelling])
        s = s + self.crashed_held[0]
        w += self.crashed_held[1]
        scale = self.magnitude + 1.0
        assert np.all(np.abs(s - self.entered[0]) <= REL * scale), (s, self.entered[0])
        assert abs(w - self.entered[1]) <= REL * self.entered[1], (w, self.entered[1])

    @invariant()
    def estimates_stay_finite(self) -> None:
        for agent in self.net.live():
            core = self.net.cores[agent]
            assert core.w > 0 and np.all(np.isfinite(core.estimate))


PushSumMachine.TestCase.settings = MACHINE_SETTINGS
TestPushSum = PushSumMachine.TestCase


# ------------------------------------------------------------------------------- rumors

# Kinds whose body is a list of [id, hops, data] rumors, per protocol.
RUMOR_KINDS = {
    "push": [PUSH],
    "pull": [PULL_REPLY],
    "push-pull": [EXCHANGE, EXCHANGE_REPLY],
    "rumor": [RUMOR],
}
REPLY_KINDS = frozenset([PULL_REPLY, EXCHANGE_REPLY, FEEDBACK])
ALL_KINDS = [PUSH, PULL, PULL_REPLY, EXCHANGE, EXCHANGE_REPLY, RUMOR, FEEDBACK]
SYBIL_RUMOR_IDS = range(100, 104)


def dedup_state(core: Any) -> tuple[int, dict[int, tuple[Any, ...]]]:
    """What de-duplication decides: how many ids were seen, and each stored rumor."""
    store = {rid: (r.learned, r.hops, r.data, r.hot, r.contacts) for rid, r in core.store.items()}
    return len(core.seen), store


def knowledge(state: tuple[int, dict[int, tuple[Any, ...]]]) -> tuple[Any, ...]:
    """`dedup_state` without the interest a rumor monger has left in each rumor."""
    seen, store = state
    return seen, {rid: entry[:3] for rid, entry in store.items()}


class RumorMachine(NetworkMachine):
    @initialize(
        topo=topologies(max_n=8),
        name=st.sampled_from(sorted(PROTOCOLS)),
        feedback=st.booleans(),
        stop=st.sampled_from(["counter", "coin"]),
        k=st.integers(1, 3),
        ttl=st.integers(0, 3),
        seed=st.integers(0, 2**32 - 1),
    )
    def build(
        self, topo: Any, name: str, feedback: bool, stop: str, k: int, ttl: int, seed: int
    ) -> None:
        extra = {"feedback": feedback, "stop": stop, "k": k} if name == "rumor" else {}
        cls = PROTOCOLS[name]
        self.name = name
        self.net = Network([cls(i, topo, ttl=ttl, **extra) for i in range(topo.n)], seed)
        self.introduced: set[int] = set()  # ids someone originated or a Sybil got in
        self.delivered_ids: set[int] = set()
        self.sybil_ids: set[int] = set()
        self.before: tuple[int, dict[int, Any]] = (0, {})  # receiver's, before delivery

    @rule(i=index, rumor_id=st.integers(0, 5), data=st.binary(max_size=4))
    def originate(self, i: int, rumor_id: int, data: bytes) -> None:
        self.net.cores[pick(self.net.live(), i)].inject(rumor_id, data, self.net.round)
        self.introduced.add(rumor_id)

    @rule(picks=indices, new_round=st.booleans())
    def tick(self, picks: list[int], new_round: bool) -> None:
        """Tick agents, in the next round if `new_round` (dissemination cores use it)."""
        if new_round:
            self.net.next_round()
        for i in picks:
            self.net.tick(pick(self.net.live(), i))

    @precondition(lambda self: self.can_crash())
    @rule(i=index)
    def crash(self, i: int) -> None:
        self.net.crash(pick(self.net.live(), i))

    @precondition(lambda self: self.net.in_flight)
    @rule(i=index, reply=st.booleans(), late=st.booleans())
    def deliver_again(self, i: int, reply: bool, late: bool) -> None:
        """Deliver a message, then a copy of it (`late`: a round later): the copy changes
        nothing.

        With `reply`, a reply (pull-reply, exchange-reply, feedback) is picked if any is
        in flight: replies only exist after a delivery, so uniform picks rarely hit them.
        """
        flight = self.net.in_flight
        replies = [j for j, m in enumerate(flight) if m.kind in REPLY_KINDS] if reply else []
        at = pick(replies, i) if replies else i % len(flight)
        copy = self.net.duplicate(at)
        self.deliver_at(at)
        if late:
            self.net.next_round()
        self.deliver_at(self.net.in_flight.index(copy))

    def delivering(self, msg: Message) -> None:
        self.before = dedup_state(self.net.cores[msg.dst])

    def delivered(self, msg: Message, rejected: bool) -> None:
        assert not rejected, f"honest {msg.kind} refused: {self.net.rejected[-1][1]}"
        again = msg.id in self.delivered_ids
        self.delivered_ids.add(msg.id)
        if not again:
            return
        after = dedup_state(self.net.cores[msg.dst])
        if msg.kind != FEEDBACK:
            assert after == self.before, msg
            return
        # A repeated feedback is one more contact: it may cool rumors, nothing else.
        assert knowledge(after) == knowledge(self.before)
        for rid, (*_, hot, contacts) in after[1].items():
            *_, was_hot, was_contacts = self.before[1][rid]
            assert contacts >= was_contacts and (was_hot or not hot)

    @rule(data=st.data(), i=index)
    def sybil(self, data: st.DataObject, i: int) -> None:
        """A Sybil sends well-formed rumors (absorbed: cores do not check senders) or
        garbage (refused with ProtocolViolation, receiver unchanged, unless well formed)."""
        src = data.draw(fake_ids(len(self.net)), label="sybil id")
        well_formed = data.draw(st.booleans(), label="well formed")
        if well_formed:
            kind = data.draw(st.sampled_from(RUMOR_KINDS[self.name]), label="kind")
            triple = st.tuples(
                st.sampled_from(SYBIL_RUMOR_IDS), st.integers(0, 3), st.binary(max_size=4)
            ).map(list)
            body: Any = data.draw(st.lists(triple, max_size=3), label="rumors")
        else:
            kind = data.draw(st.sampled_from(ALL_KINDS), label="kind")
            body = data.draw(GARBAGE, label="body")
        dst = pick(self.net.live(), i)
        before = dedup_state(self.net.cores[dst])
        msg, rejected = self.sybil_deliver(src, dst, kind, body)
        self.sybil_ids.add(msg.id)
        after = dedup_state(self.net.cores[dst])
        if rejected:
            assert not well_formed and after == before
            return
        new = set(after[1]) - set(before[1])
        mentioned = {item[0] for item in msg.body if type(item) is list and item}
        assert new <= mentioned
        self.introduced |= new

    @invariant()
    def rumors_come_from_somewhere(self) -> None:
        for core in self.net.cores:
            for rid, rumor in core.store.items():
                assert rid in self.introduced and rid in core.seen
                assert rumor.learned <= self.net.round + 1

    @invariant()
    def only_sybils_are_refused(self) -> None:
        assert all(msg.id in self.sybil_ids for msg, _ in self.net.rejected)


RumorMachine.TestCase.settings = MACHINE_SETTINGS
TestRumors = RumorMachine.TestCase


# -------------------------------------------------------------------------------- votes

VOTE = "vote"  # carried without the wire, so it needs no registered kind


class TallyCore:
    """A `VoteTally` behind the core interface, so a `Network` can carry votes to it."""

    active = True

    def __init__(self, tally: VoteTally) -> None:
        self.tally = tally
        self.announced: list[Any] = []  # subjects in the order `vote` accepted them

    def on_tick(self, round: int, rng: np.random.Generator) -> list[Send]:
        return []

    def on_message(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        if kind != VOTE or type(body) is not list or len(body) != 2:
            raise ProtocolViolation("a vote is [subject, yes]")
        subject, yes = body
        if self.tally.vote(subject, src, yes):
            self.announced.append(subject)
        return []


class VoteMachine(NetworkMachine):
    hazards = Bundle("hazards")

    @initialize(
        agents=st.integers(2, 6),
        sybils=st.lists(fake_ids(6), min_size=0, max_size=4, unique=True),
        rule_name=st.sampled_from(RULES),
        quorum=st.integers(1, 4),
    )
    def build(self, agents: int, sybils: list[int], rule_name: str, quorum: int) -> None:
        self.rule_name, self.quorum, self.sybils = rule_name, quorum, sybils
        cores = [TallyCore(VoteTally(rule_name, quorum)) for _ in range(agents)]
        self.net = Network(cores, through_wire=False)
        self.truth: dict[Any, bool] = {}
        # Per agent: subject -> {voter: first delivered yes}, and the accepted subjects.
        self.first: list[dict[Any, dict[int, bool]]] = [{} for _ in range(agents)]
        self.accepted: list[set[Any]] = [set() for _ in range(agents)]

    @precondition(lambda self: len(self.truth) < 3)
    @rule(target=hazards, real=st.booleans())
    def hazard(self, real: bool) -> Any:
        subject = ("hazard", len(self.truth))
        self.truth[subject] = real
        return subject

    def broadcast(self, voter: int, subject: Any, yes: bool) -> None:
        """A vote floods to every agent's tally (the voter's own included)."""
        for agent in range(len(self.net)):
            self.net.inject(voter, agent, VOTE, [subject, yes])

    @rule(subject=hazards, voter=index)
    def honest_vote(self, subject: Any, voter: int) -> None:
        self.broadcast(voter % len(self.net), subject, self.truth[subject])

    @precondition(lambda self: self.sybils)
    @rule(subject=hazards, sybil=index, yes=st.booleans())
    def sybil_vote(self, subject: Any, sybil: int, yes: bool) -> None:
        self.broadcast(pick(self.sybils, sybil), subject, yes)

    def holds(self, yes: int, no: int) -> bool:
        need = 1 if self.rule_name == "any" else self.quorum
        return yes >= need and (self.rule_name != "majority" or yes > no)

    def delivered(self, msg: Message, rejected: bool) -> None:
        assert not rejected
        subject, yes = msg.body
        votes = self.first[msg.dst].setdefault(subject, {})
        votes.setdefault(msg.src, yes)
        yes_votes = sum(votes.values())
        accepted = self.accepted[msg.dst]
        tipped = subject not in accepted and self.holds(yes_votes, len(votes) - yes_votes)
        # `vote` said True exactly when this vote tipped the rule.
        announced = self.net.cores[msg.dst].announced
        assert len(announced) == len(accepted) + tipped
        if tipped:
            assert announced[-1] == subject
            accepted.add(subject)

    @invariant()
    def counts_are_distinct_first_votes(self) -> None:
        for agent, core in enumerate(self.net.cores):
            for subject in self.truth:
                votes = self.first[agent].get(subject, {})
                yes = sum(votes.values())
                assert core.tally.counts(subject) == (yes, len(votes) - yes)
                assert core.tally.accepted(subject) is (subject in self.accepted[agent])
                assert core.announced.count(subject) == (subject in self.accepted[agent])

    @invariant()
    def no_decision_without_quorum(self) -> None:
        for core in self.net.cores:
            for subject in core.announced:
                yes, _ = core.tally.counts(subject)
                assert yes >= (1 if self.rule_name == "any" else self.quorum)

    @invariant()
    def sybils_below_the_quorum_cannot_fake_a_hazard(self) -> None:
        # Honest agents vote no on a false hazard, so its yes voters are all Sybils.
        if self.rule_name == "any" or len(self.sybils) >= self.quorum:
            return
        for core in self.net.cores:
            for subject in core.announced:
                assert self.truth[subject], f"false {subject} accepted by Sybils"


VoteMachine.TestCase.settings = MACHINE_SETTINGS
TestVotes = VoteMachine.TestCase


def test_a_duplicated_feedback_is_another_contact() -> None:
    # The exception RumorMachine allows, shown on purpose: the machine rarely reaches it.
    topo = build_topology("complete", 2, np.random.default_rng(0))
    cores = [RumorMongering(i, topo, stop="counter", k=2) for i in range(2)]
    for core in cores:
        core.inject(7, b"ice", 0)
    net = Network(cores)
    net.tick(0)
    net.deliver(0)  # agent 1 knew rumor 7 already, so it answers with feedback
    [feedback] = net.in_flight
    assert feedback.kind == FEEDBACK and feedback.body == [7]
    net.duplicate(0)
    net.deliver(0)
    assert cores[0].store[7].hot and cores[0].store[7].contacts == 1
    known = knowledge(dedup_state(cores[0]))
    net.deliver(0)
    assert not cores[0].store[7].hot and cores[0].store[7].contacts == 2
    assert knowledge(dedup_state(cores[0])) == known
