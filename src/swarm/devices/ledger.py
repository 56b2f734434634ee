"""Where a fleet's joules went, by device class and by region, and the carbon they cost.

The ledger reads every metered device at each round boundary: what a device spent since
the last reading is charged to its class and region, and priced at its region's carbon
intensity at that moment (`Grid`). A device replaced by a new core (back from a failure,
or a late joiner) keeps what its old meter spent: the ledger notices the new meter, books
the old one's last joules and keeps its categories. So the totals by class, by region
and by category are one sum sorted three ways, and they add up to the meters' own.

Power is the ledger's too. A meter books a training's joules when it starts, however
long it runs; the ledger draws a device's joules above idle (compute and radio alike) at
no more than its `rate` in watts, the rest waiting in a backlog for the next intervals,
so that a device capped by its region's feed (`grid.cap_w`) draws its work over the
longer time the throttle gives it. `power_w` is each region's facility draw over the last
interval (mains classes through the PUE). Without a rate, joules are drawn as booked.
Sans-I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from swarm.devices.energy import CATEGORIES, EnergyMeter
from swarm.devices.grid import Grid

__all__ = ["Ledger", "merge"]


class Ledger:
    """Joules and grams of CO2e, by class and by region, for one process's devices."""

    def __init__(
        self,
        grid: Grid,
        kinds: Sequence[str],
        regions: Sequence[int],
        region_names: Sequence[str],
        mains: Mapping[str, bool],
    ) -> None:
        self.grid = grid
        self.kinds = kinds  # by agent index
        self.regions = regions
        self.region_names = region_names
        self.mains = mains  # by class: drawn through the facility's PUE
        # index -> (meter, its categories when last read)
        self._seen: dict[int, tuple[EnergyMeter, dict[str, float]]] = {}
        self._retired: dict[tuple[str, int], dict[str, float]] = {}  # categories of old meters
        self.grams: dict[tuple[str, int], float] = {}  # (class, region) -> gCO2e
        self.rate: dict[int, float] = {}  # index -> watts above idle it may draw (none: any)
        self._backlog: dict[int, float] = {}  # index -> joules booked, not yet drawn
        self.power_w: dict[int, float] = {}  # region -> facility watts, last interval
        self.peak_w: dict[int, float] = {}  # region -> the highest of those so far
        self.co2_rate: dict[int, float] = {}  # region -> grams of CO2e per second, the same
        self._last_t = 0.0

    def read(self, t: float, meters: Iterable[tuple[int, EnergyMeter]]) -> None:
        """Draw what every meter spent since the last reading (within its rate), price it
        at the intensity of the interval's start, and work out each region's power."""
        since = self._last_t
        span = t - since
        drawn: dict[int, float] = {}  # region -> facility joules this interval
        emitted: dict[int, float] = {}  # region -> grams this interval
        for index, meter in meters:
            seen = self._seen.get(index)
            before: dict[str, float] | None = None
            if seen is not None:
                old, before = seen
                if old is not meter:  # a new core for this device: close the old meter
                    self._take(index, old.by_category(), before, span, since, drawn, emitted)
                    self._retire(index, old)
                    before = None
            now = meter.by_category()
            self._take(index, now, before, span, since, drawn, emitted)
            self._seen[index] = (meter, now)
        if span > 0:
            self.power_w = {region: joules / span for region, joules in drawn.items()}
            self.co2_rate = {region: grams / span for region, grams in emitted.items()}
            for region, watts in self.power_w.items():
                self.peak_w[region] = max(self.peak_w.get(region, 0.0), watts)
        self._last_t = t

    def _take(
        self,
        index: int,
        now: dict[str, float],
        before: dict[str, float] | None,
        span: float,
        since: float,
        drawn: dict[int, float],
        emitted: dict[int, float],
    ) -> None:
        """One device's interval: its idle joules at once, the rest through its backlog;
        added to its region's facility joules (`drawn`) and grams (`emitted`)."""
        idle = now["idle"] - (before["idle"] if before is not None else 0.0)
        active = math.fsum(now[c] for c in CATEGORIES if c != "idle")
        if before is not None:
            active -= math.fsum(before[c] for c in CATEGORIES if c != "idle")
        backlog = self._backlog.get(index, 0.0) + active
        rate = self.rate.get(index)
        taken = backlog if rate is None else min(backlog, rate * span)
        self._backlog[index] = backlog - taken
        joules = idle + taken
        region = self.regions[index]
        emitted[region] = emitted.get(region, 0.0) + self._book(index, joules, since)
        factor = self.grid.pue if self.mains.get(self.kinds[index], False) else 1.0
        drawn[region] = drawn.get(region, 0.0) + joules * factor

    @property
    def metered(self) -> bool:
        """Whether any device of this process has a meter (learn, mesh)."""
        return bool(self._seen)

    def flush(self, t: float) -> None:
        """The end of the run: what is still in the backlogs is priced at `t`."""
        for index, joules in self._backlog.items():
            self._book(index, joules, t)
        self._backlog = {}

    def _book(self, index: int, joules: float, t: float) -> float:
        """Price `joules` of device `index` at `t`; the grams."""
        if joules <= 0.0:
            return 0.0
        kind, region = self.kinds[index], self.regions[index]
        grams = self.grid.grams(joules, region, t, self.mains.get(kind, False))
        key = (kind, region)
        self.grams[key] = self.grams.get(key, 0.0) + grams
        return grams

    def _retire(self, index: int, meter: EnergyMeter) -> None:
        key = (self.kinds[index], self.regions[index])
        store = self._retired.setdefault(key, dict.fromkeys(CATEGORIES, 0.0))
        for category, joules in meter.by_category().items():
            store[category] += joules

    def partial(self) -> dict[str, Any]:
        """Joules by category and grams, per (class, region name), additive over processes;
        and each region's peak power (the maximum over processes is a lower bound of the
        fleet's, exact for one process)."""
        cells: dict[tuple[str, int], dict[str, float]] = {}
        for key, spent in self._retired.items():
            cells[key] = dict(spent)
        for index, (meter, _) in self._seen.items():
            key = (self.kinds[index], self.regions[index])
            cell = cells.setdefault(key, dict.fromkeys(CATEGORIES, 0.0))
            for category, joules in meter.by_category().items():
                cell[category] += joules
        return {
            "cells": [
                [kind, self.region_names[region], cell, self.grams.get((kind, region), 0.0)]
                for (kind, region), cell in sorted(cells.items())
            ],
            "peak_w": {self.region_names[r]: w for r, w in sorted(self.peak_w.items())},
        }


