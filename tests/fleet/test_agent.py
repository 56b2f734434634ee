"""Agent lifecycle and randomness: the contract every device class builds on."""

from __future__ import annotations

import asyncio

import numpy as np

from swarm import clock, topics, wire
from swarm.broker.embedded import EmbeddedBroker
from swarm.fleet.agent import Agent, AgentState, World
from swarm.rounds import RoundScheduler
from swarm.seeding import Stream, generator, seed_sequence


def make_world(n: int = 3, seed: int = 5) -> World:
    ids = [f"a{i}" for i in range(n)]
    return World(
        run_id="t",
        seed=seed,
        ids=ids,
        inbox_topics=[topics.inbox("t", i) for i in ids],
        index_of={a: i for i, a in enumerate(ids)},
        rounds=RoundScheduler(1.0),
    )


def test_agent_streams_are_the_spawned_children_of_the_scenario_seed() -> None:
    world = make_world(seed=42)
    spawned = np.random.SeedSequence(42).spawn(Stream.AGENTS + 1)[Stream.AGENTS].spawn(3)[2]
    assert seed_sequence(42, Stream.AGENTS, 2).generate_state(4).tolist() == (
        spawned.generate_state(4).tolist()
    )

    async def main() -> list[float]:
        broker = EmbeddedBroker()
        agent = Agent(world, 2, broker.connect("a2"))
        return agent.rng.random(3).tolist()

    assert clock.run(main()) == generator(42, Stream.AGENTS, 2).random(3).tolist()


def test_start_stop_and_crash_are_immediate_and_recorded() -> None:
    async def main() -> None:
        world = make_world()
        broker = EmbeddedBroker()
        agents = [Agent(world, i, broker.connect(world.ids[i])) for i in range(3)]
        for agent in agents:
            agent.start()
        await asyncio.sleep(0)
        assert all(a.alive for a in agents)
        agents[0].stop()
        agents[1].crash("power lost")
        assert agents[0].state is AgentState.STOPPED
        assert agents[1].state is AgentState.CRASHED
        assert agents[1].link.closed and agents[0].link.closed
        assert world.crashes == [("a1", "power lost")]
        agents[1].crash("again")  # crashing a dead agent changes nothing
        assert len(world.crashes) == 1
        # A crashed agent's inbox is gone: messages to it are dropped, not delivered.
        sender = broker.connect("x")
        sender.publish(world.inbox_topics[1], wire.pack("metrics", "x", 1, 0.0, 0, {}))
        sender.publish(world.inbox_topics[2], wire.pack("metrics", "x", 2, 0.0, 0, {}))
        await asyncio.sleep(1)
        assert broker.counters.delivered == 1
        agents[2].stop()
        await asyncio.gather(*(a.task for a in agents if a.task))
        assert all(a.task is not None and a.task.done() for a in agents)

    clock.run(main())


def test_a_failing_main_crashes_only_that_agent() -> None:
    class Faulty(Agent):
        async def main(self) -> None:
            await asyncio.sleep(2)
            raise ValueError("bad sensor")

    async def main() -> World:
        world = make_world()
        broker = EmbeddedBroker()
        faulty = Faulty(world, 0, broker.connect("a0"))
        healthy = Agent(world, 1, broker.connect("a1"))
        faulty.start()
        healthy.start()
        await asyncio.sleep(5)
        assert faulty.state is AgentState.CRASHED and healthy.alive
        healthy.stop()
        return world

    world = clock.run(main())
    assert world.crashes == [("a0", "ValueError: bad sensor")]


def test_send_all_numbers_messages_and_counts_unencodable_ones() -> None:
    async def main() -> tuple[list[wire.Envelope], int]:
        world = make_world()
        broker = EmbeddedBroker()
        sender = Agent(world, 0, broker.connect("a0"))
        receiver = broker.connect("probe")
        receiver.subscribe(world.inbox_topics[1])
        sender.send_all([(1, "metrics", {"a": 1}), (1, "no-such-kind", {}), (1, "metrics", [])])
        await asyncio.sleep(1)
        return [wire.decode(m.payload) for m in receiver.drain()], world.counters.dropped

    received, dropped = clock.run(main())
    assert [e.seq for e in received] == [1, 3]
    assert {e.src for e in received} == {0}  # an agent is its index on the wire
    assert dropped == 1


def test_round_scheduler_calls_participants_in_order_until_stopped() -> None:
    async def main() -> list[tuple[str, int, float]]:
        loop = asyncio.get_running_loop()
        rounds = RoundScheduler(2.0)
        calls: list[tuple[str, int, float]] = []
        rounds.add("first", lambda r: calls.append(("first", r, loop.time())))
        rounds.add("second", lambda r: calls.append(("second", r, loop.time())))

        def stopper(r: int) -> None:
            if r == 2:
                rounds.stop()

        rounds.add("stopper", stopper)
        rounds.add("late", lambda r: calls.append(("late", r, loop.time())))
        rounds.begin()
        assert await rounds.finished() == 2
        return calls

    calls = clock.run(main())
    assert calls[:4] == [("first", 0, 0.0), ("second", 0, 0.0), ("late", 0, 0.0), ("first", 1, 2.0)]
    assert ("late", 2, 4.0) not in calls and ("second", 2, 4.0) in calls
