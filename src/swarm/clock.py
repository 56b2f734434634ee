"""Virtual time for asyncio, and the wall clock.

On the embedded broker nothing waits on real I/O, so whenever every task is blocked the
loop can jump straight to the next scheduled timer: an hour of fleet time takes seconds.
`asyncio.sleep`, `wait_for` and `asyncio.timeout` keep working because they are built on
`loop.call_at` and `loop.time()`, which this loop reinterprets.

Timers due at the same instant fire in the order they were scheduled (a sequence number
breaks ties), so a run is a deterministic function of its inputs.

The loop subclasses `asyncio.SelectorEventLoop` and touches three private attributes of
CPython's base loop (`_scheduled`, `_debug`, `_clock_resolution`); they have been stable
since Python 3.4.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import selectors
import time
import traceback
from collections.abc import Callable, Coroutine, Mapping
from contextvars import Context
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

__all__ = ["VirtualTimeLoop", "now", "run", "sleep_until"]


class _SequencedTimer(asyncio.TimerHandle):
    """A timer ordered by (when, sequence) so that ties fire first-scheduled-first."""

    __slots__ = ("_seq",)

    _seq: int
    # CPython's private slots of Handle and TimerHandle, which typeshed does not declare.
    _source_traceback: traceback.StackSummary | None
    _scheduled: bool
    _when: float

    def __lt__(self, other: object) -> bool:
        if isinstance(other, _SequencedTimer):
            if self._when == other._when:
                return self._seq < other._seq
            return self._when < other._when
        return super().__lt__(other)  # type: ignore[operator]


class _VirtualSelector(selectors.BaseSelector):
    """Wraps a real selector; where the loop would block, it advances virtual time instead.

    Real file descriptors (the loop's self-pipe, signals) are still polled, so
    `call_soon_threadsafe` from another thread is honoured. With `speed` set, each jump of
    `dt` virtual seconds takes `dt / speed` wall seconds, which paces a live dashboard;
    while `paused`, the clock does not move at all and only outside input wakes the loop.
    """

    def __init__(self, loop: VirtualTimeLoop, real: selectors.BaseSelector) -> None:
        self._loop = loop
        self._real = real
        self._skipped_polls = 0

    def register(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_key(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Mapping[FileDescriptorLike, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout == 0:
            # Busy loop iteration: skip most syscalls; the ready queue is checked anyway.
            self._skipped_polls += 1
            if self._skipped_polls < 64:
                return []
            self._skipped_polls = 0
            return self._real.select(0)
        events = self._real.select(0)
        if events:
            return events
        loop = self._loop
        if timeout is None or loop.paused:
            # Nothing is scheduled and nothing is ready: only outside input can wake us.
            return self._real.select(None)
        if loop.speed is not None:
            started = time.perf_counter()
            events = self._real.select(timeout / loop.speed)
            if events:  # woken early by a thread or a signal: advance only what elapsed
                loop._advance((time.perf_counter() - started) * loop.speed)
                return events
        loop._advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock only moves when every task is waiting.

    `speed` (virtual seconds per wall second) paces the clock; None runs as fast as
    possible. `paused` freezes it: what is due now still runs, nothing later does. Both
    may be changed while the loop runs (from another thread via `call_soon_threadsafe`).
    """

    def __init__(self, *, start: float = 0.0, speed: float | None = None) -> None:
        self._now = float(start)
        self.speed = speed
        self.paused = False
        self._timer_seq = itertools.count()
        super().__init__(_VirtualSelector(self, selectors.DefaultSelector()))

    def time(self) -> float:
        return self._now

    @property
    def _clock_resolution(self) -> float:
        # The base loop runs every timer due before `time() + _clock_resolution`. One ulp
        # makes that exactly the timers due at or before now: a timer a nanosecond later
        # waits for the clock to reach it instead of firing early.
        now = self._now
        return math.nextafter(now, math.inf) - now

    @_clock_resolution.setter
    def _clock_resolution(self, value: float) -> None:
        pass  # the base loop sets the wall clock's resolution; virtual time is exact

    def _advance(self, dt: float) -> None:
        target = self._now + dt
        scheduled = self._scheduled  # type: ignore[attr-defined]
        # Land exactly on the next timer so float rounding never leaves it a hair early.
        if scheduled and scheduled[0]._when <= target + 1e-9:
            target = max(self._now, scheduled[0]._when)
        self._now = target

    def call_at(
        self,
        when: float,
        callback: Callable[[*Ts], object],
        *args: *Ts,
        context: Context | None = None,
    ) -> asyncio.TimerHandle:
        if when is None:
            raise TypeError("when cannot be None")
        self._check_closed()  # type: ignore[attr-defined]
        if self._debug:  # type: ignore[attr-defined]
            self._check_thread()  # type: ignore[attr-defined]
            self._check_callback(callback, "call_at")  # type: ignore[attr-defined]
        timer = _SequencedTimer(when, callback, args, self, context)
        timer._seq = next(self._timer_seq)
        if timer._source_traceback:
            del timer._source_traceback[-1]
        heapq.heappush(self._scheduled, timer)  # type: ignore[attr-defined]
        timer._scheduled = True
        return timer


def run(main: Coroutine[Any, Any, T], *, virtual: bool = True, speed: float | None = None) -> T:
    """Run a coroutine to completion on a virtual-time loop (default) or the wall clock."""
    if not virtual:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(speed=speed)) as runner:
        return runner.run(main)


def now() -> float:
    """Current time of the running loop (virtual seconds on a VirtualTimeLoop)."""
    return asyncio.get_running_loop().time()


def _ring(alarms: dict[float, list[asyncio.Future[None]]], deadline: float) -> None:
    for future in alarms.pop(deadline):
        if not future.done():
            future.set_result(None)


async def sleep_until(deadline: float) -> None:
    """Sleep until the loop's clock reads `deadline` (exactly, on a virtual loop).

    Scheduling the absolute time avoids the rounding of `sleep(deadline - now)`, so
    agents sharing a round boundary wake at the very same instant, in the order they
    went to sleep. Sleepers sharing a deadline share one timer: ten thousand agents
    waiting for the next round cost one heap entry, not ten thousand.
    """
    loop = asyncio.get_running_loop()
    if deadline <= loop.time():
        await asyncio.sleep(0)
        return
    alarms: dict[float, list[asyncio.Future[None]]] | None = getattr(loop, "_swarm_alarms", None)
    if alarms is None:
        alarms = {}
        loop._swarm_alarms = alarms  # type: ignore[attr-defined]
    waiters = alarms.get(deadline)
    if waiters is None:
        waiters = alarms[deadline] = []
        loop.call_at(deadline, _ring, alarms, deadline)
    future = loop.create_future()
    waiters.append(future)
    await future
