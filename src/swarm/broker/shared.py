"""The `shared` connection mode: a process's agents share a few MQTT connections.

Per-agent connections are realistic but cost an MQTT client per agent. Here the agents
of one process are local links; what they send to another agent's inbox is bundled per
destination process into one MQTT publish on `swarm/<run>/shard/<i>/bundle/<client id>`
(a `bundle` envelope whose body is a list of `[topic, payload]` pairs), and the receiving process
hands each payload to its local subscribers. Other topics (metrics, events, control) are
published and subscribed as themselves. Bundling is what makes this the throughput mode.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from swarm import topics, wire
from swarm.broker.link import DEFAULT_INBOX_CAPACITY, ClientLink
from swarm.broker.mqtt import (
    BrokerUrl,
    MqttLink,
    close_links,
    settle_links,
    unreachable_for,
)
from swarm.broker.network import Endpoint
from swarm.metrics import MessageCounters

__all__ = ["BUNDLE", "SharedLink", "SharedTransport"]

BUNDLE = wire.register_kind("bundle")
BUNDLE_MAX_BYTES = 256 * 1024  # flush a bundle before it nears the wire's 1 MiB limit
BUNDLE_MAX_ITEMS = 4096


class SharedLink(ClientLink):
    """An agent's link in shared mode: local, its traffic carried by the transport."""

    __slots__ = ("_transport",)

    def __init__(self, transport: SharedTransport, client_id: str, capacity: int) -> None:
        super().__init__(client_id, capacity)
        self._transport = transport

    def publish(self, topic: str, payload: bytes) -> None:
        if self.closed:
            self._refuse_if_closed("published")
        if "+" in topic or "#" in topic:
            self._refuse_wildcards(topic)
        self._transport._send(topic, payload)

    def _subscribed(self, topic_filter: str) -> None:
        self._transport._local_subscribe(topic_filter, self)

    def _unsubscribed(self, topic_filter: str) -> None:
        self._transport._local.remove(topic_filter, self)

    def _disconnect(self, will: bool) -> None:
        for topic_filter in self._filters:
            self._transport._local.remove(topic_filter, self)


