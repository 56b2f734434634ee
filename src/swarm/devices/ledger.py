"""Where a fleet's joules went, by device class and by region, and the carbon they cost.

The ledger reads every metered device at each round boundary: what a device spent since
the last reading is charged to its class and region, and priced at its region's carbon
intensity at that moment (`Grid`). A device replaced by a new core (back from a failure,
or a late joiner) keeps what its old meter spent: the ledger notices the new meter, books
the old one's last joules and keeps its categories. So the totals by class, by region
and by category are one sum sorted three ways, and they add up to the meters' own.
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
        self._seen: dict[int, tuple[EnergyMeter, float]] = {}  # index -> (meter, spent read)
        self._retired: dict[tuple[str, int], dict[str, float]] = {}  # categories of old meters
        self.grams: dict[tuple[str, int], float] = {}  # (class, region) -> gCO2e
        self._last_t = 0.0

    def read(self, t: float, meters: Iterable[tuple[int, EnergyMeter]]) -> None:
        """Book what every meter spent since the last reading, at the intensity of the
        interval's start."""
        since = self._last_t
        for index, meter in meters:
            seen = self._seen.get(index)
            before = 0.0
            if seen is not None:
                old, before = seen
                if old is not meter:  # a new core for this device: close the old meter
                    self._book(index, old.spent_j - before, since)
                    self._retire(index, old)
                    before = 0.0
            spent = meter.spent_j
            self._book(index, spent - before, since)
            self._seen[index] = (meter, spent)
        self._last_t = t

    def _book(self, index: int, joules: float, t: float) -> None:
        if joules <= 0.0:
            return
        kind, region = self.kinds[index], self.regions[index]
        grams = self.grid.grams(joules, region, t, self.mains.get(kind, False))
        key = (kind, region)
        self.grams[key] = self.grams.get(key, 0.0) + grams

    def _retire(self, index: int, meter: EnergyMeter) -> None:
        key = (self.kinds[index], self.regions[index])
        store = self._retired.setdefault(key, dict.fromkeys(CATEGORIES, 0.0))
        for category, joules in meter.by_category().items():
            store[category] += joules

    def partial(self) -> dict[str, Any]:
        """Joules by category and grams, per (class, region name): additive over processes."""
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
            ]
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
    return {
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
