"""The recorder: a subscriber that writes the metrics rows and events of a run as JSON lines.

On the embedded broker both files are byte-identical for one scenario and seed. On a
real broker anyone who may publish on the run's topics could inject rows, so the
recorder writes only the payloads its own observer announced (`expect`) and counts
everything else in `forged`: a forged row can neither end the run nor become a result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, TextIO

from swarm import wire

__all__ = ["EVENT", "METRICS", "Recorder"]

METRICS, EVENT = "metrics", "event"  # the fleet's own kinds (wire.FLEET_KINDS)


@dataclass
class Recorder:
    """Keeps the rows and events it hears, and writes them to the sinks it was given;
    anything else on its topics is counted in `malformed`."""

    sink: TextIO | None = None
    events_sink: TextIO | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    malformed: int = 0
    forged: int = 0  # well-formed rows or events this run's observer did not publish
    expected: set[bytes] = field(default_factory=set)  # published, not yet heard back
    allowed: set[bytes] = field(default_factory=set)  # may arrive once (an agent's will)

    def expect(self, payload: bytes) -> None:
        """The observer is about to publish `payload`: record it when it arrives."""
        self.expected.add(payload)

    def allow(self, payload: bytes) -> None:
        """The broker may publish `payload` for us (a last will): record it if it comes."""
        self.allowed.add(payload)

    def on_payload(self, topic: str, payload: bytes) -> None:
        try:
            envelope = wire.decode(payload)
        except wire.MalformedMessage:
            self.malformed += 1
            return
        if type(envelope.body) is not dict or envelope.kind not in (METRICS, EVENT):
            self.malformed += 1
            return
        if payload in self.expected:
            self.expected.discard(payload)  # a replay of it later is forged
        elif payload in self.allowed:
            self.allowed.discard(payload)
        else:
            self.forged += 1
            return
        rows, sink = (
            (self.rows, self.sink) if envelope.kind == METRICS else (self.events, self.events_sink)
        )
        rows.append(envelope.body)
        if sink is not None:
            sink.write(json.dumps(envelope.body, sort_keys=True, separators=(",", ":")))
            sink.write("\n")
