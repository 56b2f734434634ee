"""Scenarios: TOML in, validated and typed objects out.

A scenario is data. Each section is a frozen dataclass whose fields carry their rules
(type, range, choices, a one-line doc); loading checks every key against them, so a bad
file fails before the fleet starts, with one line naming the key, the value and what is
allowed. `--set section.key=value` goes through the same checks.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swarm import workloads
from swarm.activation import ACTIVATIONS
from swarm.devices.grid import DEFAULT_PUE, PROFILES
from swarm.devices.grid import check as check_grid
from swarm.devices.profiles import CLASSES, DeviceError, DeviceProfile, load_profiles
from swarm.protocols.gossip import aggregation, dissemination
from swarm.protocols.gossip.topology import TOPOLOGIES
from swarm.scenario.schema import ScenarioError, check, did_you_mean, rule, show
from swarm.scenario.script import SCRIPTED, script

if TYPE_CHECKING:
    from swarm.workloads.base import WorkloadSpec

__all__ = [
    "CLASSES",
    "Scenario",
    "ScenarioError",
    "builtin_names",
    "load",
    "loads",
    "parse_override",
    "parse_value",
]

PROTOCOLS = (*dissemination.PROTOCOLS, *aggregation.PROTOCOLS)
MAX_ROUNDS = 10_000_000  # whether asked for as run.rounds or as run.duration / gossip.period
MAX_SCENARIO_BYTES = 1 << 20  # a scenario is a few dozen keys; more is a mistake or an attack


def _names() -> tuple[str, ...]:
    """The registered workloads; a malformed SWARM_WORKLOADS is a scenario error."""
    try:
        return workloads.names()
    except workloads.UnknownWorkload as exc:
        raise ScenarioError(str(exc)) from None


def _spec(name: str) -> WorkloadSpec:
    """A workload's spec; a registry entry that cannot be loaded is a scenario error."""
    try:
        return workloads.spec(name)
    except workloads.UnknownWorkload as exc:
        raise ScenarioError(str(exc)) from None


def behaviours() -> tuple[str, ...]:
    """Every Sybil behaviour some registered workload can be attacked with."""
    found: dict[str, None] = {}
    for name in _names():
        found.update(dict.fromkeys(_spec(name).behaviours))
    return tuple(found)


def workload_sections() -> dict[str, type]:
    """The sections that registered workloads declare, by section name (= workload name)."""
    out: dict[str, type] = {}
    for name in _names():
        section = _spec(name).section
        if section is not None:
            if name in COMMON_SECTIONS:
                raise ScenarioError(
                    f"workload {name!r} declares a section, but [{name}] is one every "
                    "scenario has; register the workload under another name"
                )
            out[name] = section
    return out


@dataclass(frozen=True)
class RunSection:
    name: str = rule("swarm", "run name; also the topic prefix swarm/<name>/", segment=True)
    description: str = rule("", "one line shown by `swarm scenarios`")
    seed: int = rule(1, "root of every random choice", min=0, max=2**63 - 1)
    rounds: int = rule(50, "gossip rounds to run at most", min=1, max=MAX_ROUNDS)
    duration: float = rule(0.0, "simulated seconds to run (0 = use rounds)", min=0.0)
    stop_when_done: bool = rule(
        True, "end early once everyone is informed or nobody has anything left to send"
    )
    activation: str = rule(
        "sync",
        "when agents act in a round: sync (all at its start), shuffled (one after another "
        "in a fresh random order), jittered (each at its own phase) or poisson (own clocks)",
        choices=ACTIVATIONS,
    )


@dataclass(frozen=True)
class FleetSection:
    count: int = rule(1000, "number of agents", min=1, max=10_000_000)
    mix: dict[str, float] = rule({"gpu": 1.0}, "device class -> share of the fleet")
    regions: list[str] = rule(["r0", "r1", "r2", "r3"], "region names", segment=True)
    area_km: float = rule(4000.0, "distance between opposite region centres", min=0.0)
    region_radius_km: float = rule(300.0, "spread of agents around their region", min=0.0)
    workload: str = rule(
        "gossip",
        "what agents do: a registered workload (`swarm scenarios --workloads` lists them)",
        choices=_names,
    )


