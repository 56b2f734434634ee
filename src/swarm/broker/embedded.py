"""The embedded broker: MQTT topic semantics inside one process, on the network model.

It is the default transport: no server to install, virtual time, deterministic. Routing a
publish costs one lookup in the subscription index plus work per matching subscriber
(never a scan of all subscriptions). Copies due at the same instant are delivered by one
timer, so a round in which thousands of agents hear from each other costs few timers.
"""

from __future__ import annotations

import asyncio

from swarm import topics
from swarm.broker.link import DEFAULT_INBOX_CAPACITY, ClientLink
from swarm.broker.network import Endpoint, NetworkModel
from swarm.metrics import MessageCounters
from swarm.wire import MAX_MESSAGE_BYTES

__all__ = ["EmbeddedBroker", "EmbeddedLink"]


class EmbeddedLink(ClientLink):
    """One client connection to the embedded broker."""

    __slots__ = ("_broker", "endpoint")

    def __init__(
        self, broker: EmbeddedBroker, client_id: str, endpoint: Endpoint, capacity: int
    ) -> None:
        super().__init__(client_id, capacity)
        self._broker = broker
        self.endpoint = endpoint

    def publish(self, topic: str, payload: bytes) -> None:
        # The checks are inlined: this is the hot path of every gossip round.
        if self.closed:
            self._refuse_if_closed("published")
        if "+" in topic or "#" in topic:
            self._refuse_wildcards(topic)
        self._broker._route(self, topic, payload)

    def _subscribed(self, topic_filter: str) -> None:
        self._broker._index.add(topic_filter, self)

    def _unsubscribed(self, topic_filter: str) -> None:
        self._broker._index.remove(topic_filter, self)

    def _disconnect(self, will: bool) -> None:
        for topic_filter in self._filters:
            self._broker._index.remove(topic_filter, self)


class EmbeddedBroker:
    """In-process broker with MQTT matching (`+`, `#`, `$`-topics) and a network model."""

    def __init__(
        self,
        network: NetworkModel | None = None,
        counters: MessageCounters | None = None,
        *,
        max_packet_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.network = network or NetworkModel()
        self.counters = counters or MessageCounters()
        self.max_packet_bytes = max_packet_bytes
        self._index: topics.TopicIndex[EmbeddedLink] = topics.TopicIndex()
        self._due: dict[float, list[tuple[EmbeddedLink, str, bytes]]] = {}
        self._in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def connect(
        self,
        client_id: str,
        endpoint: Endpoint | None = None,
        *,
        capacity: int = DEFAULT_INBOX_CAPACITY,
    ) -> EmbeddedLink:
        """A new client; call it from inside the event loop the broker will run on."""
        self._loop = asyncio.get_running_loop()
        return EmbeddedLink(self, client_id, endpoint or Endpoint(), capacity)

    async def start(self) -> None:
        """Nothing to connect in-process (the MQTT transport connects its clients here)."""

    async def drain(self) -> None:
        """Copies still in flight when a run ends stay uncounted, as in a real network."""

    async def stop(self) -> None:
        """Nothing to disconnect in-process."""

    @property
    def in_flight(self) -> int:
        """Copies published but not yet delivered."""
        return self._in_flight

    def _route(self, src: EmbeddedLink, topic: str, payload: bytes) -> None:
        counters = self.counters
        size = len(payload)
        counters.sent += 1
        counters.bytes += size
        subscribers = self._index.match(topic)
        if not subscribers:
            return
        if size > self.max_packet_bytes:
            counters.dropped += len(subscribers)
            return
        network = self.network
        loop = self._loop or asyncio.get_running_loop()
        now = loop.time()
        if network.constant and not src.endpoint.reliable:
            # The common case: one due time for every copy (control-plane ones go now).
            when = now + network.latency
            bucket = self._due.get(when)
            if bucket is None:
                bucket = self._due[when] = []
                loop.call_at(when, self._deliver_due, when)
            for dst in subscribers:
                if dst.endpoint.reliable:
                    self._schedule(loop, now, dst, topic, payload)
                else:
                    bucket.append((dst, topic, payload))
            self._in_flight += len(subscribers)
            return
        sender = src.endpoint
        departure = network.departure(sender, size, now)
        for dst in subscribers:
            delay = network.delay(sender, dst.endpoint)
            if delay is None:
                counters.dropped += 1
                continue
            self._schedule(loop, departure + delay, dst, topic, payload)
            self._in_flight += 1

    def _schedule(
        self,
        loop: asyncio.AbstractEventLoop,
        when: float,
        dst: EmbeddedLink,
        topic: str,
        payload: bytes,
    ) -> None:
        bucket = self._due.get(when)
        if bucket is None:
            bucket = self._due[when] = []
            loop.call_at(when, self._deliver_due, when)
        bucket.append((dst, topic, payload))

    def _deliver_due(self, when: float) -> None:
        bucket = self._due.pop(when)
        self._in_flight -= len(bucket)
        delivered = 0
        for dst, topic, payload in bucket:
            try:
                if dst.deliver(topic, payload):
                    delivered += 1
            except Exception:  # a subscriber's handler failed: that copy is lost, not the rest
                continue
        self.counters.delivered += delivered
        self.counters.dropped += len(bucket) - delivered
