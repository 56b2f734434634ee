"""Scenarios: TOML in, validated and typed objects out.

A scenario is data. Each section is a frozen dataclass whose fields carry their rules
(type, range, choices, a one-line doc); loading checks every key against them, so a bad
file fails before the fleet starts, with one line naming the key, the value and what is
allowed. `--set section.key=value` goes through the same checks.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from swarm import topics
from swarm.devices import CLASSES, DeviceError, DeviceProfile, load_profiles
from swarm.gossip import aggregation, dissemination
from swarm.gossip.topology import TOPOLOGIES
from swarm.learn.compression import MODES
from swarm.learn.datasets import DATASETS

__all__ = [
    "CLASSES",
    "Scenario",
    "ScenarioError",
    "builtin_names",
    "load",
    "loads",
    "parse_override",
]

WORKLOADS = ("gossip", "learn", "hazards", "mesh")
STRATEGIES = ("gossip", "fedavg", "allreduce")
PROTOCOLS = (*dissemination.PROTOCOLS, *aggregation.PROTOCOLS)
AGGREGATORS = ("mean", "median", "trimmed-mean", "krum", "multi-krum", "bulyan", "foolsgold")
VOTING_RULES = ("any", "quorum", "majority")
# What Sybils can do, and the workloads each behaviour applies to.
BEHAVIOURS = (
    "sign-flip",
    "scale",
    "shift",
    "label-flip",
    "fake-hazard",
    "suppress",
    "flood",
    "eclipse",
)
BEHAVIOUR_WORKLOADS = {
    "sign-flip": ("learn",),
    "scale": ("learn",),
    "shift": ("learn",),
    "label-flip": ("learn",),
    "fake-hazard": ("hazards",),
    "suppress": ("hazards",),
    "flood": ("gossip", "learn", "hazards"),
    "eclipse": ("gossip", "learn"),
}


class ScenarioError(ValueError):
    """A scenario that cannot run; the message is one line a user can act on."""


def _rule(default: Any, doc: str, **checks: Any) -> Any:
    """A field with a default, a doc line and checks (min, max, above, choices, ...)."""
    factory = (lambda: list(default)) if isinstance(default, list) else None
    factory = (lambda: dict(default)) if isinstance(default, dict) else factory
    meta = {"doc": doc, **checks}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class RunSection:
    name: str = _rule("swarm", "run name; also the topic prefix swarm/<name>/", segment=True)
    description: str = _rule("", "one line shown by `swarm scenarios`")
    seed: int = _rule(1, "root of every random choice", min=0, max=2**63 - 1)
    rounds: int = _rule(50, "gossip rounds to run at most", min=1, max=10_000_000)
    duration: float = _rule(0.0, "simulated seconds to run (0 = use rounds)", min=0.0)
    stop_when_done: bool = _rule(
        True, "end early once everyone is informed or nobody has anything left to send"
    )


@dataclass(frozen=True)
class FleetSection:
    count: int = _rule(1000, "number of agents", min=1, max=10_000_000)
    mix: dict[str, float] = _rule({"gpu": 1.0}, "device class -> share of the fleet")
    regions: list[str] = _rule(["r0", "r1", "r2", "r3"], "region names", segment=True)
    area_km: float = _rule(4000.0, "distance between opposite region centres", min=0.0)
    region_radius_km: float = _rule(300.0, "spread of agents around their region", min=0.0)
    workload: str = _rule(
        "gossip",
        "what agents do: gossip (spread a rumor or average), learn (train a model "
        "together), hazards (taxis sensing a city), mesh (low-power devices relaying "
        "readings)",
        choices=WORKLOADS,
    )


@dataclass(frozen=True)
class GossipSection:
    protocol: str = _rule("push", "gossip protocol", choices=PROTOCOLS)
    fanout: int = _rule(1, "peers contacted per round", min=1)
    ttl: int = _rule(0, "hops a rumor may travel (0 = unlimited)", min=0, max=65535)
    period: float = _rule(1.0, "simulated seconds per round", above=0.0)
    feedback: bool = _rule(True, "rumor: lose interest only when the peer already knew")
    stop: str = _rule("counter", "rumor: how interest is lost", choices=("counter", "coin"))
    k: int = _rule(2, "rumor: counter limit, or 1/probability for coin", min=1)
    memory: int = _rule(1024, "rumors a node keeps (older ones are forgotten)", min=1, max=4096)
    payload_bytes: int = _rule(32, "bytes of data carried by the rumor", min=0, max=65536)
    values: str = _rule(
        "uniform", "averaging: initial values", choices=("uniform", "normal", "index")
    )


@dataclass(frozen=True)
class NetworkSection:
    topology: str = _rule("complete", "who may talk to whom", choices=TOPOLOGIES)
    degree: int = _rule(4, "regular, small-world, geo: neighbours per agent", min=1)
    rewire: float = _rule(0.1, "small-world: rewiring probability", min=0.0, max=1.0)
    latency: float = _rule(0.01, "seconds per message, constant part", min=0.0)
    latency_model: str = _rule(
        "constant",
        "'distance' adds light-speed and per-hop delay",
        choices=("constant", "distance"),
    )
    light_fraction: float = _rule(0.67, "signal speed relative to c", above=0.0, max=1.0)
    hop_km: float = _rule(500.0, "km per router hop", above=0.0)
    hop_delay: float = _rule(0.0005, "seconds per router hop", min=0.0)
    bandwidth: float = _rule(0.0, "uplink bits per second (0 = unlimited)", min=0.0)
    device_links: bool = _rule(
        False, "each agent's uplink is its device class's uplink_bps (devices.toml)"
    )
    loss: float = _rule(0.0, "probability that a message is lost", min=0.0, max=1.0)
    partitions: list[list[str]] = _rule([], "groups of regions cut off from each other")


@dataclass(frozen=True)
class BrokerSection:
    connections: str = _rule(
        "per-agent",
        "on a real broker: an MQTT client per agent, or a few shared ones with bundling",
        choices=("per-agent", "shared"),
    )
    clients: int = _rule(2, "shared mode: MQTT connections per process", min=1, max=64)


@dataclass(frozen=True)
class LearnSection:
    dataset: str = _rule("digits", "data the fleet learns from", choices=DATASETS)
    strategy: str = _rule(
        "gossip",
        "how models meet: gossip averaging, federated averaging, or ring all-reduce",
        choices=STRATEGIES,
    )
    compression: str = _rule("none", "encoding of the updates devices send", choices=MODES)
    topk_ratio: float = _rule(0.1, "topk: share of entries sent", above=0.0, max=1.0)
    iid: bool = _rule(True, "shuffle data evenly (false: each agent sees few classes)")
    classes_per_agent: int = _rule(2, "non-IID: classes in each agent's shard", min=1)
    shard_size: int = _rule(0, "samples per agent (0 = split the training set evenly)", min=0)
    fraction_fit: float = _rule(
        0.5, "fedavg: share of clients trained per round", above=0.0, max=1.0
    )
    local_epochs: int = _rule(1, "passes over the local shard per round", min=1, max=1000)
    batch_size: int = _rule(32, "minibatch size of local training", min=1)
    learning_rate: float = _rule(0.01, "SGD step size (eta0)", above=0.0)
    aggregator: str = _rule(
        "mean",
        "fedavg: how the server combines updates: mean (FedAvg), or a robust rule "
        "(median, trimmed-mean, krum, multi-krum, bulyan, foolsgold)",
        choices=AGGREGATORS,
    )
    byzantine: int = _rule(
        1, "fedavg: attackers per aggregation the robust rule assumes (f)", min=0
    )
    trim: float = _rule(0.2, "trimmed-mean: share cut from each end per coordinate", min=0.0)
    clip_norm: float = _rule(
        0.0, "fedavg: clip each update to this L2 norm first (0 = off)", min=0.0
    )
    reputation: bool = _rule(
        False, "fedavg: ignore clients whose updates the rule kept rejecting (reputation)"
    )


@dataclass(frozen=True)
class HazardsSection:
    size_m: float = _rule(5000.0, "side of the square city", above=0.0)
    hazard_rate: float = _rule(0.05, "new hazards per second over the city", above=0.0)
    hazard_lifetime: float = _rule(600.0, "mean seconds a hazard lasts", above=0.0)
    sensing_range_m: float = _rule(150.0, "how far a taxi's sensors see", above=0.0)
    speed_mps: float = _rule(10.0, "taxi speed", min=0.0)
    sensor_noise: float = _rule(0.5, "standard deviation of a reading's noise", above=0.0)
    false_reading_rate: float = _rule(0.002, "spurious readings per taxi-second", min=0.0)
    radius_m: float = _rule(
        1000.0, "awareness: taxis this close to a hazard should learn it", above=0.0
    )
    share: float = _rule(0.9, "awareness: share of nearby taxis that must know", above=0.0, max=1.0)
    budget_ms: float = _rule(10.0, "safety-loop budget per decision", above=0.0)
    voting: str = _rule(
        "any",
        "when a taxi believes a peer's report: any (the first), quorum (from `quorum` "
        "distinct reporters), majority (quorum, and more yes than no votes)",
        choices=VOTING_RULES,
    )
    quorum: int = _rule(2, "voting: distinct reporters needed (quorum and majority)", min=1)


@dataclass(frozen=True)
class MeshSection:
    duty_cycle: float = _rule(0.25, "share of rounds a device's radio is awake", above=0.0, max=1.0)
    entries: int = _rule(8, "readings relayed per message (the freshest first)", min=1, max=256)
    field_period: float = _rule(600.0, "seconds over which the sensed field changes", above=0.0)
    noise: float = _rule(0.05, "sensor noise, in units of the field's range", min=0.0)
    max_hops: int = _rule(8, "hops a reading may travel", min=1, max=255)


@dataclass(frozen=True)
class SybilSection:
    count: int = _rule(0, "fake identities the attacker creates (its identity budget)", min=0)
    behaviour: str = _rule("sign-flip", "what the Sybils do", choices=BEHAVIOURS)
    start: float = _rule(0.0, "simulated second at which the attacker starts", min=0.0)
    dormant: bool = _rule(
        False, "identities wait for a live `inject` control instead of joining from start"
    )
    identity_cost: float = _rule(
        0.0, "simulated seconds the attacker spends creating each identity", min=0.0
    )
    admission_rate: float = _rule(
        0.0, "defense: identities the fleet admits per second (0 = no limit)", min=0.0
    )
    magnitude: float = _rule(
        0.0,
        "poisoning strength (0 = the behaviour's default: sign-flip 4, scale 10, shift 1.5)",
        min=0.0,
    )
    source_class: int = _rule(0, "label-flip: the class whose labels the Sybils change", min=0)
    target_class: int = _rule(1, "label-flip: the class they change it to", min=0)
    interval: float = _rule(
        20.0, "fake-hazard: simulated seconds between the attacker's fake hazards", above=0.0
    )
    flood_rate: int = _rule(20, "flood: messages per Sybil per round", min=1, max=10_000)
    victim: int = _rule(0, "eclipse: index of the agent the Sybils surround", min=0)
    compare_clean: bool = _rule(
        True, "also run the scenario without Sybils and report both in the summary"
    )


@dataclass(frozen=True)
class DevicesSection:
    gpu: dict[str, float] = _rule({}, "overrides of the gpu profile, e.g. {flops = 1e14}")
    taxi: dict[str, float] = _rule({}, "overrides of the taxi profile")
    glasses: dict[str, float] = _rule({}, "overrides of the glasses profile")
    hearable: dict[str, float] = _rule({}, "overrides of the hearable profile")


SECTIONS: dict[str, type] = {
    "run": RunSection,
    "fleet": FleetSection,
    "gossip": GossipSection,
    "network": NetworkSection,
    "broker": BrokerSection,
    "learn": LearnSection,
    "hazards": HazardsSection,
    "mesh": MeshSection,
    "sybil": SybilSection,
    "devices": DevicesSection,
}


@dataclass(frozen=True)
class Scenario:
    run: RunSection = field(default_factory=RunSection)
    fleet: FleetSection = field(default_factory=FleetSection)
    gossip: GossipSection = field(default_factory=GossipSection)
    network: NetworkSection = field(default_factory=NetworkSection)
    broker: BrokerSection = field(default_factory=BrokerSection)
    learn: LearnSection = field(default_factory=LearnSection)
    hazards: HazardsSection = field(default_factory=HazardsSection)
    mesh: MeshSection = field(default_factory=MeshSection)
    sybil: SybilSection = field(default_factory=SybilSection)
    devices: DevicesSection = field(default_factory=DevicesSection)

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
        return {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}

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


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, str(tp)
    )


_TYPES: dict[str, Any] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "list[str]": list[str],
    "list[list[str]]": list[list[str]],
    "dict[str, float]": dict[str, float],
}


def _check(path: str, value: Any, spec: dataclasses.Field[Any]) -> Any:
    """Return `value` converted to the field's type, or raise ScenarioError naming `path`."""
    tp = spec.type if not isinstance(spec.type, str) else _TYPES[spec.type]
    meta = spec.metadata
    shown = _show(value)
    if tp is bool:
        if type(value) is not bool:
            raise ScenarioError(f"{path} = {shown}: expected true or false")
    elif tp is int:
        if type(value) is not int:
            raise ScenarioError(f"{path} = {shown}: expected an integer")
    elif tp is float:
        if type(value) not in (int, float) or not math.isfinite(value):
            raise ScenarioError(f"{path} = {shown}: expected a finite number")
        value = float(value)
    elif tp is str:
        if type(value) is not str:
            raise ScenarioError(f"{path} = {shown}: expected a string")
    elif tp == list[str]:
        if type(value) is not list or not all(type(v) is str for v in value):
            raise ScenarioError(f"{path} = {shown}: expected a list of strings")
    elif tp == list[list[str]]:
        ok = type(value) is list and all(
            type(group) is list and all(type(v) is str for v in group) for group in value
        )
        if not ok:
            raise ScenarioError(f"{path} = {shown}: expected a list of lists of strings")
    elif tp == dict[str, float]:
        ok = type(value) is dict and all(
            type(v) in (int, float) and math.isfinite(v) for v in value.values()
        )
        if not ok:
            raise ScenarioError(f"{path} = {shown}: expected a table of name = number")
        value = {k: float(v) for k, v in value.items()}
    if "choices" in meta and value not in meta["choices"]:
        allowed = ", ".join(meta["choices"])
        raise ScenarioError(
            f"{path} = {shown}: allowed are {allowed}{_did_you_mean(str(value), meta['choices'])}"
        )
    if "min" in meta and value < meta["min"]:
        raise ScenarioError(f"{path} = {shown}: must be >= {meta['min']}")
    if "max" in meta and value > meta["max"]:
        raise ScenarioError(f"{path} = {shown}: must be <= {meta['max']}")
    if "above" in meta and value <= meta["above"]:
        raise ScenarioError(f"{path} = {shown}: must be > {meta['above']}")
    if meta.get("segment"):
        for name in value if isinstance(value, list) else [value]:
            try:
                topics.validate_segment(path, name)
            except topics.TopicError as exc:
                raise ScenarioError(str(exc)) from None
    return value


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, bool) else str(value).lower()
    return text if len(text) <= 60 else text[:57] + "..."


