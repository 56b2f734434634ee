"""swarm: a deterministic fleet emulator.

Thousands of asyncio agents exchange messages over an MQTT-semantics broker (embedded,
in virtual time, or a real one), running sans-I/O gossip and consensus cores.

The public face is the short list below; each name is imported on first use, so that
`import swarm.wire` (or any low layer) does not pull in the fleet and its workloads.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("swarm-fleet")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+src"

if TYPE_CHECKING:
    from swarm.fleet import Fleet
    from swarm.run.api import sweep
    from swarm.run.runner import run_scenario
    from swarm.scenario import Scenario, ScenarioError, from_dict
    from swarm.scenario import load as load_scenario
    from swarm.workloads.base import BuildContext, Workload, WorkloadSpec

# public name -> (module, attribute)
_PUBLIC = {
    "Scenario": ("swarm.scenario", "Scenario"),
    "ScenarioError": ("swarm.scenario", "ScenarioError"),
    "load_scenario": ("swarm.scenario", "load"),
    "from_dict": ("swarm.scenario", "from_dict"),
    "run_scenario": ("swarm.run.runner", "run_scenario"),
    "sweep": ("swarm.run.api", "sweep"),
    "Fleet": ("swarm.fleet", "Fleet"),
    "Workload": ("swarm.workloads.base", "Workload"),
    "WorkloadSpec": ("swarm.workloads.base", "WorkloadSpec"),
    "BuildContext": ("swarm.workloads.base", "BuildContext"),
}

__all__ = [
    "BuildContext",
    "Fleet",
    "Scenario",
    "ScenarioError",
    "Workload",
    "WorkloadSpec",
    "__version__",
    "from_dict",
    "load_scenario",
    "run",
    "run_scenario",
    "sweep",
]


def __getattr__(name: str) -> Any:
    if name == "run":  # the package swarm.run, whose module object runs a scenario
        return importlib.import_module("swarm.run")
    if name not in _PUBLIC:
        raise AttributeError(f"module 'swarm' has no attribute {name!r}")
    module, attribute = _PUBLIC[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
