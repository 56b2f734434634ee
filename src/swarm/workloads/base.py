"""What a workload is: the `Workload` protocol, its build context and its declaration.

A workload is what a fleet's agents do (spread a rumor, learn a model, warn of hazards,
relay readings). The fleet knows nothing else about it: it builds one from a
`BuildContext`, hands its cores to the agents, calls `step` before the agents act in each
round, and asks it for metrics, results, live status and attack figures. Every method is
part of the protocol; a workload with nothing to say returns an empty value.

A `WorkloadSpec` declares a workload without importing it: its message kinds, its scenario
section and checks, its Sybil behaviours, the dashboard panels it wants and the figures a
report draws of it. The registry
(`swarm.workloads`) holds one spec per name, so a run of one workload loads only its own
heavy modules (a gossip run imports no scikit-learn) while every kind is known to the codec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

from swarm.placement import Placement, overlay, place_agents
from swarm.protocols.gossip.topology import Topology
from swarm.protocols.sybil import Roster
from swarm.scenario import Scenario

if TYPE_CHECKING:
    from swarm.devices.energy import EnergyMeter
    from swarm.figures import Figure
    from swarm.protocols.gossip.core import Core

__all__ = [
    "BuildContext",
    "Part",
    "Partial",
    "Results",
    "Row",
    "RowBase",
    "Status",
    "Workload",
    "WorkloadSpec",
]

# A process's additive figures of one round: counts and sums, never ratios, so that the
# parts of N shards merge into the row one process would have written.
Part = dict[str, Any]
# A process's end-of-run figures, in the same additive form.
Partial = dict[str, Any]
# One merged line of metrics.jsonl.
Row = dict[str, Any]
# The summary's `results` block.
Results = dict[str, Any]
# What a live dashboard is shown beyond the fleet's own status.
Status = dict[str, Any]


class RowBase(TypedDict):
    """The columns every metrics row has, whatever the workload."""

    round: int
    time: float
    alive: int
    sent: int
    delivered: int
    dropped: int
    dropped_malformed: int
    bytes: int


@dataclass(frozen=True, slots=True)
class BuildContext:
    """Everything a workload is built from; the same in every process of a run."""

    scenario: Scenario
    placement: Placement
    topology: Topology
    roster: Roster
    local: range  # the agent indices this process runs: honest ones, then Sybils
    now: Callable[[], float]  # seconds since round 0 (simulated on the embedded broker)

    @classmethod
    def of(
        cls,
        scenario: Scenario,
        local: range | None = None,
        now: Callable[[], float] = lambda: 0.0,
        *,
        topology: Topology | None = None,
    ) -> BuildContext:
        """The context a fleet would build for `scenario` (tests and tools build cores so).

        `local` defaults to every agent; `topology` to the scenario's own overlay.
        """
        placement = place_agents(scenario)
        roster = Roster.of(scenario)
        if topology is None:
            topology = overlay(scenario, placement, roster)
        return cls(scenario, placement, topology, roster, local or range(roster.total), now)

    @property
    def honest(self) -> Iterator[int]:
        """This process's honest agents."""
        return (i for i in self.local if i < self.roster.honest)

    @property
    def sybils(self) -> list[int]:
        """This process's Sybils."""
        return [i for i in self.local if self.roster.is_sybil(i)]


