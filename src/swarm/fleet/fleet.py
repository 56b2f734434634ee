"""The fleet: builds agents from a scenario, wires them to a broker, runs, records.

Observation is a message like everything else: an observer samples the fleet at every
round boundary (before the agents act) and publishes a metrics row on
`swarm/<run>/metrics` and the fleet's live state on `swarm/<run>/status`; the recorder
is just a subscriber that writes the rows. A dashboard or `mosquitto_sub` can read the
very same stream, and turn the knobs on `swarm/<run>/control/#` (see `swarm.fleet.control`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import os
import time
from collections.abc import Callable
from typing import Any, TextIO

from swarm import __version__, seal, topics, wire, workloads
from swarm.activation import Activation
from swarm.broker.embedded import EmbeddedBroker
from swarm.broker.network import Endpoint, NetworkModel
from swarm.broker.url import redact
from swarm.clock import VirtualTimeLoop
from swarm.devices.grid import CapError, Grid, throttles
from swarm.devices.ledger import Ledger
from swarm.devices.profiles import DeviceProfile
from swarm.fleet import faults, fleetmap, observe
from swarm.fleet.agent import Agent, AgentState, World
from swarm.fleet.attack import attack_partial
from swarm.fleet.control import Controller
from swarm.fleet.detection import TIMEOUT_SHARE, Detectors
from swarm.fleet.gossiper import GossipAgent
from swarm.fleet.recorder import EVENT, METRICS, Recorder
from swarm.fleet.transport import transport
from swarm.metrics import MessageCounters
from swarm.placement import agent_ids, overlay, place_agents
from swarm.protocols.sybil import Roster, sybil_ids
from swarm.rounds import RoundScheduler
from swarm.scenario import Scenario, ScenarioError
from swarm.scenario.info import scenario_info
from swarm.scenario.script import NETWORK, script
from swarm.workloads.base import BuildContext, Part, Partial, Results, Row

__all__ = ["EVENT", "METRICS", "Fleet", "RoundCallback", "agents_lost"]

RoundCallback = Callable[[dict[str, Any]], None]
StartCallback = Callable[["Fleet"], None]
# MQTT messages that may wait in this process (unsent or unread) when a round is due
# before the next round may start; more means the broker or the loop is behind.
HOLD_BACKLOG = 256


# Setting any of these says how many threads linear algebra may use; then we leave it be.
BLAS_THREAD_SETTINGS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread() -> contextlib.AbstractContextManager[object]:
    """Linear algebra on this thread only, unless the environment says otherwise.

    A fleet's products are small (a read-out of every agent's model, a batch of local
    steps) and run on the event loop's thread: BLAS worker threads cost more to wake than
    they save, and fight the loop and any other shard for the cores. Measured on 2 cores:
    the read-out of 100 agents took 5.6 ms with OpenBLAS's threads, 1.3 ms without.
    """
    if any(os.environ.get(name) for name in BLAS_THREAD_SETTINGS):
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def agents_lost(events: list[dict[str, Any]]) -> int:
    """Agents whose last word is their will ("lost") rather than "rejoined"."""
    last: dict[Any, str] = {}
    for event in events:
        if event.get("event") in ("lost", "rejoined"):
            last[event.get("agent")] = event["event"]
    return sum(1 for state in last.values() if state == "lost")


class Fleet:
    """One run of a scenario on the embedded broker."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        metrics_sink: TextIO | None = None,
        on_round: RoundCallback | None = None,
        broker_url: str | None = None,
        events_sink: TextIO | None = None,
        shard: tuple[int, int] = (0, 1),
        on_start: StartCallback | None = None,
        live: bool | None = None,
        key: bytes | None = None,
    ) -> None:
        """`key` seals the run's messages on a real broker (a sharded run's workers share
        their coordinator's); a one-process run makes its own."""
        self.scenario = scenario
        self.on_start = on_start  # called in the fleet's loop once links exist, before round 0
        # Publish the status every round: on by default on a real broker (for an attached
        # dashboard); on the embedded broker only for a live session.
        self.live = broker_url is not None if live is None else live
        self.shard, self.shards = shard
        if not 0 <= self.shard < self.shards:
            raise ValueError(f"shard {self.shard}/{self.shards}: need 0 <= index < count")
        if self.shards > 1 and broker_url is None:
            raise ValueError("shards need a real broker to talk through (--broker)")
        # Scripted faults ([[faults.script]]), in firing order; played at round boundaries.
        self._script = collections.deque(script(scenario))
        self._script_played = 0
        if broker_url is not None:
            for entry in self._script:
                if entry.command.name in NETWORK:
                    raise ScenarioError(
                        f"{entry.key}.command = {entry.command.name!r}: the network is "
                        "modelled by the embedded broker only (leave --broker out, or change "
                        "the links of the real network)"
                    )
        self.broker_url = broker_url
        self.key = None if broker_url is None else key or seal.new_key()
        self._will_sealers: dict[str, seal.Sealer] = {}
        self.on_round = on_round
        self.recorder = Recorder(metrics_sink, events_sink)
        self.roster = Roster.of(scenario)
        self.placement = place_agents(scenario)
        self._map_at = -math.inf  # when the dashboard map was last sent (wall clock)
        self.topology = overlay(scenario, self.placement, self.roster)
        total = self.roster.total
        # The agents this process runs: every `shards`-th one, from `shard` on; the
        # Sybils (indices fleet.count..) are shared out the same way.
        self.local = range(self.shard, total, self.shards)
        ids = agent_ids(scenario.fleet.count) + sybil_ids(self.roster.count)
        run_id = scenario.run.name
        self.world = World(
            run_id=run_id,
            seed=scenario.run.seed,
            rounds=RoundScheduler(
                scenario.gossip.period,
                activation=Activation(
                    scenario.run.activation,
                    scenario.gossip.period,
                    scenario.run.seed,
                    self.roster.total,
                ),
            ),
            ids=ids,
            inbox_topics=[topics.inbox(run_id, agent_id) for agent_id in ids],
            index_of={agent_id: i for i, agent_id in enumerate(ids)},
        )
        self.broker: Any = transport(
            scenario, self.world, broker_url, self.shard, self.shards, self.shard_will(), self.key
        )
        if broker_url is not None:
            # Wall-clock rounds wait while the last round's traffic is still queued here.
            self.world.rounds.hold = lambda: self.broker.backlog > HOLD_BACKLOG
        rounds = self.world.rounds

        def now() -> float:  # simulated seconds since round 0
            return asyncio.get_running_loop().time() - rounds.start

        context = BuildContext(
            scenario, self.placement, self.topology, self.roster, self.local, now
        )
        try:
            factory = workloads.load(scenario.fleet.workload)
        except workloads.UnknownWorkload as exc:
            raise ScenarioError(f"fleet.workload = {scenario.fleet.workload!r}: {exc}") from None
        self.workload = factory.build(context)
        self.cores = dict(self.workload.cores)  # the honest agents' cores
        self.sybil_cores = dict(self.workload.sybils)
        self.agents: list[GossipAgent] = []
        # When each local honest device fails on its own ([faults]); inf: never.
        honest = range(self.roster.honest)
        times = faults.failure_times(scenario, self.placement.kinds[: self.roster.honest])
        # Only devices that will fail are kept, so a run without failures pays nothing.
        self._fail_at = {
            i: float(times[i]) for i in self.local if i in honest and math.isfinite(times[i])
        }
        # Churn: devices that join late (not started until then) and that leave for good.
        honest_n = self.roster.honest
        joins = faults.join_times(scenario, honest_n)
        self._join_at = {i: t for i, t in joins.items() if i in self.local}
        sessions = faults.session_times(scenario, honest_n)
        self._leave_at = {
            i: float(sessions[i]) + self._join_at.get(i, 0.0)
            for i in self.local
            if i < honest_n and math.isfinite(sessions[i])
        }
        for i, at in self._join_at.items():  # a device's life starts when it joins
            if i in self._fail_at:
                self._fail_at[i] += at
        self._departures = 0
        self._arrivals = 0
        self._rejoining: set[asyncio.Task[None]] = set()  # real broker: clients connecting
        self._slots: dict[int, int] = {}  # agent index -> its place in self.agents
        self._repair_at: dict[int, float] = {}  # failed devices that will come back, and when
        self._episodes: list[list[float]] = []  # [index, failed at, back at (inf: not yet)]
        profiles = scenario.profiles()
        self._uplinks = {k: p.uplink_bps for k, p in profiles.items()}
        # Joules and carbon by class and region, read from the meters at every boundary.
        self.ledger = Ledger(
            Grid.of(scenario.fleet.regions, scenario.grid),
            self.placement.kinds,
            [int(r) for r in self.placement.regions],
            scenario.fleet.regions,
            {k: p.mains for k, p in profiles.items()},
        )
        self._throttle = self._caps(scenario, profiles)  # after the ledger: it gets the rates
        self.wall_time = 0.0
        self.sim_time = 0.0
        self._published = 0
        self._events_published = 0
        self._missing: list[list[int]] = []  # rounds whose rows never reached the recorder
        self.loop: asyncio.AbstractEventLoop | None = None
        self.failure: str | None = None  # why the run ended before its end, if it did
        self.controller = Controller(self)
        # Failure detectors the devices run among themselves ([faults] detection).
        self.detectors = (
            Detectors(scenario, self.roster.honest, joins)
            if scenario.faults.detection != "none"
            else None
        )
        self.fanout = scenario.gossip.fanout
        self._scenario_info: dict[str, Any] | None = None
        self._kind_totals: dict[str, int] = {}
        for i in self.local:
            kind = self.placement.kinds[i]
            self._kind_totals[kind] = self._kind_totals.get(kind, 0) + 1

    def _caps(self, scenario: Scenario, profiles: dict[str, DeviceProfile]) -> dict[int, float]:
        """Regions' power caps ([grid] cap_w): each capped region's throttle, the local
        devices there slowed by it, and the ledger told how fast they may draw."""
        caps = scenario.grid.cap_w
        if not caps:
            return {}
        kinds, regions = self.placement.kinds, self.placement.regions
        devices = [
            (
                int(regions[i]),
                profiles[kinds[i]].idle_w,
                profiles[kinds[i]].active_w,
                profiles[kinds[i]].mains,
            )
            for i in range(self.roster.honest)
        ]
        try:
            throttle = throttles(caps, scenario.fleet.regions, devices, scenario.grid.pue)
        except CapError as exc:
            raise ScenarioError(str(exc)) from None
        for i in self.local:
            f = throttle.get(int(regions[i]))
            if f is None or i >= self.roster.honest:
                continue
            profile = profiles[kinds[i]]
            self.ledger.rate[i] = (profile.active_w - profile.idle_w) * f
            if f < 1.0:
                self.workload.slow_down(i, 1.0 / f, throttle=True)
        return throttle

    def shard_will(self) -> tuple[str, bytes] | None:
        """What the broker announces if this shard's process dies (sharded runs only)."""
        if self.shards == 1:
            return None
        body = {"state": "dead", "shard": self.shard}
        payload = wire.encode(wire.Envelope(EVENT, f"shard{self.shard}", 0, 0.0, 0, body))
        return self._will(
            f"shard{self.shard}", topics.shard_status(self.world.run_id, self.shard), payload
        )

    def agent_will(self, index: int) -> tuple[str, bytes]:
        """Per-agent mode: what the broker announces if this agent's client vanishes."""
        agent_id = self.world.ids[index]
        body = {"event": "lost", "agent": agent_id, "shard": self.shard}
        payload = wire.encode(wire.Envelope(EVENT, agent_id, 0, 0.0, 0, body))
        return self._will(agent_id, topics.events(self.world.run_id, "lost"), payload)

    def _rejoined(self, agent_id: str) -> None:
        """Per-agent mode: an agent's client is back after the broker lost it (and may
        have published its will): say so, so that it is not counted lost."""
        round = max(0, self.world.rounds.round)
        body = {"event": "rejoined", "agent": agent_id, "shard": self.shard, "round": round}
        self.publish_event("rejoined", body)

    def _will(self, name: str, topic: str, payload: bytes) -> tuple[str, bytes]:
        """A last will, sealed like the fleet's other messages (the broker sends it as is)."""
        if self.key is not None:  # one sealer per will: a device back from a failure
            # leaves a new will whose counter must be above its earlier one's
            sealer = self._will_sealers.get(name)
            if sealer is None:
                sealer = self._will_sealers[name] = seal.Sealer(self.key, f"{name}.will")
            payload = sealer.seal(topic, payload)
        return topic, payload

    # -- running ---------------------------------------------------------------------------
    async def run(self, start_at: float | None = None) -> dict[str, Any]:
        """Run to the end and return the summary.

        `start_at` (Unix time) aligns round 0 across shards; default: now.
        """
        with one_blas_thread():
            return await self._run(start_at)

    async def _run(self, start_at: float | None) -> dict[str, Any]:
        wall_started = time.perf_counter()
        loop = self.loop = asyncio.get_running_loop()
        world = self.world
        rounds = world.rounds
        own = "" if self.shards == 1 else f".shard{self.shard}"  # client ids are broker-wide
        recorder_link = None
        if self.shards == 1:  # a sharded run is recorded by its coordinator
            recorder_link = self.broker.connect("recorder", Endpoint(reliable=True))
            recorder_link.subscribe(topics.metrics(world.run_id))
            recorder_link.subscribe(topics.events_filter(world.run_id))
            recorder_link.set_handler(self.recorder.on_payload)
        self._observer_link = self.broker.connect("observer" + own, Endpoint(reliable=True))
        control_link = self.broker.connect("control" + own, Endpoint(reliable=True))
        control_link.subscribe(topics.control_filter(world.run_id))
        control_link.set_handler(self.controller.on_payload)
        rounds.add("observer", self._observe)  # first in every round: samples before acts
        rounds.add("world", self.workload.step)  # then the world moves, then the agents act
        placement = self.placement
        for i, core in sorted({**self.cores, **self.sybil_cores}.items()):
            x, y = float(placement.positions[i, 0]), float(placement.positions[i, 1])
            region = int(placement.regions[i])
            link = self._connect(i)
            agent = GossipAgent(
                world, i, link, core, kind=placement.kinds[i], region=region, x=x, y=y
            )
            self.agents.append(agent)
            if i in self._join_at:  # a late joiner connects and starts when it joins
                link.close()
            else:
                self._detect(agent)
                agent.start()
        self._slots = {a.index: n for n, a in enumerate(self.agents)}  # index -> slot
        await self.broker.start()
        if self.on_start is not None:
            self.on_start(self)
        if start_at is None:
            rounds.begin()
        else:
            rounds.begin(loop.time() + max(0.0, start_at - time.time()))
        watchdog = None if self.broker_url is None else loop.create_task(self._watch_broker())
        try:
            await rounds.finished()
        finally:
            if watchdog is not None:
                watchdog.cancel()
            for task in self._rejoining:
                task.cancel()
            rounds.stop()
            self.sim_time = loop.time() - rounds.start
            self._publish_events(rounds.round)
            self._publish_status(final=True)
            if self.failure is None:  # with the broker gone, nothing will drain
                await self.broker.drain()
            for agent in self.agents:
                agent.stop()
            await asyncio.gather(
                *(a.task for a in self.agents if a.task is not None), return_exceptions=True
            )
            if recorder_link is not None and self.failure is None:
                await self._flush_recorder(loop)
            if recorder_link is not None:
                recorder_link.close()
                self._missing = observe.missing_rounds(self.recorder.rows)
                for event in observe.gap_events(self._missing):
                    self.recorder.note(event)
            control_link.close()
            self._observer_link.close()
            await self.broker.stop()
        self.wall_time = time.perf_counter() - wall_started
        return self.summary()

    def _endpoint(self, i: int) -> Endpoint:
        """Where agent `i` sits in the modelled network (its own uplink with device links)."""
        placement = self.placement
        kind = placement.kinds[i]
        uplink = 0.0
        if self.scenario.network.device_links and kind in self._uplinks:
            uplink = self._uplinks[kind]
        x, y = float(placement.positions[i, 0]), float(placement.positions[i, 1])
        return Endpoint(x, y, int(placement.regions[i]), uplink_bps=uplink)

    def _respawn(self, index: int) -> None:
        """A repaired device comes back fresh: a new core from its workload (its state is
        lost, its data and place kept), a new connection, a new agent in the old one's slot."""
        core = self.workload.respawn(index)
        self.cores[index] = core
        f = self._throttle.get(int(self.placement.regions[index]), 1.0)
        if f < 1.0:  # a fresh core computes at its class's speed: throttle it again
            self.workload.slow_down(index, 1.0 / f, throttle=True)
        world, placement = self.world, self.placement
        link = self._connect(index)
        agent = GossipAgent(
            world,
            index,
            link,
            core,
            kind=placement.kinds[index],
            region=int(placement.regions[index]),
            x=float(placement.positions[index, 0]),
            y=float(placement.positions[index, 1]),
        )
        self._detect(agent)
        self.agents[self._slots[index]] = agent
        agent.start()
        if world.client_prefix is not None:  # a new MQTT client of its own: connect it
            task = asyncio.get_running_loop().create_task(self._reconnect(agent))
            self._rejoining.add(task)
            task.add_done_callback(self._rejoining.discard)

    def _connect(self, index: int) -> Any:
        """Agent `index`'s link; in per-agent mode on a real broker, with its last will."""
        world = self.world
        endpoint = self._endpoint(index)
        if world.client_prefix is None:
            return self.broker.connect(world.ids[index], endpoint)
        will = self.agent_will(index)
        # the broker publishes it if the agent vanishes; the recorder sees it opened
        self.recorder.allow(seal.unwrap(will[1]))
        link = self.broker.connect(world.ids[index], endpoint, will=will)
        link.on_reconnect = lambda agent_id=world.ids[index]: self._rejoined(agent_id)
        return link

    async def _reconnect(self, agent: GossipAgent) -> None:
        """Open a repaired or new device's MQTT client (what it sends meanwhile waits in
        its queue) and say it is back. While the broker is away it tries again, as the
        other clients do; refused for twice broker.grace, the device stays down, crashed
        with the broker's answer."""
        loop = asyncio.get_running_loop()
        grace = self.scenario.broker.grace
        deadline = loop.time() + 2 * grace
        link: Any = agent.link  # an MqttLink: it connects when opened
        while True:
            try:
                await link.open(timeout=grace)
                break
            except Exception as exc:  # the broker refused or is gone
                if loop.time() >= deadline or link.closed:
                    agent.crash(f"could not reconnect: {exc}")
                    return
                await asyncio.sleep(min(1.0, grace / 4))
        self._rejoined(agent.id)

    def _detect(self, agent: GossipAgent) -> None:
        """Give an honest agent its failure detector, if the run has them."""
        if self.detectors is not None and agent.index < self.roster.honest:
            swim, rng = self.detectors.core(agent.index, max(0, self.world.rounds.round))
            agent.detect(swim, rng, self.world.rounds.period * TIMEOUT_SHARE)

    def interrupt(self, why: str) -> None:
        """End the run early (a signal, an operator): its summary says why and where."""
        if self.failure is None:
            rounds = self.world.rounds
            self.failure = f"{why} in round {max(0, rounds.round)} of {self.scenario.max_rounds}"
        self.world.rounds.stop()

    async def _watch_broker(self) -> None:
        """End the run, incomplete, once the broker has been unreachable beyond the grace."""
        grace = self.scenario.broker.grace
        loop = asyncio.get_running_loop()
        rounds = self.world.rounds
        while not rounds.stopped:
            await asyncio.sleep(min(0.25, grace / 4))
            if self.broker.unreachable_for(loop.time()) > grace:
                self.failure = (
                    f"lost the broker at {redact(self.broker_url or '')} for more than "
                    f"{grace:g} s (broker.grace), in round {rounds.round} of "
                    f"{self.scenario.max_rounds}"
                )
                rounds.stop()
                return

    async def _flush_recorder(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait (bounded) until the recorder has every row the observer published."""
        deadline = loop.time() + 5.0
        recorder = self.recorder
        while recorder.expected:
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.001)

    def now(self) -> float:
        """Seconds since round 0 (simulated on the embedded broker)."""
        loop = self.loop or asyncio.get_running_loop()
        return loop.time() - self.world.rounds.start

    # -- what a control turns (swarm.fleet.control.ControlTarget) ------------------------------
    @property
    def counters(self) -> MessageCounters:
        return self.world.counters

    @property
    def round(self) -> int:
        return self.world.rounds.round

    @property
    def network(self) -> NetworkModel | None:
        broker = self.broker  # only the embedded broker models a network
        return broker.network if isinstance(broker, EmbeddedBroker) else None

    @property
    def min_degree(self) -> int:
        return self.topology.min_degree

    def set_paused(self, paused: bool) -> None:
        """Hold the rounds; on the embedded broker virtual time freezes too."""
        self.world.rounds.paused = paused
        if isinstance(self.loop, VirtualTimeLoop):
            self.loop.paused = paused

    def set_speed(self, speed: float) -> bool:
        if not isinstance(self.loop, VirtualTimeLoop):
            return False
        self.loop.speed = speed
        return True

    def honest_agents(self) -> list[Agent]:
        return [a for a in self.agents if a.index < self.roster.honest]

    def set_fanout(self, fanout: int) -> int:
        changed = self.workload.set_fanout(fanout)
        if changed:
            self.fanout = fanout
        return changed

    def set_aggregator(self, rule: str) -> int:
        return self.workload.set_aggregator(rule)

    def slow_down(self, index: int, factor: float) -> bool:
        return self.workload.slow_down(index, factor)

    def publish_event(self, kind: str, body: dict[str, Any]) -> None:
        """One event message on swarm/<run>/events/<kind>, recorded like the crashes."""
        time = max(0, self.world.rounds.round) * self.world.rounds.period
        envelope = wire.Envelope(EVENT, "observer", self._published, time, 0, body)
        self._publish_recorded(topics.events(self.world.run_id, kind), wire.encode(envelope))

    def status(self) -> dict[str, Any]:
        """The fleet's live state: per-class counts and the knobs a control can turn."""
        classes: dict[str, dict[str, Any]] = {
            kind: {"total": total, "alive": 0, "crashed": 0}
            for kind, total in self._kind_totals.items()
        }
        workload = self.workload
        for agent in self.agents:
            entry = classes[agent.kind]
            if agent.alive:
                entry["alive"] += 1
                if workload.asleep(agent.index):  # duty-cycled devices (the mesh)
                    entry["asleep"] = entry.get("asleep", 0) + 1
            elif agent.state is AgentState.CRASHED:
                entry["crashed"] += 1
        self._energy_status(classes)
        power = self._power_status()
        if faults.active(self.scenario):  # failures and repairs so far, per class
            for entry in classes.values():
                entry |= {"failures": 0, "recoveries": 0}
            for index, _, back in self._episodes:
                entry = classes[self.placement.kinds[int(index)]]
                entry["failures"] += 1
                entry["recoveries"] += back != math.inf
        roster = self.roster
        sybil = classes.pop("sybil", None)
        loop = self.loop
        virtual = isinstance(loop, VirtualTimeLoop)
        speed = loop.speed if isinstance(loop, VirtualTimeLoop) else None
        return {
            "round": self.world.rounds.round,
            "time": max(0, self.world.rounds.round) * self.world.rounds.period,
            "agents": self.roster.honest,
            "shard": self.shard,
            "classes": classes,
            "sybils": {
                "reserved": roster.count,
                "joined": roster.count - roster.dormant() if roster.count else 0,
                "alive": sybil["alive"] if sybil else 0,
                "behaviour": self.scenario.sybil.behaviour if roster.count else None,
            },
            "paused": self.world.rounds.paused,
            "speed": speed,
            "virtual": virtual,
            "fanout": self.fanout,
            "aggregator": self.workload.aggregator,
            "partitioned": self.network is not None and self.network.partitioned,
            "workload": self.scenario.fleet.workload,
            "max_rounds": self.scenario.max_rounds,
            "controls": {
                "applied": self.controller.applied,
                "refused": self.controller.refused,
                "limited": self.controller.limited,
            },
            "info": self._info(),
            **power,
            **self._map(),
        } | self.workload.live_status()

    def _map(self, *, now: bool = False) -> dict[str, Any]:
        """The dashboard's map, at most every `fleetmap.EVERY_S` of wall time."""
        clock = time.monotonic()
        if not now and clock - self._map_at < fleetmap.EVERY_S:
            return {}
        self._map_at = clock
        return {"map": fleetmap.snapshot(self.agents, self.placement, self.workload)}

    def _energy_status(self, classes: dict[str, dict[str, Any]]) -> None:
        """Per class: battery energy left (share of capacity) and devices run flat.

        Only metered cores count (learning and mesh devices); mains-powered classes and
        workloads without meters report nothing rather than a made-up figure.
        """
        left: dict[str, list[float]] = {}
        for index, meter in self.workload.meters():
            if meter.profile.mains:
                continue
            kind = self.placement.kinds[index]
            sums = left.setdefault(kind, [0.0, 0.0, 0, 0])
            sums[0] += max(0.0, meter.remaining_j)
            sums[1] += meter.profile.battery_j
            sums[2] += meter.depleted
            sums[3] += meter.resting and not meter.depleted
        for kind, (remaining, capacity, flat, resting) in left.items():
            if kind in classes and capacity > 0:
                classes[kind]["energy_left"] = remaining / capacity
                classes[kind]["depleted"] = int(flat)
                if self.scenario.battery.reserve > 0:
                    classes[kind]["resting"] = int(resting)

    def _charge(self, round: int) -> None:
        """The last round's charging ([battery]): battery devices on their chargers in the
        local charging hours, harvesters all the time; and the reserve they rest below."""
        battery, period = self.scenario.battery, self.world.rounds.period
        start, end = battery.charge_from, battery.charge_until
        grid, regions, kinds = self.ledger.grid, self.placement.regions, self.placement.kinds
        t = max(0, round - 1) * period  # the round the charge came in

        def charging(region: int) -> bool:
            if start == end:
                return False
            hour = grid.local_hour(region, t)
            return start <= hour < end if start < end else hour >= start or hour < end

        for index, meter in self.workload.meters():
            if meter.profile.mains:
                continue
            meter.reserve = battery.reserve
            watts = battery.harvest_w.get(kinds[index], 0.0)
            if charging(int(regions[index])):
                watts += battery.charge_w
            if watts > 0 and round > 0:
                meter.charge(watts * period)

    def _power_status(self) -> dict[str, Any]:
        """Per region: what its devices drew over the last round, its cap, its carbon rate
        and its grid's intensity now (metered fleets only: a Power panel's figures)."""
        ledger = self.ledger
        if not ledger.metered:
            return {}
        names = self.scenario.fleet.regions
        now = max(0, self.world.rounds.round) * self.world.rounds.period
        caps = self.scenario.grid.cap_w
        return {
            "power": {
                names[r]: {
                    "power_w": ledger.power_w.get(r, 0.0),
                    "cap_w": caps.get(names[r]),
                    "co2_g_per_h": ledger.co2_rate.get(r, 0.0) * 3600.0,
                    "intensity": ledger.grid.intensity(r, now),
                }
                for r in sorted(set(self.ledger.regions[: self.roster.honest]))
            }
        }

    def _info(self) -> dict[str, Any]:
        """The scenario as an attached dashboard needs it (regions, classes, rules); once."""
        if self._scenario_info is None:
            self._scenario_info = scenario_info(self.scenario)
        return self._scenario_info

    def _publish_status(self, *, final: bool = False) -> None:
        if not self.live:
            return
        body = self.status() | {"finished": final}
        if final:  # the last picture is of the end, however recent the one before
            body |= self._map(now=True)
        envelope = wire.Envelope(METRICS, "observer", 0, body["time"], 0, body)
        # The observer's own status is not fleet traffic: keep it out of the counters,
        # whatever the link counted for it (on a real broker, the sealed size).
        counters = self.world.counters
        sent, sent_bytes = counters.sent, counters.bytes
        self._observer_link.publish(topics.status(self.world.run_id), wire.encode(envelope))
        counters.sent, counters.bytes = sent, sent_bytes

    def _publish_events(self, round: int) -> None:
        """Crashes since the last call, as event messages on swarm/<run>/events/crash."""
        crashes = self.world.crashes
        topic = topics.events(self.world.run_id, "crash")
        for agent_id, reason in crashes[self._events_published :]:
            body = {"event": "crash", "round": round, "agent": agent_id, "reason": reason}
            time = max(0, round) * self.world.rounds.period
            envelope = wire.Envelope(EVENT, "observer", self._published, time, 0, body)
            self._publish_recorded(topic, wire.encode(envelope))
        self._events_published = len(crashes)

    def _publish_recorded(self, topic: str, payload: bytes) -> None:
        self.recorder.expect(payload)
        self._observer_link.publish(topic, payload)
        self._published += 1

    def _observe(self, round: int) -> None:
        """Publish one metrics row; end the run when done or out of rounds."""
        self.ledger.read(round * self.world.rounds.period, self.workload.meters())
        if self.scenario.battery.active:
            self._charge(round)
        self._fail(round)
        self._play_script(round)
        if self.detectors is not None:
            honest = self.roster.honest
            down = (
                a.index for a in self.agents if a.index < honest and a.state is AgentState.CRASHED
            )
            self.detectors.observe(round, down)
        self._publish_events(round)
        if self.shards > 1:
            # A shard reports its slice; the coordinator merges and decides when to stop.
            part = self._partial_sample(round)
            envelope = wire.Envelope(METRICS, f"shard{self.shard}", round, part["time"], 0, part)
            topic = topics.shard_metrics(self.world.run_id, self.shard)
            self._observer_link.publish(topic, wire.encode(envelope))
            if round >= self.scenario.max_rounds:
                self.world.rounds.stop()
            return
        self._publish_status()
        row, done = self._sample(round)
        envelope = wire.Envelope(METRICS, "observer", self._published, row["time"], 0, row)
        self._publish_recorded(topics.metrics(self.world.run_id), wire.encode(envelope))
        if self.on_round is not None:
            self.on_round(row)
        if round >= self.scenario.max_rounds or (done and self.scenario.run.stop_when_done):
            self.world.rounds.stop()

    def _fail(self, round: int) -> None:
        """Crash the devices whose failure time has come and bring back the repaired ones,
        before the round's row."""
        if not (self._repair_at or self._fail_at or self._join_at or self._leave_at):
            return
        scenario = self.scenario
        now = round * self.world.rounds.period
        for index, at in sorted(self._join_at.items()):
            if at <= now:  # a new device: its agent was never started
                del self._join_at[index]
                self.agents[self._slots[index]].stop()
                self._respawn(index)
                self._arrivals += 1
        for index, at in sorted(self._repair_at.items()):
            if at <= now:
                del self._repair_at[index]
                self._respawn(index)
                episode = next(e for e in reversed(self._episodes) if e[0] == index)
                episode[2] = now  # back at this boundary: down until now
                kind = self.placement.kinds[index]
                life = faults.lifetime(scenario, kind, index, len(self._episodes))
                if math.isfinite(life):
                    self._fail_at[index] = now + life
        for index, at in sorted(self._fail_at.items()):
            if at <= now:
                del self._fail_at[index]
                agent = self.agents[self._slots[index]]
                if agent.alive:
                    agent.crash(faults.REASON)
                    # Down from this boundary: the device worked until its crash took effect.
                    self._episodes.append([index, now, math.inf])
                    if scenario.faults.repair_s > 0:
                        draw = faults.repair_time(scenario, index, len(self._episodes))
                        self._repair_at[index] = max(at + draw, now)
        for index, at in sorted(self._leave_at.items()):
            if at <= now:  # for good: no failure or repair of it any more
                del self._leave_at[index]
                self._fail_at.pop(index, None)
                self._repair_at.pop(index, None)
                agent = self.agents[self._slots[index]]
                if agent.alive:
                    agent.crash(faults.LEFT)
                self._departures += 1

    def _play_script(self, round: int) -> None:
        """Apply the scripted faults whose time has come, as controls from "script"."""
        now = round * self.world.rounds.period
        while self._script and self._script[0].at <= now:
            entry = self._script.popleft()
            self.controller.run(entry.command.name, entry.command.args, "script")
            self._script_played += 1

    def _sample(self, round: int) -> tuple[Row, bool]:
        """One metrics row, taken before the agents act in `round`; and whether we are done."""
        return observe.merge_rows(self.scenario, [self._partial_sample(round)])

    def _partial_sample(self, round: int) -> Part:
        fleet = observe.fleet_part(
            round=round,
            period=self.world.rounds.period,
            n=len(self.cores),
            alive=sum(a.alive for a in self.agents if a.index < self.roster.honest),
            counters=self.world.counters,
        )
        part = fleet | self.workload.sample(round, self.broker.in_flight)
        if self._throttle:  # capped regions: their draw over the last round, in every row
            names = self.scenario.fleet.regions
            part["power_w"] = {names[r]: w for r, w in sorted(self.ledger.power_w.items())}
        return part

    # -- results ---------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        s = self.scenario
        n = s.fleet.count
        rows = self.recorder.rows
        counters = self.world.counters.as_dict()
        counters["dropped_malformed"] += self.recorder.malformed
        counters["dropped_spoofed"] += self.recorder.forged
        classes: dict[str, int] = {}
        for kind in self.placement.kinds:
            classes[kind] = classes.get(kind, 0) + 1
        extra: dict[str, Any] = {}
        if self.broker_url is not None:
            extra["reconnects"] = self.broker.reconnects
            # Each publish has one subscriber (an inbox): what neither arrived nor was
            # counted dropped was lost in the broker (e.g. across a restart) or reached
            # its receiver after it stopped. Never clamped: a negative figure would show
            # a count gone wrong rather than hide it.
            m = self.world.counters
            extra["lost"] = m.sent - m.delivered - m.dropped
            extra["received_foreign_by_topic"] = dict(sorted(self.broker.foreign_by_topic.items()))
            extra["missing_rounds"] = self._missing
            extra["agents_lost"] = agents_lost(self.recorder.events)
            rounds = self.world.rounds
            extra["backpressure"] = {
                "held_rounds": rounds.held_rounds,
                "held_seconds": rounds.held_seconds,
            }
        if self.failure is not None:
            extra["incomplete"] = self.failure
        return {
            **extra,
            "complete": self.failure is None,
            "scenario": s.to_dict(),
            "seed": s.run.seed,
            "version": __version__,
            "agents": n,
            "broker": redact(self.broker_url) if self.broker_url else "embedded",
            "classes": classes,
            "topology": self.topology.describe(),
            "rounds": rows[-1]["round"] if rows else 0,
            "sim_time": self.sim_time,
            "wall_time": self.wall_time,
            "messages": counters,
            "crashes": [{"agent": a, "reason": r} for a, r in self.world.crashes],
            "controls": self._controls(),
            "results": self._results(),
        }

    def _controls(self) -> dict[str, int]:
        """Controls applied and refused (messages and scripted faults alike)."""
        c = self.controller
        out = {"applied": c.applied, "refused": c.refused, "limited": c.limited}
        if self.scenario.faults.script:  # entries whose time the run never reached
            out |= {"scripted": self._script_played, "unplayed": len(self._script)}
        return out

    def partial_results(self) -> Partial:
        part = self.workload.partial_results()
        end = max(0, self.world.rounds.round) * self.world.rounds.period
        if faults.active(self.scenario):
            # After the run every agent is stopped: "alive" means "not crashed", and there.
            alive = sum(
                a.state is not AgentState.CRASHED and a.index not in self._join_at
                for a in self.honest_agents()
            )
            part["reliability"] = faults.partial(
                self._episodes,
                end,
                alive,
                departures=self._departures,
                arrivals=self._arrivals,
            )
        if self.detectors is not None:
            part["detection"] = self.detectors.partial()
        self.ledger.read(end, self.workload.meters())
        self.ledger.flush(end)
        ledger = self.ledger.partial()
        if self._throttle:
            names = self.scenario.fleet.regions
            ledger["throttle"] = {names[r]: f for r, f in sorted(self._throttle.items())}
        if ledger["cells"]:  # a workload whose devices are metered
            part["ledger"] = ledger
        if self.roster.count:
            attack = self.workload.attack_partial()
            part["attack"] = attack_partial(self.roster, self.sybil_cores.values(), attack)
        return part

    def _results(self) -> Results:
        return observe.results(self.scenario, [self.partial_results()], self.recorder.rows)
