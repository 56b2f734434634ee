"""Record (or check) the hashes of every built-in scenario's output for two seeds.

The hashes pin the bytes of metrics.jsonl, events.jsonl and the summary's simulated
results, so a change that should not alter behaviour (a refactor) can prove it did not.
They hold for one set of numeric libraries: `versions` names them, and the test skips
with this file's command when they differ.

    python tests/goldens/record.py          # rewrite tests/goldens/hashes.json
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from swarm.run.runner import run_scenario
from swarm.scenario import builtin_names, load

HERE = Path(__file__).parent
HASHES = HERE / "hashes.json"
SEEDS = (1, 2)
ROUNDS = 20  # enough for every workload to act, attack and record events
# Results measured on the wall clock vary between runs of one seed.
WALL_CLOCK = ("wall_time", "budget_violations", "decision_ms")
LIBRARIES = ("numpy", "scikit-learn", "msgpack")


def versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in LIBRARIES}


def _simulated(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _simulated(v) for k, v in value.items() if k not in WALL_CLOCK}
    if isinstance(value, list):
        return [_simulated(v) for v in value]
    return value


def digest(name: str, seed: int) -> dict[str, str]:
    """sha256 of one short run's metrics, events and simulated results."""
    scenario = load(name, [f"run.rounds={ROUNDS}", "run.duration=0"], **{"run.seed": seed})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        summary = run_scenario(scenario, out_dir=out)
        results = json.dumps(_simulated(summary["results"]), sort_keys=True, default=repr)
        return {
            "metrics": hashlib.sha256((out / "metrics.jsonl").read_bytes()).hexdigest(),
            "events": hashlib.sha256((out / "events.jsonl").read_bytes()).hexdigest(),
            "results": hashlib.sha256(results.encode()).hexdigest(),
        }


def cases() -> list[tuple[str, int]]:
    return [(name, seed) for name in builtin_names() for seed in SEEDS]


def main() -> int:
    table = {f"{name}/{seed}": digest(name, seed) for name, seed in cases()}
    HASHES.write_text(
        json.dumps({"versions": versions(), "hashes": table}, indent=1, sort_keys=True) + "\n"
    )
    print(f"wrote {len(table)} hashes to {HASHES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