def merge(
    parts: Sequence[Mapping[str, Any]], grid: Grid, region_names: Sequence[str]
) -> dict[str, Any]:
    """`results.energy` from every process's ledger: totals by class and by region."""
    by_class: dict[str, dict[str, float]] = {}
    by_region: dict[str, dict[str, float]] = {}
    for part in parts:
        for kind, region, cell, grams in part["cells"]:
            for table, key in ((by_class, kind), (by_region, region)):
                entry = table.setdefault(
                    key, {"total_j": 0.0, **dict.fromkeys(CATEGORIES, 0.0), "co2_g": 0.0}
                )
                for category in CATEGORIES:
                    entry[category] += cell[category]
                entry["total_j"] += math.fsum(cell[c] for c in CATEGORIES)
                entry["co2_g"] += grams
    total = math.fsum(e["total_j"] for e in by_class.values())
    caps: dict[str, Any] = {}
    for part in parts:
        for region, f in part.get("throttle", {}).items():
            peak = max(p.get("peak_w", {}).get(region, 0.0) for p in parts)
            caps[region] = {"cap_w": grid.cap_w.get(region), "throttle": f, "peak_w": peak}
    extra = {"caps": caps} if caps else {}
    return extra | {
        "total_j": total,
        "co2_g": math.fsum(e["co2_g"] for e in by_class.values()),
        "by_class": dict(sorted(by_class.items())),
        "by_region": {name: by_region[name] for name in region_names if name in by_region},
        "intensity_g_per_kwh": {
            name: grid.base[i] for i, name in enumerate(region_names) if name in by_region
        },
        "profile": grid.profile,
        "pue": grid.pue,
    }
