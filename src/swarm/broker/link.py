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

__all__ = ["DEFAULT_INBOX_CAPACITY", "Handler", "Inbox", "Link", "LinkClosed", "Message"]

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

    def close(self) -> None: ...


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
