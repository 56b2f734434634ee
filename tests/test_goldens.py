"""Every built-in scenario gives the bytes it gave when the hashes were recorded.

A refactor must not change what a seed produces: metrics.jsonl, events.jsonl and the
summary's simulated results of each built-in scenario, for two seeds, hash as recorded in
tests/goldens/hashes.json (`python tests/goldens/record.py` rewrites them, for a change
that means to alter behaviour).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "goldens"))
import record

RECORDED = json.loads(record.HASHES.read_text())


def test_every_builtin_scenario_and_seed_has_a_recorded_hash() -> None:
    assert sorted(RECORDED["hashes"]) == sorted(f"{n}/{s}" for n, s in record.cases())


@pytest.mark.parametrize(("name", "seed"), record.cases())
def test_output_is_byte_identical_to_the_recorded_run(name: str, seed: int) -> None:
    if RECORDED["versions"] != record.versions():
        pytest.skip(
            f"hashes recorded with {RECORDED['versions']}, installed {record.versions()}: "
            "rerun `python tests/goldens/record.py` on the commit before your change"
        )
    assert record.digest(name, seed) == RECORDED["hashes"][f"{name}/{seed}"]