def _build(data: Mapping[str, Any]) -> Scenario:
    if not isinstance(data, Mapping):
        raise ScenarioError("a scenario must be a TOML table of sections")
    sections = {}
    for name, section in data.items():
        if name not in SECTIONS:
            raise ScenarioError(
                f"unknown section [{name}]: allowed are "
                f"{', '.join(SECTIONS)}{_did_you_mean(name, list(SECTIONS))}"
            )
        if not isinstance(section, Mapping):
            raise ScenarioError(f"{name} must be a table ([{name}]), got {_show(section)}")
        fields = {f.name: f for f in dataclasses.fields(SECTIONS[name])}
        values = {}
        for key, value in section.items():
            if key not in fields:
                raise ScenarioError(
                    f"unknown key {name}.{key}: allowed are {', '.join(fields)}"
                    f"{_did_you_mean(key, list(fields))}"
                )
            values[key] = _check(f"{name}.{key}", value, fields[key])
        sections[name] = SECTIONS[name](**values)
    scenario = Scenario(**sections)
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
                f"{_did_you_mean(name, CLASSES)}"
            )
        if share < 0:
            raise ScenarioError(f"fleet.mix.{name} = {share}: shares must be >= 0")
    if sum(s.fleet.mix.values()) <= 0:
        raise ScenarioError("fleet.mix: shares must add up to more than 0")
    try:
        s.profiles()
    except DeviceError as exc:
        raise ScenarioError(str(exc)) from None
    _check_attack(s)
    regions = s.fleet.regions
    if not regions:
        raise ScenarioError("fleet.regions = []: name at least one region")
    if len(set(regions)) != len(regions):
        raise ScenarioError(f"fleet.regions = {_show(regions)}: names must be unique")
    seen: set[str] = set()
    for group in s.network.partitions:
        for region in group:
            if region not in regions:
                raise ScenarioError(
                    f"network.partitions: unknown region {region!r}; regions are "
                    f"{', '.join(regions)}{_did_you_mean(region, regions)}"
                )
            if region in seen:
                raise ScenarioError(f"network.partitions: region {region!r} is in two groups")
            seen.add(region)