class Workload(Protocol):
    """One workload in one process: its cores and what the fleet asks of them."""

    @property
    def cores(self) -> Mapping[int, Core]:
        """This process's honest agents' cores, by agent index."""
        ...

    @property
    def sybils(self) -> Mapping[int, Core]:
        """This process's Sybils' cores, by agent index."""
        ...

    @classmethod
    def build(cls, ctx: BuildContext) -> Workload:
        """The cores of `ctx.local`, and whatever the workload shares among them."""
        ...

    def step(self, round: int) -> None:
        """Move the world to the start of `round`, after the row is sampled, before acts."""
        ...

    def sample(self, round: int, in_flight: int) -> Part:
        """This process's additive figures at the start of `round` (before agents act)."""
        ...

    @staticmethod
    def merge(parts: Sequence[Part], n: int) -> tuple[Row, bool]:
        """The workload's columns of a row from every process's part; and whether done."""
        ...

    def partial_results(self) -> Partial:
        """This process's end-of-run figures, in a form `results` merges exactly."""
        ...

    @staticmethod
    def results(scenario: Scenario, parts: Sequence[Partial], rows: Sequence[Row]) -> Results:
        """The summary's `results` from every process's partial results and the rows."""
        ...

    def attack_partial(self) -> Partial:
        """What this process's defenses saw of the Sybils, and the victim's fate."""
        ...

    def live_status(self) -> Status:
        """What a live dashboard shows of this workload now (may be worked out lazily)."""
        ...

    def asleep(self, index: int) -> bool:
        """Whether a live agent has its radio off this round (duty-cycled devices)."""
        ...

    def position(self, index: int) -> tuple[float, float] | None:
        """Where a local agent is now, for the dashboard's map; None: where it was placed
        (a workload whose agents move, like the taxis, says where they went)."""
        ...

    def respawn(self, index: int) -> Core:
        """A fresh core for a local device that comes back after a failure: its state is
        lost, its data, class and place are kept; it replaces the old core in `cores`."""
        ...

    def marked(self, index: int) -> bool:
        """Whether the map highlights a local agent: what `WorkloadSpec.mark` names
        (informed of the rumor, warned of a hazard)."""
        ...

    def meters(self) -> Iterator[tuple[int, EnergyMeter]]:
        """(agent index, energy meter) of every metered local agent."""
        ...

    def set_fanout(self, fanout: int) -> int:
        """A live `fanout` control: how many cores took the new fanout (0: none gossips)."""
        ...

    def set_aggregator(self, rule: str) -> int:
        """A live `aggregator` control: how many servers took the rule (0: none here)."""
        ...

    def slow_down(self, index: int, factor: float, *, throttle: bool = False) -> bool:
        """A live `slow` control: local agent `index` now takes `factor` times as long for
        the same work (until it is respawned); False when no compute time is modelled.
        With `throttle` (a power cap) its draw above idle falls by the same factor, so the
        work costs the same joules over the longer time."""
        ...

    @property
    def aggregator(self) -> str | None:
        """The aggregation rule in use, for workloads with a server."""
        ...


def _no_check(scenario: Scenario) -> None:
    """A workload whose scenario needs no rule beyond its section's own."""


@dataclass(frozen=True)
class WorkloadSpec:
    """A workload declared without importing it: what the rest of swarm needs to know.

    `factory` ("module:Class") is imported only when a run of this workload starts.
    `section` is the scenario section the workload reads (None: it reads only the common
    ones); `check` applies the rules that involve more than one of its keys, to every
    scenario (its section has defaults even when another workload runs).
    """

    name: str
    summary: str  # one line: what the agents do
    factory: str
    kinds: tuple[str, ...]  # the message kinds its agents send
    # Wire codes for some or all of them (docs/wire.md keeps the registry of taken codes);
    # a kind without one travels by name, which costs its length in every header.
    codes: Mapping[str, int] = field(default_factory=dict)
    behaviours: tuple[str, ...] = ()  # the Sybil behaviours it can be attacked with
    section: type | None = None
    check: Callable[[Scenario], None] = _no_check
    panels: tuple[str, ...] = ()  # the dashboard panels that show it
    mark: str = ""  # what the map's highlighted agents are (`Workload.marked`); "": none
    clean_keys: tuple[str, ...] = ()  # results a clean-run comparison reports
    # Runs of the same scenario with other settings that its summary reports beside its
    # own (label -> "section.key" overrides; none by default), and the results they keep.
    variants: Callable[[Scenario], dict[str, dict[str, Any]]] = field(default=lambda scenario: {})
    variant_keys: tuple[str, ...] = ()
    label: Callable[[Scenario], str] | None = None  # short description for tables
    info: Callable[[Scenario], dict[str, Any]] = field(default=lambda scenario: {})
    # What `swarm report` draws of one run, and the results a sweep's figures compare.
    figures: tuple[Figure, ...] = ()
    headline: tuple[str, ...] = ()  # dotted results keys

    def describe(self, scenario: Scenario) -> str:
        return self.label(scenario) if self.label is not None else self.name
