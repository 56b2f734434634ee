"""The workload registry: one line per workload, name -> "module:attribute" of its spec.

A spec (`WorkloadSpec`) is light: importing it loads no scikit-learn or city model. The
heavy workload class it names is imported only when a run of that workload is built
(`load`). A new workload is a package under `swarm/workloads/` with a spec, plus one
line in `REGISTRY`. A workload that lives outside swarm is one entry in the environment
variable `SWARM_WORKLOADS` (`name=module:attribute`, comma-separated), which the worker
processes of a sharded run inherit, or an entry point in the group `swarm.workloads`.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
from collections.abc import Mapping
from dataclasses import is_dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from swarm.workloads.base import Workload, WorkloadSpec

__all__ = [
    "ENVIRONMENT",
    "REGISTRY",
    "UnknownWorkload",
    "kinds",
    "load",
    "names",
    "register",
    "spec",
]

ENVIRONMENT = "SWARM_WORKLOADS"
NAME = re.compile(r"[a-z][a-z0-9_-]*")  # a workload name is also a scenario section's

REGISTRY: dict[str, str] = {
    "gossip": "swarm.workloads.gossip:SPEC",
    "learn": "swarm.workloads.learn:SPEC",
    "hazards": "swarm.workloads.hazards:SPEC",
    "mesh": "swarm.workloads.mesh:SPEC",
}


class UnknownWorkload(LookupError):
    """A workload name that is not registered, or whose spec cannot be loaded."""


def _resolve(target: str) -> object:
    module, _, attribute = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise UnknownWorkload(f"cannot load {target!r}: {exc}") from None
    except Exception as exc:  # a plugin module may fail in any way while it is imported
        raise UnknownWorkload(f"cannot load {target!r}: {type(exc).__name__}: {exc}") from None


@functools.cache
def _entry_points() -> tuple[tuple[str, str], ...]:
    """Installed plugins. Reading every package's metadata is slow and the registry is
    asked every round, so it is read once per process."""
    return tuple((ep.name, ep.value) for ep in entry_points(group="swarm.workloads"))


def _plugins() -> list[tuple[str, str, str]]:
    """Workloads from outside swarm, as (name, target, where it was declared)."""
    found = [(name, value, f"entry point {name!r}") for name, value in _entry_points()]
    for item in filter(None, (x.strip() for x in os.environ.get(ENVIRONMENT, "").split(","))):
        name, _, target = item.partition("=")
        if not name.strip() or ":" not in target:
            raise UnknownWorkload(
                f"{ENVIRONMENT}: {item!r} is not name=module:attribute "
                "(e.g. max=my_package.max_gossip:SPEC)"
            )
        found.append((name.strip(), target.strip(), ENVIRONMENT))
    return found


def _check_name(name: str, source: str) -> None:
    if not NAME.fullmatch(name):
        raise UnknownWorkload(
            f"{source}: workload name {name!r} must be lowercase letters, digits, "
            "'-' or '_', starting with a letter"
        )


def _registry() -> dict[str, str]:
    registry = dict(REGISTRY)
    for name, target, source in _plugins():
        _check_name(name, source)
        if name in REGISTRY:
            raise UnknownWorkload(
                f"{source}: {name!r} is a built-in workload; give yours another name"
            )
        registry[name] = target
    return registry


def register(name: str, target: str) -> None:
    """Add (or replace) a workload: `target` is "module:attribute" of its spec."""
    if not isinstance(target, str) or ":" not in target:
        raise ValueError(f"register({name!r}, {target!r}): target must be 'module:attribute'")
    try:
        _check_name(name, "register")
    except UnknownWorkload as exc:
        raise ValueError(str(exc)) from None
    REGISTRY[name] = target


def names() -> tuple[str, ...]:
    return tuple(_registry())


def spec(name: str) -> WorkloadSpec:
    """The spec of workload `name`; its message kinds are registered with the codec."""
    registry = _registry()
    if name not in registry:
        raise UnknownWorkload(f"no workload {name!r}; registered: {', '.join(registry)}")
    try:
        found = _resolve(registry[name])
    except UnknownWorkload as exc:
        raise UnknownWorkload(f"workload {name!r}: {exc}") from None
    from swarm import wire

    # Checked by shape: importing `base` here would close a cycle through `scenario`.
    if getattr(found, "name", None) != name or not isinstance(getattr(found, "kinds", 0), tuple):
        raise UnknownWorkload(f"{registry[name]} is not the WorkloadSpec of {name!r}")
    checked = cast("WorkloadSpec", found)
    where = registry[name]
    if not isinstance(checked.factory, str) or ":" not in checked.factory:
        raise UnknownWorkload(f"{where}: factory {checked.factory!r} is not 'module:Class'")
    section = checked.section
    if section is not None and not (isinstance(section, type) and is_dataclass(section)):
        raise UnknownWorkload(f"{where}: section {section!r} is not a dataclass")
    if not callable(checked.check):
        raise UnknownWorkload(f"{where}: check {checked.check!r} is not callable")
    for kind in checked.kinds:
        if type(kind) is not str or not kind or kind in wire.FLEET_KINDS:
            raise UnknownWorkload(
                f"{where}: message kind {kind!r} is not a new non-empty name "
                f"(the fleet's own kinds are {', '.join(wire.FLEET_KINDS)})"
            )
    codes = checked.codes
    if not isinstance(codes, Mapping) or not set(codes) <= set(checked.kinds):
        raise UnknownWorkload(f"{where}: codes {codes!r} is not a map of some of its kinds")
    for kind in checked.kinds:
        try:
            wire.register_kind(kind, codes.get(kind))
        except wire.WireError as exc:
            raise UnknownWorkload(f"{where}: {exc}") from None
    return checked


def load(name: str) -> type[Workload]:
    """The class that implements workload `name` (imports its heavy modules)."""
    factory = spec(name).factory
    cls = _resolve(factory)
    if not isinstance(cls, type):
        raise UnknownWorkload(f"{factory} is not a class implementing the Workload protocol")
    return cast("type[Workload]", cls)


def kinds() -> dict[str, tuple[str, ...]]:
    """Every registered workload's message kinds (and each one registered with the codec)."""
    return {name: spec(name).kinds for name in names()}