@dataclass(frozen=True)
class GossipSection:
    protocol: str = rule("push", "gossip protocol", choices=PROTOCOLS)
    fanout: int = rule(1, "peers contacted per round", min=1)
    ttl: int = rule(0, "hops a rumor may travel (0 = unlimited)", min=0, max=65535)
    period: float = rule(1.0, "simulated seconds per round", above=0.0)
    feedback: bool = rule(True, "rumor: lose interest only when the peer already knew")
    stop: str = rule("counter", "rumor: how interest is lost", choices=("counter", "coin"))
    k: int = rule(2, "rumor: counter limit, or 1/probability for coin", min=1)
    memory: int = rule(1024, "rumors a node keeps (older ones are forgotten)", min=1, max=4096)
    payload_bytes: int = rule(32, "bytes of data carried by the rumor", min=0, max=65536)
    values: str = rule(
        "uniform", "averaging: initial values", choices=("uniform", "normal", "index")
    )


@dataclass(frozen=True)
class NetworkSection:
    topology: str = rule("complete", "who may talk to whom", choices=TOPOLOGIES)
    degree: int = rule(4, "regular, small-world, geo: neighbours per agent", min=1)
    rewire: float = rule(0.1, "small-world: rewiring probability", min=0.0, max=1.0)
    latency: float = rule(0.01, "seconds per message, constant part", min=0.0)
    latency_model: str = rule(
        "constant",
        "'distance' adds light-speed and per-hop delay",
        choices=("constant", "distance"),
    )
    light_fraction: float = rule(0.67, "signal speed relative to c", above=0.0, max=1.0)
    hop_km: float = rule(500.0, "km per router hop", above=0.0)
    hop_delay: float = rule(0.0005, "seconds per router hop", min=0.0)
    bandwidth: float = rule(0.0, "uplink bits per second (0 = unlimited)", min=0.0)
    device_links: bool = rule(
        False, "each agent's uplink is its device class's uplink_bps (devices.toml)"
    )
    loss: float = rule(0.0, "probability that a message is lost", min=0.0, max=1.0)
    partitions: list[list[str]] = rule([], "groups of regions cut off from each other")


@dataclass(frozen=True)
class BrokerSection:
    connections: str = rule(
        "per-agent",
        "on a real broker: an MQTT client per agent, or a few shared ones with bundling",
        choices=("per-agent", "shared"),
    )
    clients: int = rule(2, "shared mode: MQTT connections per process", min=1, max=64)
    grace: float = rule(
        5.0,
        "seconds a real broker may stay unreachable before the run ends incomplete (exit 1)",
        above=0.0,
        max=3600.0,
    )


@dataclass(frozen=True)
class SybilSection:
    count: int = rule(0, "fake identities the attacker creates (its identity budget)", min=0)
    behaviour: str = rule("sign-flip", "what the Sybils do", choices=behaviours)
    start: float = rule(0.0, "simulated second at which the attacker starts", min=0.0)
    dormant: bool = rule(
        False, "identities wait for a live `inject` control instead of joining from start"
    )
    identity_cost: float = rule(
        0.0, "simulated seconds the attacker spends creating each identity", min=0.0
    )
    admission_rate: float = rule(
        0.0, "defense: identities the fleet admits per second (0 = no limit)", min=0.0
    )
    magnitude: float = rule(
        0.0,
        "poisoning strength (0 = the behaviour's default: sign-flip 4, scale 10, shift 1.5)",
        min=0.0,
    )
    source_class: int = rule(0, "label-flip: the class whose labels the Sybils change", min=0)
    target_class: int = rule(1, "label-flip: the class they change it to", min=0)
    interval: float = rule(
        20.0, "fake-hazard: simulated seconds between the attacker's fake hazards", above=0.0
    )
    flood_rate: int = rule(20, "flood: messages per Sybil per round", min=1, max=10_000)
    victim: int = rule(0, "eclipse: index of the agent the Sybils surround", min=0)
    compare_clean: bool = rule(
        True, "also run the scenario without Sybils and report both in the summary"
    )


@dataclass(frozen=True)
class DevicesSection:
    gpu: dict[str, float] = rule({}, "overrides of the gpu profile, e.g. {flops = 1e14}")
    taxi: dict[str, float] = rule({}, "overrides of the taxi profile")
    glasses: dict[str, float] = rule({}, "overrides of the glasses profile")
    hearable: dict[str, float] = rule({}, "overrides of the hearable profile")


FAILURE_PROCESSES = ("none", "exponential", "weibull")
DETECTIONS = ("none", "swim")
MAX_SWIM_MEMBERS = 2000  # every member keeps a view of every other: n^2 entries in all


