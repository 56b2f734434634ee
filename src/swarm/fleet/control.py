"""Live controls: the commands a running fleet accepts on `swarm/<run>/control/<command>`.

A dashboard, a script or `mosquitto_pub` turns the same knobs by publishing one control
envelope (`wire` kind "control", body a dict of arguments). `parse` checks a command and
its arguments without touching a fleet (sans-I/O, in `swarm.commands`, which the scenario's
`[[faults.script]]` entries go through too); `Controller` applies a checked command
to a running fleet, seen only through the small `ControlTarget` protocol, and answers
every message, applied or refused, with a `control` event on `swarm/<run>/events/control`,
so nothing sent is lost silently.

The shard coordinator's own messages (scenario, start, stop) share the topic space and
are left to it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from swarm import topics, wire
from swarm.broker.network import NetworkModel
from swarm.commands import COMMANDS, Command, ControlError, parse
from swarm.fleet.agent import Agent
from swarm.metrics import MessageCounters
from swarm.protocols.consensus.aggregate import AGGREGATORS
from swarm.protocols.sybil import Roster
from swarm.scenario import Scenario
from swarm.seeding import Stream, generator

__all__ = [
    "COMMANDS",
    "Command",
    "ControlError",
    "ControlTarget",
    "Controller",
    "encode",
    "parse",
]

CONTROL = wire.register_kind("control")
EVENT = wire.register_kind("event")
SHARD_PROTOCOL = frozenset({"scenario", "start", "stop"})  # swarm.run.shards owns these
# Control messages taken per wall-clock second; beyond, they are counted in `limited` and
# dropped (one event says so), so a flood can neither fill events.jsonl nor steer the run.
CONTROLS_PER_SECOND = 20


def encode(
    run_id: str, command: str, args: dict[str, Any], *, src: str, seq: int
) -> tuple[str, bytes]:
    """The topic and payload that ask run `run_id` to apply `command`."""
    payload = wire.encode(wire.Envelope(CONTROL, src, seq, 0.0, 0, dict(args)))
    return topics.control(run_id, command), payload


class ControlTarget(Protocol):
    """What a control can see and turn of a running fleet."""

    scenario: Scenario
    roster: Roster

    @property
    def counters(self) -> MessageCounters: ...
    @property
    def round(self) -> int: ...
    @property
    def network(self) -> NetworkModel | None:
        """The modelled network (embedded broker); None on a real broker."""
        ...

    @property
    def min_degree(self) -> int:
        """The fewest neighbours any agent has: the largest fanout that fits."""
        ...

    def now(self) -> float: ...
    def set_paused(self, paused: bool) -> None: ...
    def set_speed(self, speed: float) -> bool:
        """False when time is the wall clock's."""
        ...

    def honest_agents(self) -> Sequence[Agent]: ...
    def set_fanout(self, fanout: int) -> int:
        """How many agents took it (0: none gossips with a fanout)."""
        ...

    def set_aggregator(self, rule: str) -> int:
        """How many servers took it (0: the workload has none)."""
        ...

    def slow_down(self, index: int, factor: float) -> bool:
        """Agent `index` computes `factor` times slower; False when its workload does not
        model compute time."""
        ...

    def publish_event(self, kind: str, body: dict[str, Any]) -> None: ...


