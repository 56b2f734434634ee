"""`swarm decode` knows every registered message kind in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

from swarm import workloads


def test_a_fresh_decode_knows_one_message_of_every_registered_kind() -> None:
    kinds = sorted({k for ks in workloads.kinds().values() for k in ks} | {"bundle"})
    program = f"""
import json, sys
from swarm import decode, wire  # nothing else: decode alone must know every kind
out = []
for kind in {kinds!r}:
    payload = wire.encode(wire.Envelope(kind, "a1", 0, 0.0, 0, {{"x": 1}}))
    out.append(decode.describe(payload))
loaded = [m for m in sys.modules if m.startswith("swarm.workloads.") and m.endswith(".workload")]
print(json.dumps({{"records": out, "heavy": loaded, "sklearn": "sklearn" in sys.modules}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    found = json.loads(done.stdout)
    assert [r["envelope"]["kind"] for r in found["records"]] == kinds
    assert not any("malformed" in r for r in found["records"])
    # Known from the specs alone: no workload module and no scikit-learn was imported.
    assert found["heavy"] == []
    assert not found["sklearn"]


def test_the_specs_declare_every_kind_the_workloads_register() -> None:
    """Loading every workload adds no kind its spec did not declare (fresh interpreter)."""
    program = """
import json
from swarm import wire, workloads
workloads.kinds()
declared = set(wire.KNOWN_KINDS)
for name in workloads.names():
    workloads.load(name)
print(json.dumps(sorted(set(wire.KNOWN_KINDS) - declared)))
"""
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == []
