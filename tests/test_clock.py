"""Virtual time: the clock jumps to the next timer, ties fire in scheduling order."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarm import clock
from swarm.clock import VirtualTimeLoop, sleep_until

# Tests that wait on sleepers bound the wait: a sleeper that is never woken fails the test at
# this virtual time instead of leaving the loop blocked for ever.
GUARD = 1e8


def test_an_hour_of_virtual_time_takes_milliseconds_and_lands_on_the_deadline() -> None:
    async def main() -> float:
        await asyncio.sleep(3600)
        return asyncio.get_running_loop().time()

    started = time.perf_counter()
    assert clock.run(main()) == 3600.0
    assert time.perf_counter() - started < 1.0


def test_run_uses_a_virtual_time_loop_starting_at_zero() -> None:
    async def main() -> tuple[bool, float]:
        loop = asyncio.get_running_loop()
        return isinstance(loop, VirtualTimeLoop), loop.time()

    assert clock.run(main()) == (True, 0.0)


def test_a_loop_may_start_at_any_time() -> None:
    loop = VirtualTimeLoop(start=100.0)
    try:

        async def main() -> tuple[float, float]:
            before = clock.now()
            await asyncio.sleep(2.5)
            return before, clock.now()

        assert loop.run_until_complete(main()) == (100.0, 102.5)
    finally:
        loop.close()


def test_now_reads_the_running_loop_and_needs_one() -> None:
    async def main() -> tuple[float, float]:
        await asyncio.sleep(7.25)
        return clock.now(), asyncio.get_running_loop().time()

    assert clock.run(main()) == (7.25, 7.25)
    with pytest.raises(RuntimeError):
        clock.now()


def test_consecutive_sleeps_add_up_exactly() -> None:
    async def main() -> list[float]:
        seen = []
        for _ in range(10):
            await asyncio.sleep(0.5)
            seen.append(clock.now())
        return seen

    assert clock.run(main()) == [0.5 * i for i in range(1, 11)]


def test_wait_for_times_out_at_the_virtual_deadline() -> None:
    async def main() -> float:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(10), timeout=2.5)
        return clock.now()

    assert clock.run(main()) == 2.5


def test_wait_for_returns_the_result_when_it_comes_in_time() -> None:
    async def answer() -> int:
        await asyncio.sleep(1.5)
        return 42

    async def main() -> tuple[int, float]:
        return await asyncio.wait_for(answer(), timeout=2.0), clock.now()

    assert clock.run(main()) == (42, 1.5)


def test_asyncio_timeout_fires_at_the_virtual_deadline() -> None:
    async def main() -> tuple[float, float]:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.5):
                await asyncio.sleep(100)
        first = clock.now()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout_at(first + 3.0):
                await asyncio.Event().wait()
        return first, clock.now()

    assert clock.run(main()) == (1.5, 4.5)


def test_gather_ends_with_the_longest_sleep() -> None:
    async def nap(delay: float) -> float:
        await asyncio.sleep(delay)
        return clock.now()

    async def main() -> tuple[list[float], float]:
        woke = await asyncio.gather(nap(3.0), nap(1.0), nap(2.0))
        return woke, clock.now()

    assert clock.run(main()) == ([3.0, 1.0, 2.0], 3.0)


def test_event_waits_with_timeouts() -> None:
    async def main() -> tuple[float, float]:
        event = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.call_at(2.0, event.set)
        await asyncio.wait_for(event.wait(), timeout=5.0)
        set_at = clock.now()
        never = asyncio.Event()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(never.wait(), timeout=5.0)
        return set_at, clock.now()

    assert clock.run(main()) == (2.0, 7.0)


def test_call_at_ties_fire_in_scheduling_order() -> None:
    async def main() -> list[tuple[float, str]]:
        loop = asyncio.get_running_loop()
        fired: list[tuple[float, str]] = []
        plan = [(5.0, "a"), (3.0, "b"), (5.0, "c"), (1.0, "d"), (3.0, "e"), (5.0, "f")]
        plan += [(5.0, f"x{i}") for i in range(20)]
        plan += [(3.0, f"y{i}") for i in range(20)]
        for when, name in plan:
            loop.call_at(when, lambda w=when, n=name: fired.append((loop.time(), n)))
        await asyncio.sleep(10)
        return fired

    fired = clock.run(main())
    ones = [(1.0, "d")]
    threes = [(3.0, "b"), (3.0, "e")] + [(3.0, f"y{i}") for i in range(20)]
    fives = [(5.0, "a"), (5.0, "c"), (5.0, "f")] + [(5.0, f"x{i}") for i in range(20)]
    assert fired == ones + threes + fives


def test_a_timer_scheduled_for_now_by_a_timer_fires_after_the_rest_of_its_batch() -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        fired: list[str] = []

        def first() -> None:
            fired.append("first")
            loop.call_at(loop.time(), fired.append, "again")

        loop.call_at(1.0, first)
        loop.call_at(1.0, fired.append, "second")
        await asyncio.sleep(2)
        return fired

    assert clock.run(main()) == ["first", "second", "again"]


def test_timers_a_hair_apart_each_fire_at_their_own_time() -> None:
    deadlines = [1.0, 1.0 + 2**-52, 1.0 + 1e-10, 2.0 + 1e-12, 2.0]

    async def main() -> list[tuple[float, float]]:
        loop = asyncio.get_running_loop()
        seen: list[tuple[float, float]] = []
        for when in deadlines:
            loop.call_at(when, lambda w=when: seen.append((w, loop.time())))
        await asyncio.sleep(3)
        return seen

    seen = clock.run(main())
    assert [w for w, _ in seen] == sorted(deadlines)
    assert all(w == t for w, t in seen)


def test_sleep_until_sleepers_sharing_a_deadline_wake_in_order_on_one_timer() -> None:
    async def main() -> tuple[int, list[int], set[float]]:
        loop = asyncio.get_running_loop()
        woke: list[int] = []
        times: set[float] = set()

        async def sleeper(i: int) -> None:
            await sleep_until(10.0)
            woke.append(i)
            times.add(loop.time())

        tasks = [asyncio.create_task(sleeper(i)) for i in range(1000)]
        await asyncio.sleep(0)  # every sleeper has started and is waiting
        timers = len(loop._scheduled)  # type: ignore[attr-defined]
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=GUARD)
        return timers, woke, times

    timers, woke, times = clock.run(main())
    assert timers <= 2
    assert woke == list(range(1000))
    assert times == {10.0}


def test_sleep_until_now_or_the_past_returns_at_once() -> None:
    async def main() -> list[float]:
        await asyncio.sleep(5)
        await sleep_until(5.0)
        await sleep_until(1.0)
        return [clock.now()]

    assert clock.run(main()) == [5.0]


def test_sleep_until_lands_exactly_where_sleep_might_round() -> None:
    async def main() -> list[float]:
        seen = []
        for k in range(1, 50):
            await sleep_until(k * 0.1)
            seen.append(clock.now())
        return seen

    assert clock.run(main()) == [k * 0.1 for k in range(1, 50)]


def test_a_cancelled_sleeper_does_not_disturb_others_sharing_its_deadline() -> None:
    async def main() -> tuple[list[tuple[int, float]], list[bool]]:
        loop = asyncio.get_running_loop()
        woke: list[tuple[int, float]] = []

        async def sleeper(i: int) -> None:
            await sleep_until(3.0)
            woke.append((i, loop.time()))

        tasks = [asyncio.create_task(sleeper(i)) for i in range(5)]
        await asyncio.sleep(1)
        tasks[0].cancel()  # the one whose call scheduled the shared timer
        tasks[2].cancel()
        late = asyncio.create_task(sleeper(5))  # joins the same deadline afterwards
        gathered = asyncio.gather(*tasks, late, return_exceptions=True)
        results = await asyncio.wait_for(gathered, timeout=GUARD)
        return woke, [isinstance(r, asyncio.CancelledError) for r in results]

    woke, cancelled = clock.run(main())
    assert woke == [(1, 3.0), (3, 3.0), (4, 3.0), (5, 3.0)]
    assert cancelled == [True, False, True, False, False, False]


def test_a_deadline_whose_sleepers_were_all_cancelled_still_serves_a_new_sleeper() -> None:
    async def main() -> float:
        task = asyncio.create_task(sleep_until(2.0))
        await asyncio.sleep(0.5)
        task.cancel()
        await asyncio.sleep(0.5)
        await asyncio.wait_for(sleep_until(2.0), timeout=GUARD)
        return clock.now()

    assert clock.run(main()) == 2.0


def test_a_thread_can_wake_a_loop_with_nothing_scheduled() -> None:
    async def main() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        thread = threading.Thread(
            target=lambda: (time.sleep(0.01), loop.call_soon_threadsafe(future.set_result, 7))
        )
        thread.start()
        try:
            return await future, clock.now()
        finally:
            thread.join()

    assert clock.run(main()) == (7, 0.0)


def test_call_soon_threadsafe_is_honoured_while_virtual_time_races_ahead() -> None:
    async def main() -> tuple[list[str], float]:
        loop = asyncio.get_running_loop()
        box: list[str] = []
        go = threading.Event()

        def worker() -> None:
            go.wait(5)
            loop.call_soon_threadsafe(box.append, "from thread")

        thread = threading.Thread(target=worker)
        thread.start()
        give_up = time.monotonic() + 10
        try:
            go.set()
            while not box and time.monotonic() < give_up:
                await asyncio.sleep(60)  # an hour of virtual time per 60 iterations
        finally:
            thread.join()
        return box, clock.now()

    box, virtual = clock.run(main())
    assert box == ["from thread"]
    assert virtual % 60 == 0


def test_call_soon_threadsafe_wakes_a_paced_loop_early() -> None:
    async def main() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        thread = threading.Thread(
            target=lambda: (time.sleep(0.02), loop.call_soon_threadsafe(future.set_result, 3))
        )
        thread.start()
        try:
            value = await asyncio.wait_for(future, timeout=3600)
        finally:
            thread.join()
        return value, clock.now()

    value, virtual = clock.run(main(), speed=1.0)
    assert value == 3
    assert 0.0 < virtual < 3600.0


def test_speed_paces_virtual_time_against_the_wall_clock() -> None:
    async def main() -> float:
        await asyncio.sleep(0.5)
        return clock.now()

    started = time.perf_counter()
    assert clock.run(main(), speed=100.0) == 0.5
    elapsed = time.perf_counter() - started
    assert 0.002 < elapsed < 1.0


def test_run_on_the_wall_clock() -> None:
    async def main() -> tuple[bool, float, float]:
        loop = asyncio.get_running_loop()
        before = loop.time()
        await asyncio.sleep(0.05)
        return isinstance(loop, VirtualTimeLoop), loop.time() - before, loop.time()

    started = time.perf_counter()
    virtual, slept, loop_time = clock.run(main(), virtual=False)
    elapsed = time.perf_counter() - started
    assert not virtual
    assert slept >= 0.04
    assert elapsed >= 0.04
    assert abs(loop_time - time.monotonic()) < 5.0


def _program(seed: int) -> list[tuple[float, int, int]]:
    async def agent(i: int, rng: random.Random, log: list[tuple[float, int, int]]) -> None:
        for step in range(20):
            await asyncio.sleep(rng.choice([0, 0.25, 0.5, 1.0, rng.random()]))
            log.append((clock.now(), i, step))

    async def main() -> list[tuple[float, int, int]]:
        rng = random.Random(seed)
        log: list[tuple[float, int, int]] = []
        agents = asyncio.gather(*(agent(i, random.Random(rng.random()), log) for i in range(30)))
        await asyncio.wait_for(agents, timeout=GUARD)
        return log

    return clock.run(main())


def test_the_same_program_gives_the_same_event_order() -> None:
    first = _program(11)
    assert first == _program(11)
    assert [t for t, _, _ in first] == sorted(t for t, _, _ in first)
    assert first != _program(12)


delays = st.lists(
    st.one_of(
        st.sampled_from([0.0, 0.5, 1.0, 3.0]),
        st.floats(min_value=0.0, max_value=1e4, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=40,
)


@given(delays=delays, start=st.sampled_from([0.0, 0.1, 1e6]))
def test_sleepers_wake_in_deadline_then_start_order_exactly_at_their_deadline(
    delays: list[float], start: float
) -> None:
    async def main() -> tuple[list[tuple[float, int]], list[float]]:
        loop = asyncio.get_running_loop()
        await sleep_until(start)
        woke: list[tuple[float, int]] = []
        clocks: list[float] = []

        async def sleeper(i: int, deadline: float) -> None:
            await sleep_until(deadline)
            woke.append((deadline, i))
            clocks.append(loop.time())

        sleepers = asyncio.gather(*(sleeper(i, start + d) for i, d in enumerate(delays)))
        await asyncio.wait_for(sleepers, timeout=GUARD)
        return woke, clocks

    woke, clocks = clock.run(main())
    deadlines = [start + d for d in delays]
    assert woke == sorted((d, i) for i, d in enumerate(deadlines))
    assert clocks == [d for d, _ in woke]


def test_a_failing_round_participant_ends_the_run_with_its_error() -> None:
    from swarm.rounds import RoundScheduler

    async def main() -> None:
        rounds = RoundScheduler(1.0)

        def broken(round: int) -> None:
            if round == 2:
                raise KeyError("missing column")

        rounds.add("observer", broken)
        rounds.begin()
        await rounds.finished()

    with pytest.raises(KeyError, match="missing column"):
        clock.run(main())


def test_participants_that_prepare_together_all_prepare_before_any_acts() -> None:
    from swarm.rounds import RoundScheduler

    calls: list[str] = []

    async def main() -> None:
        rounds = RoundScheduler(1.0)

        def call(name: str) -> Callable[[int], None]:
            def record(round: int) -> None:
                calls.append(f"{name}{round}")
                if name == "C" and round == 1:
                    rounds.stop()

            return record

        rounds.add("observer", call("o"))
        rounds.add(1, call("A"), call("a"))
        rounds.add(2, call("B"), call("b"))
        rounds.add("after", call("C"))
        rounds.add(3, call("D"), call("d"))
        rounds.begin()
        await rounds.finished()

    clock.run(main())
    one = ["o{r}", "a{r}", "b{r}", "A{r}", "B{r}", "C{r}", "d{r}", "D{r}"]
    assert calls == [c.format(r=0) for c in one] + [c.format(r=1) for c in one[:6]]


def test_a_failing_preparation_ends_the_run_with_its_error() -> None:
    from swarm.rounds import RoundScheduler

    acted: list[int] = []

    async def main() -> None:
        rounds = RoundScheduler(1.0)

        def broken(round: int) -> None:
            raise KeyError("no shard")

        rounds.add(1, acted.append, broken)
        rounds.begin()
        await rounds.finished()

    with pytest.raises(KeyError, match="no shard"):
        clock.run(main())
    assert acted == []