class Controller:
    """Applies control messages to one running fleet and reports each on the events topic."""

    def __init__(self, fleet: ControlTarget) -> None:
        self.fleet = fleet
        self.applied = 0
        self.refused = 0
        self.limited = 0  # dropped for coming faster than CONTROLS_PER_SECOND
        self._crash_draws = 0
        self._second = -1
        self._in_second = 0

    def on_payload(self, topic: str, payload: bytes) -> None:
        """A message on `swarm/<run>/control/#`: apply it, or refuse it with the reason."""
        name = topic.rsplit("/", 1)[-1]
        if name in SHARD_PROTOCOL:
            return
        if self._over_limit(name):
            return
        try:
            envelope = wire.decode(payload)
        except wire.MalformedMessage as exc:
            self.fleet.counters.dropped_malformed += 1
            self._report(name, False, f"undecodable: {exc}")
            return
        if envelope.kind != CONTROL:
            self.fleet.counters.dropped_malformed += 1
            self._report(name, False, f"kind {envelope.kind!r} on a control topic")
            return
        self.run(name, envelope.body, str(envelope.src))

    def run(self, name: str, body: Any, src: str) -> bool:
        """Check and apply one command from `src`, count it and report it; True if applied.

        Messages and the scenario's scripted faults both come through here.
        """
        try:
            detail = self.apply(parse(name, body))
        except ControlError as exc:
            self.refused += 1
            self._report(name, False, str(exc), src)
            return False
        self.applied += 1
        self._report(name, True, detail, src)
        return True

    def _over_limit(self, name: str) -> bool:
        # Wall-clock seconds: rounds and virtual time stand still while paused, and a
        # paused fleet must still hear "resume".
        second = int(time.monotonic())
        if second != self._second:
            self._second, self._in_second = second, 0
        self._in_second += 1
        if self._in_second <= CONTROLS_PER_SECOND:
            return False
        self.limited += 1
        if self._in_second == CONTROLS_PER_SECOND + 1:
            detail = f"more than {CONTROLS_PER_SECOND} control messages in a second: dropped"
            self._report(name, False, detail)
        return True

    def apply(self, command: Command) -> str:
        """Apply a checked command; returns what changed, raises ControlError if it cannot."""
        handler = getattr(self, "_" + command.name)
        return handler(**command.args)

    # -- the commands ------------------------------------------------------------------
    def _pause(self) -> str:
        self.fleet.set_paused(True)
        return "paused"

    def _resume(self) -> str:
        self.fleet.set_paused(False)
        return "resumed"

    def _speed(self, speed: float) -> str:
        if not self.fleet.set_speed(speed):
            raise ControlError("speed: a run on a real broker follows the wall clock")
        return f"{speed:g} simulated s per s"

    def _inject(self, count: int) -> str:
        fleet = self.fleet
        roster = fleet.roster
        if not roster.count:
            raise ControlError(
                "inject: this scenario reserves no Sybil identities; "
                "set sybil.count and sybil.dormant = true"
            )
        woken = roster.admit(count, fleet.now())
        if not woken:
            raise ControlError(f"inject: all {roster.count} Sybil identities are in already")
        return f"{len(woken)} Sybils joined ({roster.dormant()} dormant left)"

    def _pick(
        self, what: str, fraction: float, kind: str | None, region: str | None
    ) -> tuple[list[Agent], str]:
        """A seeded draw of that share of the live honest agents, and a line saying so."""
        fleet = self.fleet
        honest = fleet.honest_agents()
        if kind is not None and kind not in {a.kind for a in honest}:
            raise ControlError(f"{what}: no agent of class {kind!r} in this fleet")
        regions = fleet.scenario.fleet.regions
        if region is not None and region not in regions:
            raise ControlError(f"{what}: no region {region!r}; regions: {', '.join(regions)}")
        target = None if region is None else regions.index(region)
        candidates = [
            a
            for a in honest
            if a.alive
            and (kind is None or a.kind == kind)
            and (target is None or a.region == target)
        ]
        if not candidates:
            raise ControlError(f"{what}: no live agent matches")
        # Which agents are hit is a seeded draw, one stream per command.
        rng = generator(fleet.scenario.run.seed, Stream.CONTROL, self._crash_draws)
        self._crash_draws += 1
        k = max(1, round(fraction * len(candidates)))
        chosen = [candidates[int(i)] for i in np.sort(rng.choice(len(candidates), k, False))]
        where = " ".join(p for p in (kind, region) if p) or "the fleet"
        return chosen, f"{k} of {len(candidates)} live agents in {where}"

    def _crash(self, fraction: float, kind: str | None, region: str | None) -> str:
        chosen, picked = self._pick("crash", fraction, kind, region)
        for agent in chosen:
            agent.crash("control: crash")
        return "crashed " + picked

    def _slow(self, fraction: float, factor: float, kind: str | None, region: str | None) -> str:
        chosen, picked = self._pick("slow", fraction, kind, region)
        took = [self.fleet.slow_down(agent.index, factor) for agent in chosen]
        if not any(took):
            raise ControlError("slow: this workload does not model compute time (learn does)")
        return f"{factor:g}x slower: " + picked

    def _partition(self, groups: list[list[str]]) -> str:
        network = self._network("partition")
        regions = self.fleet.scenario.fleet.regions
        index = {name: i for i, name in enumerate(regions)}
        for group in groups:
            for name in group:
                if name not in index:
                    raise ControlError(
                        f"partition: no region {name!r}; regions: {', '.join(regions)}"
                    )
        network.partition([[index[r] for r in group] for group in groups])
        return " | ".join("+".join(g) for g in groups) + " | rest"

    def _heal(self) -> str:
        self._network("heal").heal()
        return "network healed"

    def _latency(self, latency: float) -> str:
        network = self._network("latency")
        before, network.latency = network.latency, latency
        return f"latency {before:g} s -> {latency:g} s"

    def _network(self, what: str) -> NetworkModel:
        network = self.fleet.network
        if network is None:
            raise ControlError(
                f"{what}: the network is modelled by the embedded broker; "
                "on a real broker change the links there"
            )
        return network

    def _fanout(self, fanout: int) -> str:
        limit = self.fleet.min_degree
        if fanout > limit:
            raise ControlError(f"fanout = {fanout}: some agents have only {limit} neighbours")
        changed = self.fleet.set_fanout(fanout)
        if not changed:
            raise ControlError("fanout: no agent in this workload gossips with a fanout")
        return f"fanout {fanout} on {changed} agents"

    def _aggregator(self, rule: str) -> str:
        if rule not in AGGREGATORS:
            raise ControlError(
                f"aggregator: unknown rule {rule!r}; known: {', '.join(AGGREGATORS)}"
            )
        if not self.fleet.set_aggregator(rule):
            raise ControlError("aggregator: this run has no aggregation server (a fedavg run has)")
        return f"server aggregates with {rule}"

    # -- reporting -----------------------------------------------------------------------
    def _report(self, command: str, ok: bool, detail: str, src: str | None = None) -> None:
        """The answer names who asked (`src`), so a dashboard can pick out its own."""
        fleet = self.fleet
        body = {
            "event": "control",
            "command": command,
            "ok": ok,
            "detail": detail,
            "round": fleet.round,
        }
        if src is not None:
            body["src"] = src
        fleet.publish_event("control", body)
