"""The agent: an asyncio task with an identity, a place, its own randomness and a Link.

Agents see only their `Link` and the loop's clock, so the same code runs on the embedded
broker (virtual time) and on a real MQTT broker (wall clock). What all agents of a run
share (ids, topics, counters, the round schedule) lives in one `World` to keep each agent
small: a fleet of 100,000 idle agents must fit in a few hundred MiB.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swarm import wire
from swarm.broker.link import Link
from swarm.metrics import MessageCounters
from swarm.rounds import RoundScheduler
from swarm.seeding import Stream, generator

__all__ = ["Agent", "AgentState", "World"]


class AgentState(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    STOPPED = "stopped"
    CRASHED = "crashed"


@dataclass(slots=True)
class World:
    """What the agents of one run share."""

    run_id: str
    seed: int
    ids: list[str]  # agent ids by index
    inbox_topics: list[str]  # inbox topic by index
    index_of: dict[str, int]  # agent id -> index
    rounds: RoundScheduler  # activates agents once per gossip period
    # Per-agent MQTT: inbox topics end in the sender's client id (this prefix + agent id),
    # so the broker's ACL can bind a publisher to the identity it claims (docs/wire.md).
    client_prefix: str | None = None
    counters: MessageCounters = field(default_factory=MessageCounters)
    crashes: list[tuple[str, str]] = field(default_factory=list)  # (agent id, reason)


class Agent:
    """Lifecycle (start, stop, crash), lazy per-agent RNG and message sending."""

    __slots__ = (
        "_rng",
        "_seq",
        "index",
        "kind",
        "link",
        "region",
        "state",
        "task",
        "world",
        "x",
        "y",
    )

    def __init__(
        self,
        world: World,
        index: int,
        link: Link,
        *,
        kind: str = "gpu",
        region: int = 0,
        x: float = 0.0,
        y: float = 0.0,
    ) -> None:
        self.world = world
        self.index = index
        self.link = link
        self.kind = kind
        self.region = region
        self.x = x
        self.y = y
        self.state = AgentState.CREATED
        self.task: asyncio.Task[None] | None = None
        self._rng: np.random.Generator | None = None
        self._seq = 0

    @property
    def id(self) -> str:
        return self.world.ids[self.index]

    @property
    def rng(self) -> np.random.Generator:
        """This agent's generator: stream (AGENTS, index) of the scenario seed."""
        if self._rng is None:
            self._rng = generator(self.world.seed, Stream.AGENTS, self.index)
        return self._rng

    # -- lifecycle -----------------------------------------------------------------------
    def setup(self) -> None:
        """Subscribe before any agent runs, so no early message finds a missing inbox."""
        inbox = self.world.inbox_topics[self.index]
        self.link.subscribe(inbox if self.world.client_prefix is None else inbox + "/+")

    def teardown(self) -> None:
        """Undo `setup` beyond the link (which `close` handles); runs once at the end."""

    def start(self) -> asyncio.Task[None]:
        self.setup()
        self.state = AgentState.RUNNING
        self.task = asyncio.get_running_loop().create_task(self._lifecycle())
        return self.task

    async def _lifecycle(self) -> None:
        try:
            await self.main()
        except asyncio.CancelledError:
            if self.state is AgentState.RUNNING:
                raise  # cancelled from outside (loop shutdown): not ours to swallow
            # stop() or crash() ended us: a normal end for the task
        except Exception as exc:  # a bug in one agent's behaviour must not stop the fleet
            self.crash(f"{type(exc).__name__}: {exc}")
        finally:
            if self.state is AgentState.RUNNING:
                self.state = AgentState.STOPPED
            self._release()

    async def main(self) -> None:
        """Free-form behaviour; the base agent idles, buffering nothing, until closed."""
        while await self.link.wait():
            self.link.drain()

    def stop(self) -> None:
        """Leave cleanly: out of the rounds, link closed, task ended."""
        if self.state in (AgentState.RUNNING, AgentState.CREATED):
            self._end(AgentState.STOPPED)

    def crash(self, reason: str) -> None:
        """Die abruptly (a fault, or a bug in a protocol core); recorded, never fatal."""
        if self.state in (AgentState.RUNNING, AgentState.CREATED):
            self.world.crashes.append((self.id, reason))
            self._end(AgentState.CRASHED)

    def _end(self, state: AgentState) -> None:
        # Effective at once: a crashed agent must not act later in the same round.
        self.state = state
        self._release(will=state is AgentState.CRASHED)
        task = self.task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    def _release(self, *, will: bool = False) -> None:
        """Teardown and close; a crash closes as a vanished client, so that on a real
        broker the agent's last will fires."""
        if not self.link.closed:
            self.teardown()
            self.link.close(will=will)

    @property
    def alive(self) -> bool:
        return self.state is AgentState.RUNNING

    # -- messages ------------------------------------------------------------------------
    def send(self, peer: int, kind: str, body: Any) -> None:
        """Publish one envelope to a peer's inbox."""
        self.send_all([(peer, kind, body)])

    def send_all(self, sends: Iterable[tuple[int, str, Any]]) -> None:
        """Publish (peer, kind, body) envelopes; an unencodable one is counted as dropped.

        The hot path of every gossip round, hence the local variables.
        """
        world = self.world
        src = self.index  # on the wire an agent is its index (docs/wire.md)
        inbox_topics = world.inbox_topics
        prefix = world.client_prefix
        suffix = "" if prefix is None else "/" + prefix + world.ids[src]
        publish = self.link.publish
        pack = wire.pack
        now = asyncio.get_running_loop().time() - world.rounds.start
        seq = self._seq
        for peer, kind, body in sends:
            seq += 1
            try:
                payload = pack(kind, src, seq, now, 1, body)
            except wire.WireError:
                world.counters.dropped += 1
                continue
            publish(inbox_topics[peer] + suffix, payload)
        self._seq = seq

    def spoofed(self, topic: str, src: int) -> bool:
        """Whether a message claims a sender (an agent's index) other than the client that
        published it.

        Only per-agent MQTT topics name their publisher; counted, so that an impostor shows
        in the summary instead of silently steering the protocol.
        """
        prefix = self.world.client_prefix
        if prefix is None or topic[topic.rfind("/") + 1 :] == prefix + self.world.ids[src]:
            return False
        self.world.counters.dropped_spoofed += 1
        return True