class SharedTransport:
    """A few MQTT clients carrying the traffic of all agents in this process."""

    def __init__(
        self,
        url: str | BrokerUrl,
        run_id: str,
        counters: MessageCounters | None = None,
        *,
        clients: int = 2,
        shard: int = 0,
        shard_of: Callable[[str], int] | None = None,
        will: tuple[str, bytes] | None = None,
        keepalive: int = 30,
        key: bytes | None = None,
        public: Callable[[str], bool] | None = None,
    ) -> None:
        self.url = url if isinstance(url, BrokerUrl) else BrokerUrl.parse(url)
        self._public = public
        self.run_id = run_id
        self.counters = counters or MessageCounters()
        self.shard = shard
        self.shard_of = shard_of or (lambda agent_id: 0)
        self.foreign_by_topic: dict[str, int] = {}  # received_foreign by topic family
        self.wire_counters = MessageCounters()  # MQTT publishes (bundles), not agent messages
        self.clients = [
            MqttLink(
                self.url,
                f"swarm-{run_id}-shard{shard}-{i}",
                self.wire_counters,
                will=will if i == 0 else None,
                keepalive=keepalive,
                key=key,
                public=public,
                foreign=self.counters,  # what no fleet process sent is the fleet's concern
                foreign_topics=self.foreign_by_topic,
            )
            for i in range(max(1, clients))
        ]
        self._next_client = 0
        self._local: topics.TopicIndex[SharedLink] = topics.TopicIndex()
        self._remote_filters: set[str] = set()
        self._bundles: dict[int, list[list[Any]]] = {}
        self._bundle_bytes: dict[int, int] = {}
        self._flush_scheduled = False
        self._inbox_prefix = f"{topics.ROOT}/{run_id}/agent/"
        # Bundle topics end in the publishing client's id, which the broker's ACL can
        # enforce; a bundle's claimed shard must be the one that client belongs to.
        self._client_prefix = f"swarm-{run_id}-shard"
        self._my_bundles = topics.bundle(run_id, shard) + "/"
        receiver = self.clients[0]
        receiver.set_handler(self._on_wire)
        receiver.subscribe(self._my_bundles + "+")

    # -- links -----------------------------------------------------------------------------
    def connect(
        self,
        client_id: str,
        endpoint: Endpoint | None = None,
        *,
        capacity: int = DEFAULT_INBOX_CAPACITY,
    ) -> SharedLink:
        return SharedLink(self, client_id, capacity)

    def _is_inbox(self, topic: str) -> bool:
        return topic.startswith(self._inbox_prefix) and topic.endswith("/inbox")

    def _local_subscribe(self, topic_filter: str, link: SharedLink) -> None:
        self._local.add(topic_filter, link)
        if not self._is_inbox(topic_filter) and topic_filter not in self._remote_filters:
            self._remote_filters.add(topic_filter)
            self.clients[0].subscribe(topic_filter)

    # -- sending ---------------------------------------------------------------------------
    def _send(self, topic: str, payload: bytes) -> None:
        counters = self.counters
        counters.sent += 1
        counters.bytes += len(payload)
        if not self._is_inbox(topic):
            if not self._client().publish(topic, payload):
                counters.dropped += 1
            return
        agent_id = topic[len(self._inbox_prefix) : -len("/inbox")]
        shard = self.shard_of(agent_id)
        bundle = self._bundles.get(shard)
        if bundle is None:
            bundle = self._bundles[shard] = []
            self._bundle_bytes[shard] = 0
        bundle.append([topic, payload])
        self._bundle_bytes[shard] += len(topic) + len(payload) + 8
        if self._bundle_bytes[shard] >= BUNDLE_MAX_BYTES or len(bundle) >= BUNDLE_MAX_ITEMS:
            self._flush_one(shard)
        elif not self._flush_scheduled:
            # Everything sent in this loop iteration (a round's worth) goes out together.
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _client(self) -> MqttLink:
        client = self.clients[self._next_client]
        self._next_client = (self._next_client + 1) % len(self.clients)
        return client

    def _flush(self) -> None:
        self._flush_scheduled = False
        for shard in list(self._bundles):
            self._flush_one(shard)

    def _flush_one(self, shard: int) -> None:
        items = self._bundles.pop(shard, None)
        self._bundle_bytes.pop(shard, None)
        if not items:
            return
        payload = wire.pack(BUNDLE, f"shard{self.shard}", 0, 0.0, 0, items)
        client = self._client()
        topic = f"{topics.bundle(self.run_id, shard)}/{client.client_id}"
        if client.closed or not client.publish(topic, payload):
            self.counters.dropped += len(items)

    # -- receiving -------------------------------------------------------------------------
    def _on_wire(self, topic: str, payload: bytes) -> None:
        counters = self.counters
        if not topic.startswith(self._my_bundles):
            if self._public is not None and self._public(topic):
                # An operator's control, not fleet traffic: out of the fleet's counters.
                for link in self._local.match(topic):
                    with contextlib.suppress(Exception):
                        link.deliver(topic, payload)
                return
            self._deliver_local(topic, payload)
            return
        try:
            envelope = wire.decode(payload)
        except wire.MalformedMessage:
            counters.dropped_malformed += 1
            return
        items = envelope.body
        if envelope.kind != BUNDLE or type(items) is not list:
            counters.dropped_malformed += 1
            return
        if envelope.src != self._publisher_shard(topic[len(self._my_bundles) :]):
            counters.dropped_spoofed += 1
            return
        for item in items:
            if (
                type(item) is not list
                or len(item) != 2
                or type(item[0]) is not str
                or type(item[1]) is not bytes
                or not self._is_inbox(item[0])
            ):
                counters.dropped_malformed += 1
                continue
            self._deliver_local(item[0], item[1])

    def _publisher_shard(self, client_id: str) -> str | None:
        """`shard<k>` for a client id of this run's shard k (`swarm-<run>-shard<k>-<i>`)."""
        if not client_id.startswith(self._client_prefix):
            return None
        shard, _, connection = client_id[len(self._client_prefix) :].partition("-")
        if not (shard.isdigit() and connection.isdigit()):
            return None
        return f"shard{int(shard)}"

    def _deliver_local(self, topic: str, payload: bytes) -> None:
        counters = self.counters
        subscribers = self._local.match(topic)
        if not subscribers:
            counters.dropped += 1  # addressed to an agent that is gone
            return
        for link in subscribers:
            try:
                taken = link.deliver(topic, payload)
            except Exception:  # a failing handler loses its copy only
                taken = False
            if taken:
                counters.delivered += 1
            else:
                counters.dropped += 1

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        queued = sum(len(items) for items in self._bundles.values())
        return queued + sum(client.pending for client in self.clients)

    @property
    def reconnects(self) -> int:
        return sum(client.reconnects for client in self.clients)

    def unreachable_for(self, now: float) -> float:
        """Seconds the longest-lost client has been down (0: all connected)."""
        return unreachable_for(self.clients, now)

    @property
    def backlog(self) -> int:
        """MQTT messages (mostly bundles) waiting in this process, either way."""
        return len(self._bundles) + sum(client.backlog for client in self.clients)

    async def start(self, timeout: float = 10.0) -> None:
        for client in self.clients:
            await client.open(timeout)
        await asyncio.gather(*(client.settle() for client in self.clients))

    async def drain(self, timeout: float = 5.0) -> None:
        self._flush()
        await settle_links(self.clients, self.counters, timeout)

    async def stop(self) -> None:
        await close_links(self.clients)
