"""The workload registry: one line per workload, name -> "module:attribute" of its spec.

A spec (`WorkloadSpec`) is light: importing it loads no scikit-learn or city model. The
heavy workload class it names is imported only when a run of that workload is built
(`load`). A new workload is a package under `swarm/workloads/` with a spec, plus one
line in `REGISTRY`. A workload that lives outside swarm is one entry in the environment
variable `SWARM_WORKLOADS` (`name=module:attribute`, comma-separated), which the worker
processes of a sharded run inherit, or an entry point in the group `swarm.workloads`.
"""

from __future__ import annotations

import importlib
import os
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


def _plugins() -> dict[str, str]:
    """Workloads from outside swarm: entry points, then the environment variable."""
    found = {ep.name: ep.value for ep in entry_points(group="swarm.workloads")}
    for item in filter(None, (x.strip() for x in os.environ.get(ENVIRONMENT, "").split(","))):
        name, _, target = item.partition("=")
        if not name.strip() or ":" not in target:
            raise UnknownWorkload(
                f"{ENVIRONMENT}: {item!r} is not name=module:attribute "
                "(e.g. max=my_package.max_gossip:SPEC)"
            )
        found[name.strip()] = target.strip()
    return found


def _registry() -> dict[str, str]:
    return REGISTRY | {k: v for k, v in _plugins().items() if k not in REGISTRY}


def register(name: str, target: str) -> None:
    """Add (or replace) a workload: `target` is "module:attribute" of its spec."""
    if not name or not isinstance(target, str) or ":" not in target:
        raise ValueError(f"register({name!r}, {target!r}): need a name and 'module:attribute'")
    REGISTRY[name] = target


def names() -> tuple[str, ...]:
    return tuple(_registry())


def spec(name: str) -> WorkloadSpec:
    """The spec of workload `name`; its message kinds are registered with the codec."""
    registry = _registry()
    if name not in registry:
        raise UnknownWorkload(f"no workload {name!r}; registered: {', '.join(registry)}")
    found = _resolve(registry[name])
    from swarm import wire

    # Checked by shape: importing `base` here would close a cycle through `scenario`.
    if getattr(found, "name", None) != name or not isinstance(getattr(found, "kinds", 0), tuple):
        raise UnknownWorkload(f"{registry[name]} is not the WorkloadSpec of {name!r}")
    checked = cast("WorkloadSpec", found)
    for kind in checked.kinds:
        wire.register_kind(kind)
    return checked


def load(name: str) -> type[Workload]:
    """The class that implements workload `name` (imports its heavy modules)."""
    cls: type[Workload] = _resolve(spec(name).factory)  # type: ignore[assignment]
    return cls


def kinds() -> dict[str, tuple[str, ...]]:
    """Every registered workload's message kinds (and each one registered with the codec)."""
    return {name: spec(name).kinds for name in names()}
