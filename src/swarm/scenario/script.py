"""Scripted faults: `[[faults.script]]` entries, checked before the fleet starts.

Each entry names a simulated second (`at`), a control command and its arguments, e.g.

    [[faults.script]]
    at = 30
    command = "crash"
    fraction = 0.3
    region = "r1"

At the first round boundary at or after `at`, the fleet applies it through the same
controller as a dashboard key or a `mosquitto_pub`, and reports it as a `control` event
from "script". What can be checked without a fleet is checked here, so that a typo fails
at load time with the entry's key rather than as a refused event halfway through a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from swarm.commands import Command, ControlError, parse
from swarm.protocols.consensus.aggregate import AGGREGATORS
from swarm.scenario.schema import ScenarioError, did_you_mean, show

if TYPE_CHECKING:
    from swarm.scenario import Scenario

__all__ = ["NETWORK", "SCRIPTED", "Scripted", "script"]

# What a script may do: faults, and the knobs a fault study turns. Pausing and the speed
# of the wall clock are for people watching, not for an experiment.
SCRIPTED = ("crash", "slow", "partition", "heal", "latency", "inject", "fanout", "aggregator")
NETWORK = frozenset({"partition", "heal", "latency"})  # the embedded broker's network model
RESERVED = ("at", "command")


@dataclass(frozen=True, slots=True)
class Scripted:
    at: float  # simulated seconds since round 0
    command: Command
    key: str  # "faults.script[i]", for messages


def script(s: Scenario) -> list[Scripted]:
    """The scenario's scripted faults in the order they fire (by time, then as written)."""
    out = [_entry(s, i, entry) for i, entry in enumerate(s.faults.script)]
    return sorted(out, key=lambda e: e.at)


def _entry(s: Scenario, i: int, entry: dict[str, object]) -> Scripted:
    key = f"faults.script[{i}]"
    at = entry.get("at")
    if at is None:
        raise ScenarioError(f"{key}.at: missing; give the simulated second the entry fires")
    if not isinstance(at, int | float) or type(at) is bool or not math.isfinite(at) or at < 0:
        raise ScenarioError(f"{key}.at = {show(at)}: need the simulated second it fires, >= 0")
    name = entry.get("command")
    if name is None:
        raise ScenarioError(f"{key}.command: missing; one of {', '.join(SCRIPTED)}")
    if type(name) is not str or name not in SCRIPTED:
        hint = did_you_mean(name, SCRIPTED) if type(name) is str else ""
        raise ScenarioError(
            f"{key}.command = {show(name)}: allowed are {', '.join(SCRIPTED)}{hint}"
        )
    body = {k: v for k, v in entry.items() if k not in RESERVED}
    try:
        command = parse(name, body)
    except ControlError as exc:
        raise ScenarioError(f"{key}: {exc}") from None
    args = command.args
    classes = [c for c, share in s.fleet.mix.items() if share > 0]
    kind = args.get("kind")
    if kind is not None and kind not in classes:
        raise ScenarioError(
            f"{key}.kind = {show(kind)}: no such class in fleet.mix; the fleet has "
            f"{', '.join(classes)}{did_you_mean(kind, classes)}"
        )
    regions = s.fleet.regions
    named = [args["region"]] if args.get("region") is not None else []
    named += [r for group in args.get("groups", []) for r in group]
    for region in named:
        if region not in regions:
            raise ScenarioError(
                f"{key}: no region {region!r}; regions are "
                f"{', '.join(regions)}{did_you_mean(region, regions)}"
            )
    rule = args.get("rule")
    if rule is not None and rule not in AGGREGATORS:
        raise ScenarioError(
            f"{key}.rule = {show(rule)}: allowed are {', '.join(AGGREGATORS)}"
            f"{did_you_mean(rule, list(AGGREGATORS))}"
        )
    if name == "inject" and not (s.sybil.count and s.sybil.dormant):
        raise ScenarioError(
            f"{key}.command = 'inject': admits dormant Sybils, and this scenario reserves "
            "none (set sybil.count and sybil.dormant = true)"
        )
    return Scripted(float(at), command, key)
