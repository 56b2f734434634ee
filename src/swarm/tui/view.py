"""What the dashboard knows about a run, built from batches of a `Source` (no textual).

Panels read a `View`; they never see the source. Series are bounded so a long session
keeps constant memory, and rates are taken over the last few rows that arrived.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from swarm import workloads
from swarm.run.live import Snapshot

__all__ = ["SERIES_POINTS", "View"]

SERIES_POINTS = 600  # rows kept for charts
LOG_LINES = 200  # events kept for the log panel
RATE_ROWS = 10  # rows a rate is taken over


@dataclass
class View:
    info: dict[str, Any]
    rows: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=SERIES_POINTS))
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    status: dict[str, Any] | None = None
    state: str = "starting"
    run_id: str | None = None
    malformed: int = 0
    events_seen: int = 0
    generation: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # events by kind, whole run

    def apply(self, snapshot: Snapshot) -> bool:
        """Fold one batch in; whether anything changed."""
        if snapshot.generation != self.generation:
            self.rows.clear()
            self.events.clear()
            self.counts.clear()
            self.events_seen = 0
            self.generation = snapshot.generation
        changed = bool(snapshot.rows or snapshot.events) or snapshot.state != self.state
        self.rows.extend(snapshot.rows)
        self.events.extend(snapshot.events)
        self.events_seen += len(snapshot.events)
        for event in snapshot.events:
            kind = str(event.get("event", "?"))
            self.counts[kind] = self.counts.get(kind, 0) + 1
        if snapshot.status is not None and snapshot.status != self.status:
            self.status, changed = snapshot.status, True
            # An attached run describes itself: what the scenario says wins.
            self.info = self.info | dict(snapshot.status.get("info") or {})
        self.state, self.run_id, self.malformed = (
            snapshot.state,
            snapshot.run_id,
            snapshot.malformed,
        )
        return changed

    @property
    def last(self) -> dict[str, Any]:
        return self.rows[-1] if self.rows else {}

    def series(self, key: str) -> list[float]:
        """The numeric values of `key` over the kept rows (None and missing skipped)."""
        return [float(v) for r in self.rows if type(v := r.get(key)) is int or type(v) is float]

    def rate(self, key: str, window: int = RATE_ROWS) -> float | None:
        """Per simulated second over the last `window` rows: bursty traffic reads steadily."""
        if len(self.rows) < 2:
            return None
        a, b = self.rows[-min(window, len(self.rows))], self.rows[-1]
        dt = b.get("time", 0) - a.get("time", 0)
        if dt <= 0 or key not in a or key not in b:
            return None
        return (b[key] - a[key]) / dt

    @property
    def workload(self) -> str | None:
        status = self.status or {}
        return status.get("workload") or self.info.get("workload")

    @property
    def panels(self) -> tuple[str, ...]:
        """The workload panels this run asks for (its spec names them; see swarm.workloads)."""
        named = self.info.get("panels")
        if isinstance(named, list | tuple):
            return tuple(str(p) for p in named)
        workload = self.workload
        if workload in workloads.names():
            return workloads.spec(workload).panels
        return ()

    @property
    def sybils(self) -> int:
        status = self.status or {}
        return int(status.get("sybils", {}).get("reserved", 0) or self.info.get("sybils", 0) or 0)
