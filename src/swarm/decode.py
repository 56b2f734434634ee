"""`swarm decode`: raw payloads from the wire, shown as JSON, for standard tools.

Every payload becomes one JSON object per line: `{"topic": ..., "envelope": {...}}`, or
`{"topic": ..., "malformed": {"reason": ..., "message": ...}}` when it is not a valid
envelope (the same verdict an agent reaches before counting it in `dropped_malformed`).
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Iterable, Iterator
from typing import Any

from swarm import seal, wire, workloads

__all__ = ["describe", "from_hex_lines", "know_every_kind", "to_line"]

_HEX = frozenset(string.hexdigits)
_known_for: str | None = None  # the SWARM_WORKLOADS value whose kinds are registered


def know_every_kind() -> None:
    """Register every workload's message kinds, from the specs alone (no workload module
    is imported), so a valid message of any workload decodes as such.

    Done again when SWARM_WORKLOADS changes; a broken entry raises `UnknownWorkload`.
    Kinds stay known once registered (a kind of a plugin since removed still decodes),
    and a workload added with `workloads.register` is known from the next change or an
    explicit call of `swarm.workloads.kinds()`.
    """
    global _known_for
    variable = os.environ.get(workloads.ENVIRONMENT, "")
    if variable != _known_for:
        workloads.kinds()
        _known_for = variable


know_every_kind()  # on import too: `wire.encode` of any workload's kind works after it


def describe(payload: bytes, topic: str | None = None) -> dict[str, Any]:
    know_every_kind()
    out: dict[str, Any] = {} if topic is None else {"topic": topic}
    try:
        envelope = wire.decode(payload)
        inner = seal.unwrap(payload)
        if inner is not payload:  # a fleet message on a real broker: show what it carries
            out["sealed"] = {"client": envelope.body[0], "counter": envelope.body[1]}
            envelope = wire.decode(inner)
        out["envelope"] = wire.envelope_to_dict(envelope)
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
