"""The control commands a running fleet accepts, and their arguments, checked without a fleet.

Kept below the fleet and the scenario loader so that both check commands by one rule set:
a dashboard's key, a `mosquitto_pub` and a scenario's `[[faults.script]]` entry are the
same command. Applying one is `swarm.fleet.control`'s job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["COMMANDS", "MAX_LATENCY", "MAX_SPEED", "Command", "ControlError", "parse"]

MAX_SPEED = 1e6  # simulated seconds per wall second
MAX_LATENCY = 3600.0  # seconds: a latency spike beyond an hour is a mistake
MAX_SLOWDOWN = 1e6

COMMANDS: dict[str, str] = {
    "pause": "hold the rounds (and freeze virtual time) until resume",
    "resume": "let the rounds run again",
    "speed": "speed=S: simulated seconds per wall second (embedded broker only)",
    "inject": "count=K: admit K dormant Sybils now (scenario key sybil.dormant)",
    "crash": "fraction=F [kind=K] [region=R]: crash that share of the live honest agents",
    "slow": "fraction=F factor=X [kind=K] [region=R]: that share computes X times slower",
    "partition": "groups=[[R, ...], ...]: cut the network between groups of regions",
    "heal": "undo every partition",
    "latency": "latency=S: seconds every message takes (constant part; embedded broker only)",
    "fanout": "fanout=K: peers each gossiping agent contacts per round",
    "aggregator": "rule=NAME: the FedAvg server's aggregation rule",
}


class ControlError(ValueError):
    """A control command or argument that cannot be applied; the message says why."""


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: dict[str, Any]


def _number(args: dict[str, Any], key: str, lo: float, hi: float, *, closed: bool = False) -> float:
    """A number in (lo, hi], or [lo, hi] when `closed`."""
    value = args.get(key)
    if (
        not (type(value) is int or type(value) is float)
        or not math.isfinite(value)
        or not (lo <= value if closed else lo < value)
        or not value <= hi
    ):
        left = "[" if closed else "("
        raise ControlError(f"{key} = {value!r}: need a number in {left}{lo:g}, {hi:g}]")
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


def _share(body: dict[str, Any], args: dict[str, Any]) -> None:
    """The agents a crash or a slow-down picks: a share, of a class and a region."""
    args["fraction"] = _number(body, "fraction", 0.0, 1.0)
    args["kind"] = _name(body, "kind", optional=True)
    args["region"] = _name(body, "region", optional=True)


def parse(name: str, body: Any) -> Command:
    """A checked command from its name (a control topic's last segment) and its arguments."""
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
        _share(body, args)
    elif name == "slow":
        _share(body, args)
        args["factor"] = _number(body, "factor", 0.0, MAX_SLOWDOWN)
    elif name == "latency":
        args["latency"] = _number(body, "latency", 0.0, MAX_LATENCY, closed=True)
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