@dataclass(frozen=True)
class FaultsSection:
    process: str = rule(
        "none",
        "how devices fail: none, exponential (memoryless, mean = the class's mtbf_s) or "
        "weibull (same mean, shape weibull_shape)",
        choices=FAILURE_PROCESSES,
    )
    mtbf_scale: float = rule(
        1.0,
        "multiplies every class's mtbf_s: 0.001 makes failures 1,000 times as frequent",
        min=1e-12,
        max=1e12,
    )
    weibull_shape: float = rule(
        1.0,
        "weibull: shape k (below 1 early failures, above 1 wear-out, 1 exponential)",
        min=0.05,
        max=20.0,
    )
    repair_s: float = rule(
        0.0,
        "mean simulated seconds a failed device takes to come back, fresh (exponential); 0 = never",
        min=0.0,
        max=1e12,
    )
    session_s: float = rule(
        0.0,
        "mean simulated seconds a device stays before it leaves for good (exponential); 0 = never",
        min=0.0,
        max=1e12,
    )
    joining: float = rule(
        0.0,
        "share of the devices that are not there at round 0 and join, fresh, at a uniform "
        "moment of the run",
        min=0.0,
        max=1.0,
    )
    stragglers: float = rule(
        0.0,
        "share of the devices that compute slower than their class (stragglers)",
        min=0.0,
        max=1.0,
    )
    slowdown: float = rule(
        4.0, "how many times longer a straggler takes for the same work", min=1.0, max=1e6
    )
    detection: str = rule(
        "none",
        "failure detection the devices run among themselves: none, or swim (direct probe, "
        "indirect probe through probe_k members, suspicion; one probe per gossip.period)",
        choices=DETECTIONS,
    )
    probe_k: int = rule(3, "swim: members asked to probe indirectly", min=0, max=16)
    suspicion: int = rule(
        0,
        "swim: periods a suspicion waits for a refutation before the member is declared "
        "failed (0 = 4 log10 n, at least 3)",
        min=0,
        max=10_000,
    )
    script: list[dict[str, Any]] = rule(
        [],
        "faults at given simulated seconds, each a [[faults.script]] table: at = S, "
        f"command = {' | '.join(SCRIPTED)}, and the command's arguments",
    )


@dataclass(frozen=True)
class CheckpointSection:
    interval: float = rule(
        0.0,
        "simulated seconds between checkpoints: a synchronous job's (all-reduce), or each "
        "learning device's own, which it resumes from after a repair (0 = none)",
        min=0.0,
        max=1e12,
    )
    cost: float = rule(
        1.0,
        "simulated seconds a checkpoint takes, during which the job makes no progress",
        above=0.0,
        max=1e12,
    )
    restore: float = rule(
        1.0, "simulated seconds to load the last checkpoint after a rollback", min=0.0, max=1e12
    )


@dataclass(frozen=True)
class GridSection:
    regions: dict[str, str] = rule(
        {}, 'region -> a named grid (swarm.devices grids.toml), e.g. {r0 = "france"}'
    )
    default: str = rule("world", "the grid of regions not named in regions or intensity")
    intensity: dict[str, float] = rule(
        {}, "region -> its own carbon intensity, gCO2e/kWh (instead of a named grid)"
    )
    profile: str = rule(
        "flat",
        "flat, or solar: the intensity dips around local noon by solar_share",
        choices=PROFILES,
    )
    solar_share: float = rule(
        0.5, "solar: share of the intensity that midday sun displaces", min=0.0, max=1.0
    )
    hourly: dict[str, list[float]] = rule(
        {},
        "region -> 24 factors on its intensity, hour by local hour (a table instead of "
        "the profile: e.g. from a day of the grid's data)",
    )
    offset_h: dict[str, float] = rule({}, "region -> hours ahead of UTC (its local time)")
    start_h: float = rule(0.0, "UTC hour of the day at round 0", min=0.0, max=24.0)
    cap_w: dict[str, float] = rule(
        {},
        "region -> watts its devices may draw at most (facility power): compute is "
        "throttled to fit, and takes longer",
    )
    pue: float = rule(
        DEFAULT_PUE,
        "power usage effectiveness of the facility of mains classes (datacenter GPUs); "
        "1.58: the 2023 industry average (Uptime Institute)",
        min=1.0,
        max=5.0,
    )


