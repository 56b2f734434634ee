"""The `Link`: all an agent sees of the world (publish, subscribe, receive).

Both transports implement it: the embedded broker (in-process, virtual time) and the
MQTT client. An agent either registers a handler, called for every message as it arrives
(the cheap path used by protocol cores, no task switch per message), or consumes the
inbox: `drain()`, `await wait(deadline)` or `async for message in link`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import NamedTuple, Protocol, runtime_checkable

from swarm import topics

__all__ = [
    "DEFAULT_INBOX_CAPACITY",
    "ClientLink",
    "Handler",
    "Inbox",
    "Link",
    "LinkClosed",
    "Message",
]

DEFAULT_INBOX_CAPACITY = 10_000


class Message(NamedTuple):
    """One received MQTT message: the topic it was published on and its raw payload."""

    topic: str
    payload: bytes


Handler = Callable[[str, bytes], None]


class LinkClosed(RuntimeError):
    """Publishing or subscribing on a link after `close()`."""


@runtime_checkable
class Link(Protocol):
    """What both transports offer an agent."""

    client_id: str
    closed: bool

    def publish(self, topic: str, payload: bytes) -> None:
        """Send without waiting (MQTT QoS 0 semantics: it may be lost, never blocks)."""

    def subscribe(self, topic_filter: str) -> None: ...

    def unsubscribe(self, topic_filter: str) -> None: ...

    def set_handler(self, handler: Handler | None) -> None:
        """Deliver each message to `handler` on arrival instead of buffering it."""

    def drain(self) -> list[Message]:
        """Take every buffered message, oldest first."""

    async def wait(self, deadline: float | None = None) -> bool:
        """Wait until a message is buffered or the loop time reaches `deadline`."""

    def __aiter__(self) -> AsyncIterator[Message]: ...

    def close(self, *, will: bool = False) -> None:
        """Disconnect; with `will`, as a crashed client would: the broker publishes the
        client's last will, if it has one (a real broker; elsewhere a plain close)."""


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Inbox:
    """A bounded buffer of received messages with one waiter; overflow is counted."""

    __slots__ = ("_items", "_waiter", "capacity", "closed", "dropped")

    def __init__(self, capacity: int = DEFAULT_INBOX_CAPACITY) -> None:
        self._items: list[Message] = []
        self._waiter: asyncio.Future[None] | None = None
        self.capacity = capacity
        self.dropped = 0
        self.closed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, message: Message) -> bool:
        """Buffer a message; False (and counted) when the inbox is full or closed."""
        if self.closed or len(self._items) >= self.capacity:
            self.dropped += 1
            return False
        self._items.append(message)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    def drain(self) -> list[Message]:
        items = self._items
        self._items = []
        return items

    async def wait(self, deadline: float | None = None) -> bool:
        if self._items or self.closed:
            return bool(self._items)
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiter = waiter
        timer = loop.call_at(deadline, _wake, waiter) if deadline is not None else None
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        return bool(self._items)

    def close(self) -> None:
        self.closed = True
        if self._waiter is not None:
            _wake(self._waiter)

    async def __aiter__(self) -> AsyncIterator[Message]:
        # One message at a time, taken only when handed out: a consumer that stops early
        # leaves the rest queued (an async generator is not closed at `break`).
        while True:
            if not self._items:
                if self.closed:
                    return
                await self.wait()
                continue
            yield self._items.pop(0)


class ClientLink:
    """What every transport's Link shares: identity, subscriptions, and delivery of what
    arrives to the handler or the inbox. Subclasses say how messages reach the broker
    (`publish`, `_subscribed`, `_unsubscribed`, `_disconnect`)."""

    __slots__ = ("_filters", "_handler", "client_id", "closed", "inbox")

    def __init__(self, client_id: str, capacity: int = DEFAULT_INBOX_CAPACITY) -> None:
        self.client_id = client_id
        self.inbox = Inbox(capacity)
        self.closed = False
        self._filters: list[str] = []
        self._handler: Handler | None = None

    def _refuse_if_closed(self, action: str) -> None:
        if self.closed:
            raise LinkClosed(f"client {self.client_id!r} {action} after close")

    @staticmethod
    def _refuse_wildcards(topic: str) -> None:
        if "+" in topic or "#" in topic:
            raise topics.TopicError(f"cannot publish to {topic!r}: wildcards are for filters")

    def subscribe(self, topic_filter: str) -> None:
        self._refuse_if_closed("subscribed")
        topics.validate_filter(topic_filter)
        if topic_filter not in self._filters:
            self._filters.append(topic_filter)
            self._subscribed(topic_filter)

    def unsubscribe(self, topic_filter: str) -> None:
        if topic_filter in self._filters:
            self._filters.remove(topic_filter)
            self._unsubscribed(topic_filter)

    def _subscribed(self, topic_filter: str) -> None:
        """Tell the broker (subclasses)."""

    def _unsubscribed(self, topic_filter: str) -> None:
        """Tell the broker (subclasses)."""

    def set_handler(self, handler: Handler | None) -> None:
        self._handler = handler

    def drain(self) -> list[Message]:
        return self.inbox.drain()

    async def wait(self, deadline: float | None = None) -> bool:
        return await self.inbox.wait(deadline)

    def __aiter__(self) -> AsyncIterator[Message]:
        return self.inbox.__aiter__()

    def deliver(self, topic: str, payload: bytes) -> bool:
        """Hand an arrived message to the handler or the inbox; False if it was not taken."""
        if self.closed:
            return False
        handler = self._handler
        if handler is not None:
            handler(topic, payload)
            return True
        return self.inbox.put(Message(topic, payload))

    def close(self, *, will: bool = False) -> None:
        """Disconnect: no more delivery, and anyone waiting on the inbox wakes up. With
        `will` the broker is told to publish the client's last will (a crash)."""
        if self.closed:
            return
        self.closed = True
        self._disconnect(will)
        self._filters.clear()
        self._handler = None
        self.inbox.close()

    def _disconnect(self, will: bool) -> None:
        """Leave the broker (subclasses)."""
