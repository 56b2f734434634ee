"""Live controls: the commands a running fleet accepts on `swarm/<run>/control/<command>`.

A dashboard, a script or `mosquitto_pub` turns the same knobs by publishing one control
envelope (`wire` kind "control", body a dict of arguments). `parse` checks a command and
its arguments without touching a fleet (sans-I/O); `Controller` applies a checked command
to a running fleet, seen only through the small `ControlTarget` protocol, and answers
every message, applied or refused, with a `control` event on `swarm/<run>/events/control`,
so nothing sent is lost silently.

The shard coordinator's own messages (scenario, start, stop) share the topic space and
are left to it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from swarm import topics, wire
from swarm.broker.network import NetworkModel
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
MAX_SPEED = 1e6  # simulated seconds per wall second
# Control messages taken per wall-clock second; beyond, they are counted in `limited` and
# dropped (one event says so), so a flood can neither fill events.jsonl nor steer the run.
CONTROLS_PER_SECOND = 20

COMMANDS: dict[str, str] = {
    "pause": "hold the rounds (and freeze virtual time) until resume",
    "resume": "let the rounds run again",
    "speed": "speed=S: simulated seconds per wall second (embedded broker only)",
    "inject": "count=K: admit K dormant Sybils now (scenario key sybil.dormant)",
    "crash": "fraction=F [kind=K] [region=R]: crash that share of the live honest agents",
    "partition": "groups=[[R, ...], ...]: cut the network between groups of regions",
    "heal": "undo every partition",
    "fanout": "fanout=K: peers each gossiping agent contacts per round",
    "aggregator": "rule=NAME: the FedAvg server's aggregation rule",
}


class ControlError(ValueError):
    """A control command or argument that cannot be applied; the message says why."""


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: dict[str, Any]


def _number(args: dict[str, Any], key: str, lo: float, hi: float) -> float:
    value = args.get(key)
    if (
        not (type(value) is int or type(value) is float)
        or not math.isfinite(value)
        or not lo < value <= hi
    ):
        raise ControlError(f"{key} = {value!r}: need a number in ({lo:g}, {hi:g}]")
    return float(value)


def _count(args: dict[str, Any], key: str) -> int:
    value = args.get(key)
    if type(value) is not int or value < 1:
        raise ControlError(f"{key} = {value!r}: need a whole number >= 1")
    return value


def _name(args: dict[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = args.get(key)
    if value is None and optional:
        return None
    if type(value) is not str or not value:
        raise ControlError(f"{key} = {value!r}: need a name")
    return value


def parse(name: str, body: Any) -> Command:
    """A checked command from its topic's last segment and its envelope body."""
    if name not in COMMANDS:
        raise ControlError(f"unknown control {name!r}; known: {', '.join(COMMANDS)}")
    if body is None:
        body = {}
    if type(body) is not dict or any(type(k) is not str for k in body):
        raise ControlError(f"{name}: the body must be a map of arguments, got {body!r:.60}")
    args: dict[str, Any] = {}
    if name == "speed":
        args["speed"] = _number(body, "speed", 0.0, MAX_SPEED)
    elif name == "inject":
        args["count"] = _count(body, "count")
    elif name == "fanout":
        args["fanout"] = _count(body, "fanout")
    elif name == "aggregator":
        args["rule"] = _name(body, "rule")
    elif name == "crash":
        args["fraction"] = _number(body, "fraction", 0.0, 1.0)
        args["kind"] = _name(body, "kind", optional=True)
        args["region"] = _name(body, "region", optional=True)
    elif name == "partition":
        groups = body.get("groups")
        if (
            type(groups) is not list
            or not groups
            or any(
                type(g) is not list or not g or any(type(r) is not str for r in g) for g in groups
            )
        ):
            raise ControlError(f"groups = {groups!r:.60}: need a list of lists of region names")
        args["groups"] = groups
    unknown = sorted(set(body) - set(args))
    if unknown:
        raise ControlError(f"{name}: unknown argument {unknown[0]!r}")
    return Command(name, args)


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
        try:
            detail = self.apply(parse(name, envelope.body))
        except ControlError as exc:
            self.refused += 1
            self._report(name, False, str(exc), str(envelope.src))
            return
        self.applied += 1
        self._report(name, True, detail, str(envelope.src))

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

    def _crash(self, fraction: float, kind: str | None, region: str | None) -> str:
        fleet = self.fleet
        honest = fleet.honest_agents()
        if kind is not None and kind not in {a.kind for a in honest}:
            raise ControlError(f"crash: no agent of class {kind!r} in this fleet")
        regions = fleet.scenario.fleet.regions
        if region is not None and region not in regions:
            raise ControlError(f"crash: no region {region!r}; regions: {', '.join(regions)}")
        target = None if region is None else regions.index(region)
        candidates = [
            a
            for a in honest
            if a.alive
            and (kind is None or a.kind == kind)
            and (target is None or a.region == target)
        ]
        if not candidates:
            raise ControlError("crash: no live agent matches")
        # Which agents die is a seeded draw, one stream per crash command.
        rng = generator(fleet.scenario.run.seed, Stream.CONTROL, self._crash_draws)
        self._crash_draws += 1
        k = max(1, round(fraction * len(candidates)))
        chosen = rng.choice(len(candidates), size=k, replace=False)
        for i in np.sort(chosen):
            candidates[int(i)].crash("control: crash")
        where = " ".join(p for p in (kind, region) if p) or "the fleet"
        return f"crashed {k} of {len(candidates)} live agents in {where}"

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

    def _network(self, what: str) -> NetworkModel:
        network = self.fleet.network
        if network is None:
            raise ControlError(
                f"{what}: partitions are modelled by the embedded broker's network; "
                "on a real broker cut the links there"
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