@dataclass(frozen=True)
class BatterySection:
    charge_from: float = rule(
        0.0,
        "local hour battery devices go on their chargers (overnight at home: 22)",
        min=0.0,
        max=24.0,
    )
    charge_until: float = rule(
        0.0, "local hour they come off (7); equal to charge_from: no charging", min=0.0, max=24.0
    )
    charge_w: float = rule(
        5.0,
        "watts a charger puts into a battery (estimate: a USB charger, 5 V at 1 A)",
        min=0.0,
        max=1e4,
    )
    harvest_w: dict[str, float] = rule(
        {}, "class -> watts it harvests all the time (a trickle: body heat, light)"
    )
    reserve: float = rule(
        0.0,
        "share of capacity below which a battery device rests (no work, no relaying) "
        "until charged above twice it; 0 = work until flat",
        min=0.0,
        max=0.5,
    )

    @property
    def active(self) -> bool:
        return (
            self.charge_from != self.charge_until
            or any(v > 0 for v in self.harvest_w.values())
            or self.reserve > 0
        )


# The sections every scenario has, whatever its workload; workloads add their own.
COMMON_SECTIONS: dict[str, type] = {
    "run": RunSection,
    "fleet": FleetSection,
    "gossip": GossipSection,
    "network": NetworkSection,
    "broker": BrokerSection,
    "sybil": SybilSection,
    "faults": FaultsSection,
    "checkpoint": CheckpointSection,
    "grid": GridSection,
    "battery": BatterySection,
    "devices": DevicesSection,
}


def sections() -> dict[str, type]:
    """Every section a scenario may hold, in the order a scenario is printed."""
    common = list(COMMON_SECTIONS.items())
    return dict(common[:5] + list(workload_sections().items()) + common[5:])


@dataclass(frozen=True)
class Scenario:
    run: RunSection = field(default_factory=RunSection)
    fleet: FleetSection = field(default_factory=FleetSection)
    gossip: GossipSection = field(default_factory=GossipSection)
    network: NetworkSection = field(default_factory=NetworkSection)
    broker: BrokerSection = field(default_factory=BrokerSection)
    sybil: SybilSection = field(default_factory=SybilSection)
    faults: FaultsSection = field(default_factory=FaultsSection)
    checkpoint: CheckpointSection = field(default_factory=CheckpointSection)
    grid: GridSection = field(default_factory=GridSection)
    battery: BatterySection = field(default_factory=BatterySection)
    devices: DevicesSection = field(default_factory=DevicesSection)
    # The registered workloads' sections, by name: `scenario.learn` reads one of them.
    workloads: Mapping[str, Any] = field(
        default_factory=lambda: {name: cls() for name, cls in workload_sections().items()}
    )

    def __getattr__(self, name: str) -> Any:
        """A workload's section (`scenario.learn`), as if it were a field."""
        sections = self.__dict__.get("workloads", {})
        if name in sections:
            return sections[name]
        raise AttributeError(f"scenario has no section {name!r}")

    def profiles(self) -> dict[str, DeviceProfile]:
        """The device classes' figures, with this scenario's overrides applied."""
        return load_profiles(dataclasses.asdict(self.devices))

    @property
    def max_rounds(self) -> int:
        if self.run.duration > 0:
            return max(1, math.ceil(self.run.duration / self.gossip.period))
        return self.run.rounds

    @property
    def aggregating(self) -> bool:
        return self.gossip.protocol in aggregation.PROTOCOLS

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: dataclasses.asdict(getattr(self, name)) for name in sections()}

    def to_toml(self) -> str:
        lines = []
        for name, values in self.to_dict().items():
            lines.append(f"[{name}]")
            lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
            lines.append("")
        return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


# -- checking ------------------------------------------------------------------------------


def _build(data: Mapping[str, Any]) -> Scenario:
    if not isinstance(data, Mapping):
        raise ScenarioError("a scenario must be a TOML table of sections")
    known = sections()
    built: dict[str, Any] = {}
    for name, section in data.items():
        if name not in known:
            raise ScenarioError(
                f"unknown section [{name}]: allowed are "
                f"{', '.join(known)}{did_you_mean(name, list(known))}"
            )
        if not isinstance(section, Mapping):
            raise ScenarioError(f"{name} must be a table ([{name}]), got {show(section)}")
        fields = {f.name: f for f in dataclasses.fields(known[name])}
        values = {}
        for key, value in section.items():
            if key not in fields:
                raise ScenarioError(
                    f"unknown key {name}.{key}: allowed are {', '.join(fields)}"
                    f"{did_you_mean(key, list(fields))}"
                )
            values[key] = check(f"{name}.{key}", value, fields[key])
        built[name] = known[name](**values)
    own = workload_sections()
    common = {name: section for name, section in built.items() if name not in own}
    extra = {name: built[name] if name in built else cls() for name, cls in own.items()}
    scenario = Scenario(**common, workloads=extra)
    _cross_check(scenario)
    return scenario


