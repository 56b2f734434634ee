"""Computing a fleet-wide average by gossip: push-sum and pairwise averaging.

Both conserve the fleet's total ("mass") exactly, up to float rounding, as long as no
message is lost: that invariant is what makes the estimates converge to the true mean.
Values are floats or numpy arrays (model parameters, embeddings) of one fixed shape.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from swarm import wire
from swarm.protocols.gossip.core import ProtocolViolation, Send
from swarm.protocols.gossip.topology import Topology

__all__ = ["CODES", "PROTOCOLS", "Aggregation", "PairwiseAverage", "PushSum"]

CODES: dict[str, int] = {  # the wire codes of this module's kinds (docs/wire.md)
    "push-sum": 17,
    "avg-offer": 18,
    "avg-reply": 19,
    "avg-busy": 20,
}
PUSH_SUM = wire.register_kind("push-sum", CODES["push-sum"])
AVG_OFFER = wire.register_kind("avg-offer", CODES["avg-offer"])
AVG_REPLY = wire.register_kind("avg-reply", CODES["avg-reply"])
AVG_BUSY = wire.register_kind("avg-busy", CODES["avg-busy"])

Value = float | np.ndarray


def _check_value(value: Any, like: Value) -> Value:
    """A peer's number must have our shape and be finite: one NaN would poison the fleet."""
    if isinstance(like, np.ndarray):
        if not isinstance(value, np.ndarray) or value.shape != like.shape:
            raise ProtocolViolation(f"value must be an array of shape {like.shape}")
        if value.dtype.kind not in "fiu" or not np.isfinite(value).all():
            raise ProtocolViolation("value must be a finite numeric array")
        return value.astype(like.dtype, copy=False)
    if type(value) not in (float, int) or not math.isfinite(value):
        raise ProtocolViolation("value must be a finite number")
    return float(value)


def _own(value: Value) -> Value:
    """A private float copy of an initial value: integer arrays would truncate the shares
    and deltas that peers send (they are cast to our dtype on arrival)."""
    if isinstance(value, np.ndarray):
        return value.copy() if value.dtype.kind == "f" else value.astype(np.float64)
    return float(value)


def _as_wire(value: Value) -> Value:
    return value if isinstance(value, np.ndarray) else float(value)


class Aggregation:
    """Peer choice and the common read-outs of the averaging cores."""

    name = "aggregation"

    def __init__(self, me: int, topology: Topology, value: Value, *, fanout: int = 1) -> None:
        self.me = me
        self.topology = topology
        self.fanout = fanout
        self.initial = value

    @property
    def active(self) -> bool:
        return True

    @property
    def estimate(self) -> Value:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def mass(self) -> Value:
        """This node's share of the conserved fleet total."""
        raise NotImplementedError  # pragma: no cover

    def _peers(self, rng: np.random.Generator) -> list[int]:
        return self.topology.sample(self.me, rng, self.fanout)


class PushSum(Aggregation):
    """Kempe, Dobra, Gehrke 2003: keep a share of (s, w), send equal shares to peers.

    The estimate s / w converges to the mean of the initial values; sum(s) and sum(w)
    (counting shares in flight) never change.
    """

    name = "push-sum"

    def __init__(self, me: int, topology: Topology, value: Value, *, fanout: int = 1) -> None:
        super().__init__(me, topology, value, fanout=fanout)
        self.s: Value = _own(value)
        self.w = 1.0

    @property
    def estimate(self) -> Value:
        return self.s / self.w

    @property
    def mass(self) -> Value:
        return self.s

    def on_tick(self, round: int, rng: np.random.Generator) -> list[Send]:
        peers = self.topology.sample(self.me, rng, self.fanout)
        share = 1.0 / (len(peers) + 1)
        self.s = s = self.s * share
        self.w = w = self.w * share
        body = [s, w]
        return [(peer, PUSH_SUM, body) for peer in peers]

    def on_message(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        if kind != PUSH_SUM:
            raise ProtocolViolation(f"push-sum does not accept {kind!r}")
        if type(body) is not list or len(body) != 2:
            raise ProtocolViolation("push-sum body must be [s, w]")
        s = _check_value(body[0], self.s)
        w = body[1]
        if type(w) not in (float, int) or not (0.0 < w < math.inf):
            raise ProtocolViolation("push-sum weight must be a positive finite float")
        self.s = self.s + s
        self.w += w
        return []


class PairwiseAverage(Aggregation):
    """Pairwise push-pull averaging: an exchange moves both peers to their mean.

    The offer carries the initiator's value x_i; the partner moves by d = (x_i - x_j) / 2
    and replies with d, which the initiator subtracts. Because both apply the same d, an
    exchange that overlaps others neither creates nor destroys mass. With fanout k the
    initiator runs its k exchanges one after another (the next offer leaves when the
    previous reply arrives, carrying the updated value): k simultaneous offers would each
    subtract a half-difference computed from the same stale value and overshoot.

    `atomic` makes each exchange atomic, as the analysis of Jelasity, Montresor and
    Babaoglu (2005) assumes (variance x 1/(2 sqrt(e)) per cycle): a node waiting for a
    reply **declines** any offer that reaches it meanwhile (an `avg-busy` answer; both
    sides keep their values, and the initiator goes on with its next partner). Declining
    rather than deferring cannot deadlock two nodes that offered to each other. It needs
    agents that act at different moments: in lockstep every node is waiting when the
    offers land, and all would be declined, so lockstep runs are not atomic.
    """

    name = "average"

    def __init__(
        self, me: int, topology: Topology, value: Value, *, fanout: int = 1, atomic: bool = False
    ) -> None:
        super().__init__(me, topology, value, fanout=fanout)
        self.x: Value = _own(value)
        self.atomic = atomic
        self._queue: list[int] = []  # partners still to contact in this round
        self._partner: int | None = None  # whose reply we wait for (atomic only)
        self._offered = -1  # the round our pending offer left in
        self.declined = 0  # offers this node declined while it waited

    @property
    def estimate(self) -> Value:
        return self.x

    @property
    def mass(self) -> Value:
        return self.x

    def on_tick(self, round: int, rng: np.random.Generator) -> list[Send]:
        if self._partner is not None:
            if round <= self._offered + 1:
                return []  # still in an exchange (a Poisson clock can tick twice quickly)
            self._partner = None  # a reply missing for a whole round was lost
        first, *rest = self._peers(rng)
        self._queue = rest
        return self._offer(first, round)

    def _offer(self, peer: int, round: int) -> list[Send]:
        if self.atomic:
            self._partner, self._offered = peer, round
        return [(peer, AVG_OFFER, [_as_wire(self.x)])]

    def _next(self, round: int) -> list[Send]:
        self._partner = None
        return self._offer(self._queue.pop(0), round) if self._queue else []

    def on_message(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        if kind == AVG_BUSY:
            if body != [] or src != self._partner:
                raise ProtocolViolation("avg-busy is an empty answer to our pending offer")
            return self._next(round)
        if type(body) is not list or len(body) != 1:
            raise ProtocolViolation(f"{kind} body must be [value]")
        value = _check_value(body[0], self.x)
        if kind == AVG_OFFER:
            if self._partner is not None:
                self.declined += 1
                return [(src, AVG_BUSY, [])]
            delta = (value - self.x) / 2
            self.x = self.x + delta
            return [(src, AVG_REPLY, [_as_wire(delta)])]
        if kind == AVG_REPLY:
            if self.atomic and src != self._partner:
                raise ProtocolViolation("a reply from a node we are not exchanging with")
            self.x = self.x - value
            return self._next(round)
        raise ProtocolViolation(f"average does not accept {kind!r}")


PROTOCOLS: dict[str, type[Aggregation]] = {"push-sum": PushSum, "average": PairwiseAverage}
