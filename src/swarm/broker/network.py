"""The network between clients of the embedded broker: latency, bandwidth, loss, partitions.

A message from A to B leaves A's uplink after serialization (`size / bandwidth`, queued
behind A's earlier messages), then takes a propagation latency: a constant, or the
distance between A and B at a fraction of light speed plus a delay per hop. It may be
lost (Bernoulli with probability `loss`) or cut by a partition between regions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SPEED_OF_LIGHT_KM_S", "Endpoint", "NetworkModel"]

SPEED_OF_LIGHT_KM_S = 299_792.458


@dataclass(slots=True)
class Endpoint:
    """Where a client sits in the modelled network."""

    x: float = 0.0  # km
    y: float = 0.0  # km
    region: int = 0
    reliable: bool = False  # control-plane clients (recorder, coordinator): no delay, no loss
    tx_free_at: float = 0.0  # when the uplink finishes serializing what it already sent
    uplink_bps: float = 0.0  # this client's own uplink (its device class); 0 = the model's


@dataclass(slots=True)
class NetworkModel:
    latency: float = 0.01  # seconds: the constant part of every hop
    distance_latency: bool = False  # add distance / (light_fraction * c) + hop delays
    light_fraction: float = 0.67  # signal speed in fibre relative to c
    hop_km: float = 500.0  # one router hop per this many km
    hop_delay: float = 0.0005  # seconds per router hop
    bandwidth: float = 0.0  # uplink bits per second; 0 = unlimited
    loss: float = 0.0  # probability a copy is lost
    rng: np.random.Generator | None = None  # for losses; required when loss > 0
    per_endpoint_bandwidth: bool = False  # some endpoints carry their own uplink_bps
    _group_of_region: dict[int, int] = field(default_factory=dict)

    @property
    def constant(self) -> bool:
        """True when every copy takes exactly `latency`: the broker's fast path."""
        return not (
            self.distance_latency
            or self.bandwidth > 0
            or self.per_endpoint_bandwidth
            or self.loss > 0
            or self._group_of_region
        )

    def __post_init__(self) -> None:
        if self.loss > 0 and self.rng is None:
            raise ValueError("a NetworkModel with loss > 0 needs an rng (from the scenario seed)")

    def partition(self, groups: Sequence[Sequence[int]]) -> None:
        """Cut the network between groups of regions; unlisted regions form one more group."""
        self._group_of_region = {r: g for g, members in enumerate(groups) for r in members}

    def heal(self) -> None:
        self._group_of_region = {}

    @property
    def partitioned(self) -> bool:
        return bool(self._group_of_region)

    def departure(self, src: Endpoint, size: int, now: float) -> float:
        """When a payload of `size` bytes has left the sender's uplink."""
        bandwidth = src.uplink_bps or self.bandwidth
        if bandwidth <= 0 or src.reliable:
            return now
        start = src.tx_free_at if src.tx_free_at > now else now
        src.tx_free_at = start + size * 8 / bandwidth
        return src.tx_free_at

    def delay(self, src: Endpoint, dst: Endpoint) -> float | None:
        """Propagation delay from src to dst, or None when the copy is lost or cut off."""
        if src.reliable or dst.reliable:
            return 0.0
        if self._group_of_region:
            groups = self._group_of_region
            if groups.get(src.region, -1) != groups.get(dst.region, -1):
                return None
        if self.loss > 0.0:
            if self.rng is None:
                raise ValueError("loss > 0 needs an rng (from the scenario seed)")
            if self.rng.random() < self.loss:
                return None
        if not self.distance_latency:
            return self.latency
        distance = math.hypot(src.x - dst.x, src.y - dst.y)
        hops = 1 + int(distance // self.hop_km)
        return (
            self.latency
            + distance / (self.light_fraction * SPEED_OF_LIGHT_KM_S)
            + hops * self.hop_delay
        )
