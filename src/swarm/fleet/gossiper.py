"""An agent that drives a sans-I/O gossip core: acts each round, answers on arrival.

The round scheduler calls `on_round` once per gossip period; messages are handled as
they arrive (a handler on the Link, no task switch per message), so request/response
protocols such as pull or pairwise averaging finish an exchange within the round.
Anything a peer sends that fails to decode or to fit the protocol is counted in
`dropped_malformed`; a bug in the core crashes this agent only.

An agent may also run a failure detector (`swim`, see `swarm.fleet.detection`) over the
same Link: its kinds go to the detector, everything else to the workload's core.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from swarm import wire
from swarm.broker.link import Link
from swarm.fleet.agent import Agent, World
from swarm.protocols.detection.swim import KINDS as SWIM_KINDS
from swarm.protocols.detection.swim import Swim, SwimError
from swarm.protocols.gossip.core import (
    Core,
    PreparingCore,
    ProtocolViolation,
    TimedCore,
    is_timed,
    prepares,
)

__all__ = ["GossipAgent"]


class GossipAgent(Agent):
    __slots__ = ("_ready", "_timed", "core", "round", "swim", "swim_rng", "swim_timeout")

    def __init__(self, world: World, index: int, link: Link, core: Core, **placement: Any):
        super().__init__(world, index, link, **placement)
        self.core = core
        self.round = 0
        # The core again when its work takes simulated time (its sends wait), else None.
        self._timed: TimedCore | None = core if is_timed(core) else None
        # The core again when it queues local work before each round's acts, else None.
        self._ready: PreparingCore | None = core if prepares(core) else None
        self.swim: Swim | None = None  # a failure detector beside the core, if the run has one
        self.swim_rng: np.random.Generator | None = None
        self.swim_timeout = 0.0  # simulated seconds from a ping to its ping-reqs

    def detect(self, swim: Swim, rng: np.random.Generator, timeout: float) -> None:
        """Run `swim` beside the core: a period per round, ping-reqs `timeout` later."""
        self.swim, self.swim_rng, self.swim_timeout = swim, rng, timeout

    def setup(self) -> None:
        super().setup()
        self.link.set_handler(self.on_payload)
        prepare = self.on_prepare if self._ready else None
        self.world.rounds.add(self.index, self.on_round, prepare, agent=True)

    def teardown(self) -> None:
        self.world.rounds.remove(self.index)

    def on_prepare(self, round: int) -> None:
        """The core's local work for the round, queued before any agent acts (see
        `RoundScheduler.add`); only cores with a `prepare` are called."""
        ready = self._ready
        if ready is None or not self.alive:
            return  # crashed at this boundary, after the round's participants were listed
        try:
            ready.prepare(round, self.rng)
        except Exception as exc:  # a core bug must not take the fleet down
            self.crash(f"{type(exc).__name__} in round {round}: {exc}")

    def on_round(self, round: int) -> None:
        if not self.alive:
            return  # crashed while preparing this round
        self.round = round
        if self.swim is not None:
            self._probe(round)
        try:
            sends = self.core.on_tick(round, self.rng)
        except Exception as exc:  # a core bug must not take the fleet down
            self.crash(f"{type(exc).__name__} in round {round}: {exc}")
            return
        if sends:
            if self._timed is not None:
                self._dispatch(self._timed, sends)
            else:
                self.send_all(sends)

    def _dispatch(self, core: TimedCore, sends: list[Any]) -> None:
        """Send now, or once the core's pending compute time has passed (simulated)."""
        delay = core.pending_delay
        if delay > 0:
            core.pending_delay = 0.0
            loop = asyncio.get_running_loop()
            loop.call_at(loop.time() + delay, self._send_if_alive, sends)
        else:
            self.send_all(sends)

    def _send_if_alive(self, sends: list[Any]) -> None:
        if self.alive:
            self.send_all(sends)

    def _probe(self, round: int) -> None:
        """The detector's period: judge, ping; ask others a timeout later if no ack."""
        swim, rng = self.swim, self.swim_rng
        assert swim is not None and rng is not None
        self._swim_send(swim, swim.on_period(round, rng))
        loop = asyncio.get_running_loop()
        loop.call_at(loop.time() + self.swim_timeout, self._probe_timeout, round)

    def _probe_timeout(self, round: int) -> None:
        swim, rng = self.swim, self.swim_rng
        if self.alive and swim is not None and rng is not None:
            self._swim_send(swim, swim.on_timeout(round, rng))

    def _swim_send(self, swim: Swim, sends: list[Any]) -> None:
        if sends:
            swim.sent += len(sends)
            self.send_all(sends)

    def _on_swim(self, src: int, kind: str, body: Any) -> None:
        swim = self.swim
        assert swim is not None
        try:
            sends = swim.on_message(src, kind, body)
        except SwimError:
            self.world.counters.dropped_malformed += 1
            return
        except Exception as exc:  # a detector bug must not take the fleet down
            self.crash(f"{type(exc).__name__} in SWIM {kind!r} handler: {exc}")
            return
        self._swim_send(swim, sends)

    def on_payload(self, topic: str, payload: bytes) -> None:
        world = self.world
        try:
            envelope = wire.decode(payload)
        except wire.MalformedMessage:
            world.counters.dropped_malformed += 1
            return
        claimed = envelope.src
        # An agent is numbered on the wire; a named one is looked up.
        src = claimed if type(claimed) is int else world.index_of.get(str(claimed))
        if src is None or not 0 <= src < len(world.ids):
            world.counters.dropped_malformed += 1
            return
        if world.client_prefix is not None and self.spoofed(topic, src):
            return
        if self.swim is not None and envelope.kind in SWIM_KINDS:
            self._on_swim(src, envelope.kind, envelope.body)
            return
        try:
            sends = self.core.on_message(self.round, src, envelope.kind, envelope.body, self.rng)
        except ProtocolViolation:
            world.counters.dropped_malformed += 1
            return
        except Exception as exc:  # a core bug must not take the fleet down
            self.crash(f"{type(exc).__name__} in {envelope.kind!r} handler: {exc}")
            return
        if sends:
            if self._timed is not None:
                self._dispatch(self._timed, sends)
            else:
                self.send_all(sends)
