"""The recorder: a subscriber that writes the metrics rows and events of a run as JSON lines.

On the embedded broker both files are byte-identical for one scenario and seed. On a
real broker anyone who may publish on the run's topics could inject rows, so the
recorder writes only the payloads its own observer announced (`expect`) and counts
everything else in `forged`: a forged row can neither end the run nor become a result.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, TextIO

from swarm import wire

__all__ = ["EVENT", "METRICS", "JsonLines", "Recorder"]

METRICS, EVENT = "metrics", "event"  # the fleet's own kinds (wire.FLEET_KINDS)


class JsonLines:
    """A JSON-lines file that survives a full disk.

    Each line goes to the operating system as it is written. The first write error is kept
    in `error`; the file is cut back to its last whole line and written no more (the
    caller still holds every line in memory, for the summary).
    """

    def __init__(self, file: TextIO | None) -> None:
        self.file = file
        self.error: OSError | None = None
        try:  # a real file is written through its descriptor: no buffer left to fail later
            self._fd: int | None = file.fileno() if file is not None else None
        except (OSError, ValueError):  # io.StringIO and the like
            self._fd = None
        self._whole = 0 if self._fd is None else os.lseek(self._fd, 0, os.SEEK_CUR)

    def write(self, record: dict[str, Any]) -> None:
        if self.file is None or self.error is not None:
            return
        line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
        if self._fd is None:
            self.file.write(line)
            return
        whole = line.encode("utf-8")
        data = whole
        try:
            while data:
                data = data[os.write(self._fd, data) :]
        except OSError as exc:
            self.error = exc
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._whole)
                os.lseek(self._fd, self._whole, os.SEEK_SET)
            return
        self._whole += len(whole)


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

    def __post_init__(self) -> None:
        self._files = {METRICS: JsonLines(self.sink), EVENT: JsonLines(self.events_sink)}

    def note(self, event: dict[str, Any]) -> None:
        """An event about the recording itself (a gap in the rows), written as it is."""
        self.events.append(event)
        self._files[EVENT].write(event)

    @property
    def write_error(self) -> OSError | None:
        """The first error writing metrics.jsonl or events.jsonl, if any."""
        return self._files[METRICS].error or self._files[EVENT].error

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
        (self.rows if envelope.kind == METRICS else self.events).append(envelope.body)
        self._files[envelope.kind].write(envelope.body)
