"""`swarm decode`: raw payloads from the wire, shown as JSON, for standard tools.

Every payload becomes one JSON object per line: `{"topic": ..., "envelope": {...}}`, or
`{"topic": ..., "malformed": {"reason": ..., "message": ...}}` when it is not a valid
envelope (the same verdict an agent reaches before counting it in `dropped_malformed`).
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable, Iterator
from typing import Any

from swarm import wire, workloads

# Every registered workload's message kinds, known from the specs alone (no workload is
# imported), so a valid message of any workload decodes as such.
workloads.kinds()

__all__ = ["describe", "from_hex_lines", "to_line"]

_HEX = frozenset(string.hexdigits)


def describe(payload: bytes, topic: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {} if topic is None else {"topic": topic}
    try:
        out["envelope"] = wire.envelope_to_dict(wire.decode(payload))
    except wire.MalformedMessage as exc:
        out["malformed"] = {"reason": exc.reason, "message": str(exc)}
    return out


def to_line(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False)


def from_hex_lines(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Lines of `[topic ]HEX` (what `mosquitto_sub -F '%t %x'` prints) -> records."""
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        topic, _, hexpart = line.rpartition(" ")
        if not hexpart or not set(hexpart) <= _HEX or len(hexpart) % 2:
            yield {
                "line": number,
                "malformed": {"reason": "not-hex", "message": "expected [topic ]HEX"},
            }
            continue
        yield describe(bytes.fromhex(hexpart), topic or None)
