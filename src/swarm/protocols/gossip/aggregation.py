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

__all__ = ["PROTOCOLS", "Aggregation", "PairwiseAverage", "PushSum"]

PUSH_SUM = wire.register_kind("push-sum")
AVG_OFFER = wire.register_kind("avg-offer")
AVG_REPLY = wire.register_kind("avg-reply")

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
    """

    name = "average"

    def __init__(self, me: int, topology: Topology, value: Value, *, fanout: int = 1) -> None:
        super().__init__(me, topology, value, fanout=fanout)
        self.x: Value = _own(value)
        self._queue: list[int] = []  # partners still to contact in this round

    @property
    def estimate(self) -> Value:
        return self.x

    @property
    def mass(self) -> Value:
        return self.x

    def on_tick(self, round: int, rng: np.random.Generator) -> list[Send]:
        first, *rest = self._peers(rng)
        self._queue = rest
        return [(first, AVG_OFFER, [_as_wire(self.x)])]

    def on_message(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        if type(body) is not list or len(body) != 1:
            raise ProtocolViolation(f"{kind} body must be [value]")
        value = _check_value(body[0], self.x)
        if kind == AVG_OFFER:
            delta = (value - self.x) / 2
            self.x = self.x + delta
            return [(src, AVG_REPLY, [_as_wire(delta)])]
        if kind == AVG_REPLY:
            self.x = self.x - value
            if self._queue:
                return [(self._queue.pop(0), AVG_OFFER, [_as_wire(self.x)])]
            return []
        raise ProtocolViolation(f"average does not accept {kind!r}")


PROTOCOLS: dict[str, type[Aggregation]] = {"push-sum": PushSum, "average": PairwiseAverage}
