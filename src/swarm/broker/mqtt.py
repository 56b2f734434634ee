"""The `Link` on a real MQTT broker (aiomqtt 2.x), in wall-clock time.

Each link is one MQTT client (the `per-agent` connection mode: the broker sees every
agent as its own identity). Publishing never blocks an agent: messages go to a bounded
outgoing queue drained by the client's writer task; a full queue is a counted drop.
Everything received goes through the same handler or inbox as on the embedded broker,
so agent code cannot tell the two apart. This is the only module that imports aiomqtt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from swarm import topics
from swarm.broker.link import DEFAULT_INBOX_CAPACITY, ClientLink
from swarm.broker.network import Endpoint
from swarm.broker.url import BrokerUrl
from swarm.metrics import MessageCounters
from swarm.seal import Opener, Sealer

__all__ = [
    "BrokerUnavailable",
    "BrokerUrl",
    "MqttLink",
    "MqttTransport",
    "close_links",
    "settle_links",
    "unreachable_for",
]

OUTGOING_CAPACITY = 10_000
INCOMING_CAPACITY = 10_000
# aiomqtt logs every message it discards, and the MQTT client every lost socket; we count
# the first (see _counting_queue) and report the second (reconnects, broker.grace), so
# neither may add lines beside the one-line errors the CLI promises.
_CLIENT_LOG = logging.getLogger("swarm.broker.mqtt.client")
_CLIENT_LOG.setLevel(logging.CRITICAL)


def _counting_queue(counters: MessageCounters, link: MqttLink) -> type[asyncio.Queue[Any]]:
    """aiomqtt's incoming queue, but a message it has no room for is counted as dropped.

    The queue also registers itself with its link, whose backlog includes what is unread.
    """

    class CountingQueue(asyncio.Queue[Any]):
        def __init__(self, maxsize: int = 0) -> None:
            super().__init__(maxsize)
            link._unread = self

        def put_nowait(self, item: Any) -> None:
            try:
                super().put_nowait(item)
            except asyncio.QueueFull:
                counters.dropped += 1
                raise

    return CountingQueue


_SUBSCRIBE = object()
_UNSUBSCRIBE = object()
_DISCONNECT = object()
_DISCONNECT_WILL = object()  # DISCONNECT with reason 0x04: "publish my will" (MQTT 5)
_RETAINED = object()
RECONNECT_FIRST_DELAY = 0.1  # seconds; doubles per failed attempt
RECONNECT_MAX_DELAY = 5.0


def _quiet_closed_sockets(loop: asyncio.AbstractEventLoop) -> None:
    """When the broker goes away, the MQTT client may ask the loop to watch a socket it
    has just closed; asyncio would print a traceback per client for that (EBADF). The
    loss itself is handled (reconnects, broker.grace), so those are not errors to show."""
    if loop.get_exception_handler() is _ignore_closed_socket:
        return
    loop.set_exception_handler(_ignore_closed_socket)


def _ignore_closed_socket(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    exc = context.get("exception")
    handle = repr(context.get("handle"))
    if isinstance(exc, OSError) and ("add_writer" in handle or "add_reader" in handle):
        return
    if isinstance(exc, aiomqtt.MqttError) and "never retrieved" in context.get("message", ""):
        return  # the client's record of a disconnection we already handled
    loop.default_exception_handler(context)


class BrokerUnavailable(RuntimeError):
    """The broker could not be reached; the message says where and what to try."""


class MqttLink(ClientLink):
    """One MQTT client behind the Link interface."""

    def __init__(
        self,
        url: BrokerUrl,
        client_id: str,
        counters: MessageCounters,
        *,
        capacity: int = DEFAULT_INBOX_CAPACITY,
        qos: int = 0,
        will: tuple[str, bytes] | None = None,
        keepalive: int = 30,
        incoming: int = INCOMING_CAPACITY,
        key: bytes | None = None,
        public: Callable[[str], bool] | None = None,
        foreign: MessageCounters | None = None,
        foreign_topics: dict[str, int] | None = None,
        sealer: Sealer | None = None,
    ) -> None:
        """With `key`, what this link publishes is sealed and what it reads must open
        (see `swarm.seal`), except on `public` topics (operators' controls); foreign
        messages are counted in `foreign` (default: `counters`). `sealer` continues the
        counter of an earlier client of this id (a device back from a failure), so that
        its messages are not taken for replays."""
        super().__init__(client_id, capacity)
        self.sealer = sealer if key is None or sealer is not None else Sealer(key, client_id)
        self.opener = None if key is None else Opener(key)
        self.public = public
        self.foreign = foreign or counters
        self.foreign_topics = foreign_topics  # received_foreign by topic family
        self.incoming = incoming  # messages the client may hold before we read them
        self.url = url
        self.counters = counters
        self.qos = qos
        self.will = will  # (topic, payload) the broker publishes if we vanish without a word
        self.keepalive = keepalive
        self._outgoing: asyncio.Queue[tuple[object, str, bytes]] = asyncio.Queue(OUTGOING_CAPACITY)
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._unread: asyncio.Queue[Any] | None = None  # the client's incoming queue
        self.reconnects = 0
        # Called on each reconnection: the broker may have published this client's will
        # when it lost it, and the fleet says the agent is back.
        self.on_reconnect: Callable[[], None] | None = None
        # Loop time at which the connection was lost (None: connected, or never yet).
        self.disconnected_since: float | None = None

    def publish(self, topic: str, payload: bytes) -> bool:
        """Queue for the broker; False (and counted) when the outgoing queue is full."""
        self._refuse_if_closed("published")
        self._refuse_wildcards(topic)
        if self.sealer is not None:
            payload = self.sealer.seal(topic, payload)
        self.counters.sent += 1
        self.counters.bytes += len(payload)
        try:
            self._outgoing.put_nowait((None, topic, payload))
        except asyncio.QueueFull:
            self.counters.dropped += 1
            return False
        return True

    def publish_retained(self, topic: str, payload: bytes) -> None:
        """Publish with the retain flag (QoS 1): late subscribers get it too; b"" clears it."""
        self._refuse_if_closed("published")
        self._refuse_wildcards(topic)
        if self.sealer is not None and payload:
            payload = self.sealer.seal(topic, payload)
        self._outgoing.put_nowait((_RETAINED, topic, payload))

    def _subscribed(self, topic_filter: str) -> None:
        if self._task is not None:  # before open(), the connection subscribes to them all
            self._outgoing.put_nowait((_SUBSCRIBE, topic_filter, b""))

    def _unsubscribed(self, topic_filter: str) -> None:
        if self._task is not None:
            self._outgoing.put_nowait((_UNSUBSCRIBE, topic_filter, b""))

    def _disconnect(self, will: bool) -> None:
        """Queued outgoing messages are dropped and counted; then a clean DISCONNECT, or
        with `will` one that asks the broker to publish the client's last will."""
        self.counters.dropped += sum(1 for kind, _, _ in self._drain_outgoing() if kind is None)
        if self._task is not None and not self._task.done():
            # The writer leaves the client's context: a clean DISCONNECT, no last will.
            if will and self.will is not None:
                # the broker publishes the will for us: a message of the fleet's
                self.counters.sent += 1
                self.counters.bytes += len(self.will[1])
                self._outgoing.put_nowait((_DISCONNECT_WILL, "", b""))
            else:
                self._outgoing.put_nowait((_DISCONNECT, "", b""))

    # -- connection ----------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Messages and commands waiting to be written to the broker."""
        return self._outgoing.qsize()

    @property
    def backlog(self) -> int:
        """Messages not yet written to the broker plus messages received but not yet read."""
        unread = self._unread
        return self._outgoing.qsize() + (0 if unread is None else unread.qsize())

    async def open(self, timeout: float = 10.0) -> None:
        """Connect and subscribe; raises BrokerUnavailable when the broker cannot be reached."""
        loop = asyncio.get_running_loop()
        _quiet_closed_sockets(loop)
        self._ready = loop.create_future()
        self._task = loop.create_task(self._run(timeout))
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), timeout + 1.0)
        except TimeoutError:
            self.close()
            raise BrokerUnavailable(
                f"no answer from {self.url} within {timeout:.0f}s for client {self.client_id!r}"
            ) from None

    async def settle(self) -> None:
        """Wait until everything queued so far has been handed to the broker."""
        await self._outgoing.join()

    async def closed_task(self, timeout: float = 5.0) -> None:
        """Wait for the client to disconnect; cut it off if it takes longer than `timeout`."""
        task = self._task
        if task is None:
            return
        done, _ = await asyncio.wait([task], timeout=timeout)
        if not done:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    async def _run(self, timeout: float) -> None:
        """Connect, then serve until closed; a lost connection is retried with backoff.

        Only the first connection may fail the caller (`open` raises BrokerUnavailable):
        once a fleet runs, a broker restart must not end it. While disconnected,
        publishes wait in the bounded outgoing queue (overflow is counted).
        """
        ready = self._ready
        assert ready is not None
        attempt = 0
        while not self.closed:
            try:
                async with aiomqtt.Client(
                    self.url.host,
                    self.url.port,
                    username=self.url.username,
                    password=self.url.password,
                    identifier=self.client_id,
                    protocol=aiomqtt.ProtocolVersion.V5,
                    timeout=timeout,
                    keepalive=self.keepalive,
                    will=None if self.will is None else aiomqtt.Will(*self.will, qos=1),
                    queue_type=_counting_queue(self.counters, self),
                    max_queued_incoming_messages=self.incoming,
                    logger=_CLIENT_LOG,
                ) as client:
                    for topic_filter in self._filters:  # a new session has none of them
                        await client.subscribe(topic_filter, qos=self.qos)
                    if ready.done():
                        self.reconnects += 1
                        if self.on_reconnect is not None:
                            self.on_reconnect()
                    else:
                        ready.set_result(None)
                    self.disconnected_since = None
                    attempt = 0
                    if await self._serve(client):
                        return  # closed: a clean DISCONNECT on leaving the context
                    self._lost()
            except aiomqtt.MqttError as exc:
                self._lost()
                if not ready.done():
                    ready.set_exception(
                        BrokerUnavailable(
                            f"cannot connect to {self.url} as {self.client_id!r}: {exc}; is a "
                            "broker running there? (`swarm broker` starts a local one)"
                        )
                    )
                    return
            except asyncio.CancelledError:
                if not ready.done():
                    ready.cancel()
                raise
            await asyncio.sleep(min(RECONNECT_MAX_DELAY, RECONNECT_FIRST_DELAY * 2**attempt))
            attempt += 1

    def _lost(self) -> None:
        if self._ready is not None and self._ready.done() and self.disconnected_since is None:
            self.disconnected_since = asyncio.get_running_loop().time()

    async def _serve(self, client: aiomqtt.Client) -> bool:
        """Read and write until one side stops; True when the link was closed on purpose."""
        loop = asyncio.get_running_loop()
        reader = loop.create_task(self._read(client))
        writer = loop.create_task(self._write(client))
        try:
            await asyncio.wait([reader, writer], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, writer):
                task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
        return writer.done() and not writer.cancelled() and writer.exception() is None

    async def _write(self, client: aiomqtt.Client) -> None:
        queue = self._outgoing
        while True:
            kind, topic, payload = await queue.get()
            try:
                if kind is _DISCONNECT:
                    return
                if kind is _DISCONNECT_WILL:
                    # MQTT 5 reason code 0x04, "Disconnect with Will Message": the broker
                    # publishes the will as for a lost client. aiomqtt has no call for it,
                    # so its paho client sends the DISCONNECT; leaving the context after
                    # that sends nothing more.
                    reason = ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message")
                    client._client.disconnect(reasoncode=reason)
                    return
                if kind is None:
                    try:
                        await client.publish(topic, payload, qos=self.qos)
                    except aiomqtt.MqttError:
                        self.counters.dropped += 1  # lost with the connection
                        raise
                elif kind is _RETAINED:
                    await client.publish(topic, payload, qos=1, retain=True)
                elif kind is _SUBSCRIBE:
                    await client.subscribe(topic, qos=self.qos)
                else:
                    await client.unsubscribe(topic)
            finally:
                queue.task_done()

    async def _read(self, client: aiomqtt.Client) -> None:
        counters = self.counters
        opener, public = self.opener, self.public
        async for message in client.messages:
            payload = message.payload
            topic = message.topic.value
            if not isinstance(payload, bytes | bytearray):
                self._foreign(topic)  # MQTT payloads are bytes: not ours
                continue
            payload = bytes(payload)
            if public is not None and public(topic):
                # An operator's message, not the fleet's: handed over, kept out of the
                # fleet's counters (its receiver counts what it makes of it).
                with contextlib.suppress(Exception):
                    self.deliver(topic, payload)
                continue
            if opener is not None:
                inner = opener.open(topic, payload)
                if inner is None:
                    self._foreign(topic)
                    continue
                payload = inner
            try:
                taken = self.deliver(topic, payload)
            except Exception:  # a failing handler loses this copy only
                taken = False
            if taken:
                counters.delivered += 1
            else:
                counters.dropped += 1

    def _foreign(self, topic: str) -> None:
        self.foreign.received_foreign += 1
        if self.foreign_topics is not None:
            kind = topics.family(topic)
            self.foreign_topics[kind] = self.foreign_topics.get(kind, 0) + 1

    def _drain_outgoing(self) -> list[tuple[object, str, bytes]]:
        items = []
        while True:
            try:
                items.append(self._outgoing.get_nowait())
                self._outgoing.task_done()
            except asyncio.QueueEmpty:
                return items