def _check_attack(s: Scenario) -> None:
    """The [sybil] section and the defenses against it fit the workload."""
    learn, sybil, workload = s.learn, s.sybil, s.fleet.workload
    if learn.trim >= 0.5:
        raise ScenarioError(f"learn.trim = {learn.trim}: must be < 0.5 (it is cut from each end)")
    if learn.aggregator != "mean" and learn.strategy != "fedavg":
        raise ScenarioError(
            f"learn.aggregator = {learn.aggregator!r}: robust aggregation runs on the fedavg "
            f'server; learn.strategy is {learn.strategy!r} (set learn.strategy = "fedavg")'
        )
    if sybil.count == 0:
        return
    allowed = BEHAVIOUR_WORKLOADS[sybil.behaviour]
    if workload not in allowed:
        raise ScenarioError(
            f"sybil.behaviour = {sybil.behaviour!r} attacks the {' or '.join(allowed)} "
            f"workload, but fleet.workload = {workload!r}"
        )
    if workload == "learn" and learn.strategy == "allreduce":
        raise ScenarioError(
            'sybil.count > 0 with learn.strategy = "allreduce": a ring all-reduce admits '
            "no outsiders; attack fedavg or gossip"
        )
    if sybil.behaviour == "eclipse":
        if sybil.victim >= s.fleet.count:
            raise ScenarioError(
                f"sybil.victim = {sybil.victim}: no such agent (fleet.count = {s.fleet.count})"
            )
        if workload == "learn" and learn.strategy != "gossip":
            raise ScenarioError(
                'sybil.behaviour = "eclipse" surrounds a gossip peer view; '
                'learn.strategy must be "gossip"'
            )
        if s.gossip.fanout > sybil.count:
            raise ScenarioError(
                f'sybil.behaviour = "eclipse": the victim\'s view holds only the '
                f"{sybil.count} Sybils, fewer than gossip.fanout = {s.gossip.fanout}"
            )
    if sybil.behaviour == "label-flip" and sybil.source_class == sybil.target_class:
        raise ScenarioError(
            f"sybil.target_class = {sybil.target_class}: must differ from sybil.source_class"
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
            return path.read_text(encoding="utf-8"), str(path)
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
        f"{', '.join(names)}{_did_you_mean(str(source), names)}"
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
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # bare words: --set gossip.protocol=pull
    return section, key, value


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
