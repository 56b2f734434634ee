"""Spreading rumors: push, pull, push-pull (anti-entropy) and rumor mongering.

The rules follow Demers et al. 1987, "Epidemic algorithms for replicated database
maintenance", in the synchronous style of its analysis: a node that hears a rumor during
round r knows it from round r+1 on (`learned = r + 1`) and only then passes it on. A
pull or push-pull partner answers with what it knew when the round began, so an exchange
started in round r completes within it when the round trip fits in the gossip period.

Rumors travel as `[rumor_id, hops, data]` triples; `ttl` caps the hops a rumor travels
(0 = unlimited). Bodies from peers are validated; a bad one raises `ProtocolViolation`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from swarm import wire
from swarm.protocols.gossip.core import ProtocolViolation, Send
from swarm.protocols.gossip.dedup import SeenCache
from swarm.protocols.gossip.topology import Topology

__all__ = ["CODES", "PROTOCOLS", "Dissemination", "Pull", "Push", "PushPull", "RumorMongering"]

CODES: dict[str, int] = {  # the wire codes of this module's kinds (docs/wire.md)
    "push": 10,
    "pull": 11,
    "pull-reply": 12,
    "exchange": 13,
    "exchange-reply": 14,
    "rumor": 15,
    "feedback": 16,
}
PUSH = wire.register_kind("push", CODES["push"])
PULL = wire.register_kind("pull", CODES["pull"])
PULL_REPLY = wire.register_kind("pull-reply", CODES["pull-reply"])
EXCHANGE = wire.register_kind("exchange", CODES["exchange"])
EXCHANGE_REPLY = wire.register_kind("exchange-reply", CODES["exchange-reply"])
RUMOR = wire.register_kind("rumor", CODES["rumor"])
FEEDBACK = wire.register_kind("feedback", CODES["feedback"])

MAX_RUMORS_PER_MESSAGE = 4096
_MAX_ID = 1 << 64


class _Rumor:
    __slots__ = ("contacts", "data", "hops", "hot", "learned")

    def __init__(self, learned: int, hops: int, data: bytes) -> None:
        self.learned = learned
        self.hops = hops
        self.data = data
        self.hot = True
        self.contacts = 0


def _rumor_list(body: Any) -> list[tuple[int, int, bytes]]:
    if type(body) is not list or len(body) > MAX_RUMORS_PER_MESSAGE:
        raise ProtocolViolation("rumor list must be a list of at most 4096 items")
    out = []
    for item in body:
        if type(item) is not list or len(item) != 3:
            raise ProtocolViolation("a rumor must be [id, hops, data]")
        rumor_id, hops, data = item
        if type(rumor_id) is not int or not 0 <= rumor_id < _MAX_ID:
            raise ProtocolViolation("rumor id must be an unsigned 64-bit int")
        if type(hops) is not int or not 0 <= hops <= 65535:
            raise ProtocolViolation("rumor hops must be an int in [0, 65535]")
        if type(data) is not bytes:
            raise ProtocolViolation("rumor data must be bytes")
        out.append((rumor_id, hops, data))
    return out


def _id_list(body: Any) -> list[int]:
    if type(body) is not list or len(body) > MAX_RUMORS_PER_MESSAGE:
        raise ProtocolViolation("id list must be a list of at most 4096 ids")
    for rumor_id in body:
        if type(rumor_id) is not int or not 0 <= rumor_id < _MAX_ID:
            raise ProtocolViolation("rumor id must be an unsigned 64-bit int")
    return body


class Dissemination:
    """Rumor store, de-duplication and peer choice shared by the dissemination cores."""

    name = "dissemination"
    # Messages that carry rumors (the "traffic" of Demers et al.).
    rumor_messages = 0

    def __init__(
        self, me: int, topology: Topology, *, fanout: int = 1, ttl: int = 0, memory: int = 1024
    ) -> None:
        self.me = me
        self.topology = topology
        self.fanout = fanout
        self.ttl = ttl
        self.memory = memory
        self.store: dict[int, _Rumor] = {}
        self.seen = SeenCache(4 * memory)
        self.rumor_messages = 0

    # -- state -------------------------------------------------------------------------
    def inject(self, rumor_id: int, data: bytes, round: int) -> None:
        """Originate a rumor here; it is known from `round` on."""
        self._learn(rumor_id, 0, data, round)

    def informed_round(self, rumor_id: int) -> int | None:
        rumor = self.store.get(rumor_id)
        return None if rumor is None else rumor.learned

    @property
    def active(self) -> bool:
        return True

    def _learn(self, rumor_id: int, hops: int, data: bytes, learned: int) -> bool:
        if not self.seen.add(rumor_id):
            return False
        store = self.store
        store[rumor_id] = _Rumor(learned, hops, data)
        if len(store) > self.memory:
            del store[next(iter(store))]
        return True

    def _learn_all(self, rumors: list[tuple[int, int, bytes]], round: int) -> list[int]:
        """Store new rumors (known from round + 1); return those known when `round` began.

        A rumor first heard earlier in this same round does not count as known: in the
        synchronous model all contacts of a round happen at once, so it keeps the fewest
        hops of the copies heard this round, whatever order they arrived in.
        """
        known = []
        store = self.store
        for rumor_id, hops, data in rumors:
            if not self._learn(rumor_id, hops, data, round + 1):
                rumor = store.get(rumor_id)
                if rumor is None or rumor.learned <= round:
                    known.append(rumor_id)
                elif hops < rumor.hops:
                    rumor.hops = hops
        return known

    def _forwardable(self, rumor: _Rumor) -> bool:
        return self.ttl == 0 or rumor.hops < self.ttl

    def _known_at(self, round: int, exclude: set[int] | None = None) -> list[list[Any]]:
        """Rumors known when `round` began and still allowed to travel, as wire triples."""
        return [
            [rumor_id, r.hops + 1, r.data]
            for rumor_id, r in self.store.items()
            if r.learned <= round
            and self._forwardable(r)
            and (exclude is None or rumor_id not in exclude)
        ]

    def _peers(self, rng: np.random.Generator) -> list[int]:
        return self.topology.sample(self.me, rng, self.fanout)

    def _carry(self, peer: int, kind: str, rumors: list[list[Any]]) -> Send:
        self.rumor_messages += 1
        return (peer, kind, rumors)


class Push(Dissemination):
    """Informed nodes send what they know to `fanout` random peers every round."""

    name = "push"

    @property
    def active(self) -> bool:
        return any(self._forwardable(r) for r in self.store.values())

    def on_tick(self, round: int, rng: np.random.Generator) -> list[Send]:
        rumors = self._known_at(round)
        if not rumors:
            return []
        return [self._carry(peer, PUSH, rumors) for peer in self._peers(rng)]

    def on_message(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        if kind != PUSH:
            raise ProtocolViolation(f"push does not accept {kind!r}")
        self._learn_all(_rumor_list(body), round)
        return []


class Pull(Dissemination):
    """Every node asks `fanout` random peers each round for rumors it lacks."""

    name = "pull"

    def on_tick(self, round: int, rng: np.random.Generator) -> list[Send]:
        digest = list(self.store)
        return [(peer, PULL, digest) for peer in self._peers(rng)]

    def on_message(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        if kind == PULL:
            rumors = self._known_at(round, set(_id_list(body)))
            return [self._carry(src, PULL_REPLY, rumors)] if rumors else []
        if kind == PULL_REPLY:
            self._learn_all(_rumor_list(body), round)
            return []
        raise ProtocolViolation(f"pull does not accept {kind!r}")


class PushPull(Dissemination):
    """Anti-entropy: partners swap what the other lacks, in one round trip."""

    name = "push-pull"

    def on_tick(self, round: int, rng: np.random.Generator) -> list[Send]:
        rumors = self._known_at(round)
        if rumors:
            return [self._carry(peer, EXCHANGE, rumors) for peer in self._peers(rng)]
        return [(peer, EXCHANGE, rumors) for peer in self._peers(rng)]

    def on_message(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        if kind == EXCHANGE:
            offered = _rumor_list(body)
            reply = self._known_at(round, {rumor_id for rumor_id, _, _ in offered})
            self._learn_all(offered, round)
            return [self._carry(src, EXCHANGE_REPLY, reply)] if reply else []
        if kind == EXCHANGE_REPLY:
            self._learn_all(_rumor_list(body), round)
            return []
        raise ProtocolViolation(f"push-pull does not accept {kind!r}")


class RumorMongering(Dissemination):
    """Hot rumors are pushed until the node loses interest (Demers et al., section 1.4).

    `feedback`: lose interest only after contacts that found the peer already knowing
    (the peer says so in a `feedback` reply); otherwise after any contact ("blind").
    `stop`: "counter" loses interest after `k` such contacts, "coin" with probability
    1/k after each.
    """

    name = "rumor"

    def __init__(
        self,
        me: int,
        topology: Topology,
        *,
        fanout: int = 1,
        ttl: int = 0,
        memory: int = 1024,
        feedback: bool = True,
        stop: str = "counter",
        k: int = 2,
    ) -> None:
        super().__init__(me, topology, fanout=fanout, ttl=ttl, memory=memory)
        if stop not in ("counter", "coin"):
            raise ValueError(f"stop must be 'counter' or 'coin', got {stop!r}")
        self.feedback = feedback
        self.stop = stop
        self.k = k

    @property
    def active(self) -> bool:
        return any(r.hot and self._forwardable(r) for r in self.store.values())

    def _contact(self, rumor: _Rumor, rng: np.random.Generator) -> None:
        """One contact that counts towards losing interest."""
        if self.stop == "counter":
            rumor.contacts += 1
            if rumor.contacts >= self.k:
                rumor.hot = False
        elif rng.random() < 1.0 / self.k:
            rumor.hot = False

    def on_tick(self, round: int, rng: np.random.Generator) -> list[Send]:
        hot = [
            (rumor_id, r)
            for rumor_id, r in self.store.items()
            if r.hot and r.learned <= round and self._forwardable(r)
        ]
        if not hot:
            return []
        rumors = [[rumor_id, r.hops + 1, r.data] for rumor_id, r in hot]
        sends = [self._carry(peer, RUMOR, rumors) for peer in self._peers(rng)]
        if not self.feedback:
            for _ in sends:
                for _, r in hot:
                    if r.hot:
                        self._contact(r, rng)
        return sends

    def on_message(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        if kind == RUMOR:
            knew = self._learn_all(_rumor_list(body), round)
            if self.feedback and knew:
                return [(src, FEEDBACK, knew)]
            return []
        if kind == FEEDBACK:
            for rumor_id in _id_list(body):
                rumor = self.store.get(rumor_id)
                if rumor is not None and rumor.hot:
                    self._contact(rumor, rng)
            return []
        raise ProtocolViolation(f"rumor mongering does not accept {kind!r}")


PROTOCOLS: dict[str, type[Dissemination]] = {
    "push": Push,
    "pull": Pull,
    "push-pull": PushPull,
    "rumor": RumorMongering,
}