def _cross_check(s: Scenario) -> None:
    """Rules that involve more than one key."""
    count = s.fleet.count
    if count < 2:
        raise ScenarioError(f"fleet.count = {count}: gossip needs at least 2 agents")
    if s.gossip.fanout > count - 1:
        raise ScenarioError(
            f"gossip.fanout = {s.gossip.fanout}: larger than the {count - 1} other agents "
            f"of fleet.count = {count}"
        )
    if not s.fleet.mix:
        raise ScenarioError("fleet.mix = {}: name at least one device class")
    for name, share in s.fleet.mix.items():
        if name not in CLASSES:
            raise ScenarioError(
                f"fleet.mix.{name}: unknown device class; allowed are {', '.join(CLASSES)}"
                f"{did_you_mean(name, CLASSES)}"
            )
        if share < 0:
            raise ScenarioError(f"fleet.mix.{name} = {share}: shares must be >= 0")
    if sum(s.fleet.mix.values()) <= 0:
        raise ScenarioError("fleet.mix: shares must add up to more than 0")
    try:
        profiles = s.profiles()
    except DeviceError as exc:
        raise ScenarioError(str(exc)) from None
    if s.faults.process != "none":
        for name, share in s.fleet.mix.items():
            if share > 0 and not profiles[name].mtbf_s > 0:
                raise ScenarioError(
                    f"devices.{name}.mtbf_s = {profiles[name].mtbf_s:g}: faults.process = "
                    f"{s.faults.process!r} needs a mean time between failures above 0 "
                    "(inf: the class never fails)"
                )
    if s.faults.detection == "swim" and count > MAX_SWIM_MEMBERS:
        raise ScenarioError(
            f'faults.detection = "swim": fleet.count = {count} is over {MAX_SWIM_MEMBERS:,}; '
            "every member keeps a view of all the others (n^2 entries), so run SWIM on a "
            "smaller fleet"
        )
    ckpt = s.checkpoint
    if 0 < ckpt.interval <= ckpt.cost:
        raise ScenarioError(
            f"checkpoint.interval = {ckpt.interval:g}: not longer than checkpoint.cost = "
            f"{ckpt.cost:g}, the job would do nothing but checkpoint (a longer interval, or 0 "
            "for none)"
        )
    if s.run.duration > 0 and s.run.duration / s.gossip.period > MAX_ROUNDS:
        raise ScenarioError(
            f"run.duration = {s.run.duration:g} at gossip.period = {s.gossip.period:g} is "
            f"{s.run.duration / s.gossip.period:.3g} rounds; at most {MAX_ROUNDS:,} "
            "(a shorter duration or a longer period)"
        )
    _check_attack(s)
    for name in _names():
        try:
            _spec(name).check(s)
        except ScenarioError:
            raise
        except Exception as exc:  # a plugin's check is code swarm does not control
            raise ScenarioError(
                f"workload {name!r}: its scenario check failed ({type(exc).__name__}: {exc})"
            ) from None
    regions = s.fleet.regions
    if not regions:
        raise ScenarioError("fleet.regions = []: name at least one region")
    if len(set(regions)) != len(regions):
        raise ScenarioError(f"fleet.regions = {show(regions)}: names must be unique")
    seen: set[str] = set()
    for group in s.network.partitions:
        for region in group:
            if region not in regions:
                raise ScenarioError(
                    f"network.partitions: unknown region {region!r}; regions are "
                    f"{', '.join(regions)}{did_you_mean(region, regions)}"
                )
            if region in seen:
                raise ScenarioError(f"network.partitions: region {region!r} is in two groups")
            seen.add(region)
    for kind, watts in s.battery.harvest_w.items():
        if kind not in CLASSES:
            raise ScenarioError(
                f"battery.harvest_w.{kind}: unknown device class; allowed are "
                f"{', '.join(CLASSES)}{did_you_mean(kind, CLASSES)}"
            )
        if not 0.0 <= watts <= 1e4:
            raise ScenarioError(f"battery.harvest_w.{kind} = {watts:g}: watts in 0..10000")
    problems = check_grid(regions, s.grid)
    if problems:
        raise ScenarioError(problems[0])
    script(s)