class MqttTransport:
    """Connects a fleet's links to one broker: the real-broker counterpart of EmbeddedBroker."""

    def __init__(
        self,
        url: str | BrokerUrl,
        counters: MessageCounters | None = None,
        *,
        concurrency: int = 64,
        client_prefix: str = "",
        key: bytes | None = None,
        public: Callable[[str], bool] | None = None,
    ) -> None:
        self.key = key  # seals every link's messages (see `swarm.seal`)
        self.foreign_by_topic: dict[str, int] = {}
        self.public = public  # topics anyone may write (live controls)
        self.url = url if isinstance(url, BrokerUrl) else BrokerUrl.parse(url)
        self.counters = counters or MessageCounters()
        self.concurrency = concurrency
        # MQTT client ids are broker-wide: the prefix (e.g. "<run>.") keeps two runs on
        # one broker from taking over each other's connections.
        self.client_prefix = client_prefix
        self.links: list[MqttLink] = []
        self._sealers: dict[str, Sealer] = {}  # by client id, across its reconnections

    def connect(
        self,
        client_id: str,
        endpoint: Endpoint | None = None,
        *,
        capacity: int = DEFAULT_INBOX_CAPACITY,
        will: tuple[str, bytes] | None = None,
    ) -> MqttLink:
        """A link that connects at `start()`; the endpoint (placement) does not apply here.

        The client id on the broker is `client_prefix + client_id`; `will` is published by
        the broker if this client vanishes without a clean disconnect.
        """
        qos = 1 if endpoint is not None and endpoint.reliable else 0
        full = self.client_prefix + client_id
        sealer = None
        if self.key is not None:  # one counter per client id, whatever its connections
            sealer = self._sealers.setdefault(full, Sealer(self.key, full))
        link = MqttLink(
            self.url,
            full,
            self.counters,
            capacity=capacity,
            qos=qos,
            will=will,
            key=self.key,
            public=self.public,
            foreign_topics=self.foreign_by_topic,
            sealer=sealer,
        )
        self.links.append(link)
        return link

    @property
    def in_flight(self) -> int:
        return sum(link.pending for link in self.links)

    @property
    def reconnects(self) -> int:
        """Connections re-established after the broker went away."""
        return sum(link.reconnects for link in self.links)

    @property
    def backlog(self) -> int:
        """MQTT messages waiting in this process, either way (see `RoundScheduler.hold`)."""
        return sum(link.backlog for link in self.links)

    def unreachable_for(self, now: float) -> float:
        """Seconds the longest-lost connection has been down (0: all connected)."""
        return unreachable_for(self.links, now)

    async def start(self, timeout: float = 10.0) -> None:
        """Connect every link (a bounded number at a time) and wait for subscriptions."""
        gate = asyncio.Semaphore(self.concurrency)

        async def open_one(link: MqttLink) -> None:
            async with gate:
                await link.open(timeout)

        results = await asyncio.gather(
            *(open_one(link) for link in self.links if link._task is None and not link.closed),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                await self.stop()
                raise result
        await asyncio.gather(*(link.settle() for link in self.links if not link.closed))

    async def drain(self, timeout: float = 5.0) -> None:
        """Let last-round messages land before counters are read (see `settle_links`)."""
        await settle_links(self.links, self.counters, timeout)

    async def stop(self) -> None:
        await close_links(self.links)


def unreachable_for(links: list[MqttLink], now: float) -> float:
    """Seconds the longest-lost of `links` has been disconnected (0: none is). A link
    closed on purpose (its agent crashed, perhaps while the broker was away) no longer
    waits for the broker, so it does not count."""
    lost = [
        link.disconnected_since
        for link in links
        if link.disconnected_since is not None and not link.closed
    ]
    return now - min(lost) if lost else 0.0


async def settle_links(links: list[MqttLink], counters: MessageCounters, timeout: float) -> None:
    """Let queued messages reach the broker and deliveries settle (bounded by `timeout`).

    Called when a run ends, so that what agents sent in the last round is counted as
    delivered rather than dropped at disconnect.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    settling = [asyncio.ensure_future(link.settle()) for link in links if not link.closed]
    if settling:
        _, late = await asyncio.wait(settling, timeout=timeout)
        for task in late:
            task.cancel()
    last = -1
    while counters.delivered != last and loop.time() < deadline:
        last = counters.delivered
        await asyncio.sleep(0.05)


async def close_links(links: list[MqttLink]) -> None:
    """Disconnect every link cleanly and wait (bounded) until each has."""
    for link in links:
        link.close()
    await asyncio.gather(*(link.closed_task() for link in links))