def _check_attack(s: Scenario) -> None:
    """The [sybil] section fits the workload (its own rules are the workload's `check`)."""
    sybil, workload = s.sybil, s.fleet.workload
    if sybil.count == 0:
        return
    if sybil.behaviour not in _spec(workload).behaviours:
        allowed = [n for n in _names() if sybil.behaviour in _spec(n).behaviours]
        raise ScenarioError(
            f"sybil.behaviour = {sybil.behaviour!r} attacks the {' or '.join(allowed)} "
            f"workload, but fleet.workload = {workload!r}"
        )
    if sybil.behaviour == "eclipse":
        if sybil.victim >= s.fleet.count:
            raise ScenarioError(
                f"sybil.victim = {sybil.victim}: no such agent (fleet.count = {s.fleet.count})"
            )
        if s.gossip.fanout > sybil.count:
            raise ScenarioError(
                f'sybil.behaviour = "eclipse": the victim\'s view holds only the '
                f"{sybil.count} Sybils, fewer than gossip.fanout = {s.gossip.fanout}"
            )
    if s.fleet.count + sybil.count > 10_000_000:
        raise ScenarioError(
            f"sybil.count = {sybil.count}: the fleet would exceed 10,000,000 agents"
        )


# -- loading -------------------------------------------------------------------------------


def builtin_names() -> list[str]:
    folder = resources.files("swarm") / "scenarios"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def _read(source: str | Path) -> tuple[str, str]:
    """The TOML text of a built-in name or a file path, and a label for errors."""
    path = Path(source)
    if path.suffix == ".toml" or path.exists():
        try:
            with path.open("rb") as file:
                raw = file.read(MAX_SCENARIO_BYTES + 1)
            if len(raw) > MAX_SCENARIO_BYTES:
                raise ScenarioError(
                    f"scenario file {str(path)!r} is larger than {MAX_SCENARIO_BYTES} bytes; "
                    "a scenario is a few dozen keys"
                )
            return raw.decode("utf-8"), str(path)
        except FileNotFoundError:
            raise ScenarioError(f"scenario file {str(path)!r} not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError(f"cannot read scenario file {str(path)!r}: {exc}") from None
    names = builtin_names()
    if str(source) in names:
        text = (resources.files("swarm") / "scenarios" / f"{source}.toml").read_text("utf-8")
        return text, f"built-in scenario {source!r}"
    raise ScenarioError(
        f"no scenario {str(source)!r}: not a file, and the built-ins are "
        f"{', '.join(names)}{did_you_mean(str(source), names)}"
    )


def parse_override(text: str) -> tuple[str, str, Any]:
    """`section.key=value` -> (section, key, value); value is TOML, or a bare string."""
    if "=" not in text:
        raise ScenarioError(f"--set {text!r}: expected section.key=value")
    path, raw = text.split("=", 1)
    path = path.strip()
    if path.count(".") != 1:
        raise ScenarioError(f"--set {text!r}: the key must be section.key, e.g. gossip.fanout=3")
    section, key = path.split(".")
    return section, key, parse_value(raw, f"--set {path}")


def parse_value(raw: str, where: str) -> Any:
    """A command line's value: TOML, or else the bare word itself (gossip.protocol=pull)."""
    try:
        return tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return raw.strip()
    except RecursionError:
        raise ScenarioError(f"{where}: the value is nested too deeply") from None


def load(
    source: str | Path | None = None, overrides: Sequence[str] = (), **direct: Any
) -> Scenario:
    """Load a built-in name or a TOML path (None: the default `fleet` scenario).

    `overrides` are `section.key=value` strings; `direct` maps "section.key" to values
    (used for --seed and --agents). Every value is checked the same way.
    """
    text, label = _read(source if source is not None else "fleet")
    return loads(text, label, overrides, **direct)


def loads(
    text: str, label: str = "scenario", overrides: Sequence[str] = (), **direct: Any
) -> Scenario:
    """`load` from TOML text (e.g. a scenario received from a coordinator)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{label} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ScenarioError(f"{label}: values are nested too deeply to read") from None
    for item in overrides:
        section, key, value = parse_override(item)
        data.setdefault(section, {})
        if isinstance(data[section], dict):
            data[section][key] = value
    for path, value in direct.items():
        section, key = path.split(".")
        data.setdefault(section, {})[key] = value
    try:
        return _build(data)
    except ScenarioError as exc:
        raise ScenarioError(f"{label}: {exc}") from None


def from_dict(data: Mapping[str, Any]) -> Scenario:
    """Build from already-parsed data (tests, sweeps)."""
    return _build(data)
