"""The electricity behind each region: its carbon intensity over the day, and a PUE.

A region draws from a named grid (`grids.toml`, every figure with its source) or from an
intensity given in the scenario. With the `solar` profile the intensity dips around the
region's local noon, as solar generation displaces fossil plants: at hour h of the local
day it is base x (1 - solar_share x max(0, sin(pi (h - 6) / 12))), lowest at 12:00 and
the base from 18:00 to 06:00. The local hour follows the simulated clock from
`grid.start_h` (UTC at round 0) and the region's `grid.offset_h`. A region may give its own
day instead (`grid.hourly`): 24 factors on its base intensity, one per local hour.

Mains-powered classes (a datacenter's GPUs) draw through a facility whose PUE multiplies
what they spend; battery devices charge at home, PUE 1.

A region may have a power cap (`grid.cap_w`: a datacenter's feed, a city's capacity), on
its devices' facility draw. It binds by throttling, the way power capping by frequency
scaling does: every device of the region computes at a share f of its speed, drawing f
of its power above idle, with f such that the region's worst case (every device idle plus
at full throttled draw) fits under the cap. The work takes 1/f as long for the same
joules (no efficiency gain from lower clocks is modelled). A cap below the region's idle
draw leaves nothing to run on: refused. Sans-I/O.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["DEFAULT_PUE", "JOULES_PER_KWH", "PROFILES", "CapError", "Grid", "grids", "throttles"]

JOULES_PER_KWH = 3.6e6
# Uptime Institute, Global Data Center Survey 2023: the industry's average annual power
# usage effectiveness (total site power over IT power) stood at 1.58 in 2023.
DEFAULT_PUE = 1.58
PROFILES = ("flat", "solar")


@cache
def grids() -> dict[str, float]:
    """The packaged grids: name -> lifecycle gCO2e per kWh."""
    text = (resources.files("swarm.devices") / "grids.toml").read_text("utf-8")
    return {name: float(t["intensity_g_per_kwh"]) for name, t in tomllib.loads(text).items()}


@dataclass(frozen=True)
class Grid:
    """Per region (by index): base intensity (g/kWh) and UTC offset (hours); the profile."""

    base: Sequence[float]
    offset_h: Sequence[float]
    profile: str = "flat"
    solar_share: float = 0.0
    start_h: float = 0.0
    pue: float = DEFAULT_PUE
    cap_w: Mapping[str, float] = field(default_factory=dict)  # region name -> watts
    hourly: Mapping[int, Sequence[float]] = field(default_factory=dict)  # region -> 24 factors

    @classmethod
    def of(cls, regions: Sequence[str], section: Any) -> Grid:
        """The grid a scenario's `[grid]` section describes for its regions."""
        table = grids()
        base = []
        for name in regions:
            if name in section.intensity:
                base.append(float(section.intensity[name]))
            else:
                base.append(table[section.regions.get(name, section.default)])
        offsets = [float(section.offset_h.get(name, 0.0)) for name in regions]
        return cls(
            tuple(base),
            tuple(offsets),
            section.profile,
            section.solar_share,
            section.start_h,
            section.pue,
            dict(section.cap_w),
            {regions.index(name): tuple(v) for name, v in section.hourly.items()},
        )

    def local_hour(self, region: int, t: float) -> float:
        """The hour of the day in `region` at simulated second `t` (0 <= h < 24)."""
        return (self.start_h + self.offset_h[region] + t / 3600.0) % 24.0

    def intensity(self, region: int, t: float) -> float:
        """gCO2e per kWh drawn in `region` at simulated second `t`."""
        base = self.base[region]
        table = self.hourly.get(region)
        if table is not None:  # the region's own day, hour by local hour
            return base * table[int(self.local_hour(region, t)) % 24]
        if self.profile == "flat" or self.solar_share == 0.0:
            return base
        hour = self.local_hour(region, t)
        sun = max(0.0, math.sin(math.pi * (hour - 6.0) / 12.0))
        return base * (1.0 - self.solar_share * sun)

    def grams(self, joules: float, region: int, t: float, mains: bool) -> float:
        """CO2e of `joules` a device spent in `region` at `t` (through the PUE if mains)."""
        factor = self.pue if mains else 1.0
        return joules * factor / JOULES_PER_KWH * self.intensity(region, t)


class CapError(ValueError):
    """A power cap no device of the region could run under; the message names it."""


def throttles(
    caps: Mapping[str, float],
    regions: Sequence[str],
    devices: Sequence[tuple[int, float, float, bool]],
    pue: float,
) -> dict[int, float]:
    """The throttle f of every capped region (by index), from its devices: (region, idle
    W, active W, mains). 1 when the cap does not bind."""
    out: dict[int, float] = {}
    for name, cap in caps.items():
        region = regions.index(name)
        mine = [d for d in devices if d[0] == region]
        idle = math.fsum(d[1] * (pue if d[3] else 1.0) for d in mine)
        extra = math.fsum((d[2] - d[1]) * (pue if d[3] else 1.0) for d in mine)
        if cap <= idle:
            raise CapError(
                f"grid.cap_w.{name} = {cap:g} W: not above the {idle:g} W its {len(mine)} "
                "devices draw idle; nothing could run (a larger cap, or fewer devices there)"
            )
        # a hair under the exact share, so that rounding never takes a row over the cap
        out[region] = 1.0 if extra <= 0 else min(1.0, (cap - idle) / extra * (1 - 1e-9))
    return out


def check(regions: Sequence[str], section: Any) -> list[str]:
    """What is wrong with a `[grid]` section for these regions, one line each."""
    problems = []
    known = grids()
    for key in ("regions", "intensity", "offset_h", "cap_w", "hourly"):
        table: Mapping[str, Any] = getattr(section, key)
        for name in table:
            if name not in regions:
                problems.append(
                    f"grid.{key}.{name}: the fleet has no region {name!r}; its regions are "
                    f"{', '.join(regions)}"
                )
    for name, grid in {**section.regions, "": section.default}.items():
        if grid not in known:
            key = f"grid.regions.{name}" if name else "grid.default"
            problems.append(f"{key} = {grid!r}: no such grid; known are {', '.join(known)}")
    for name, value in section.intensity.items():
        if not 0.0 <= value <= 5000.0:
            problems.append(f"grid.intensity.{name} = {value:g}: must be 0..5000 gCO2/kWh")
    for name, hours in section.hourly.items():
        if len(hours) != 24:
            problems.append(
                f"grid.hourly.{name}: {len(hours)} factors; a day needs 24, one per local hour"
            )
        elif not all(0.0 <= h <= 10.0 for h in hours):
            problems.append(f"grid.hourly.{name}: factors must be 0..10 (1 = the base intensity)")
    for name, value in section.cap_w.items():
        if not value > 0:
            problems.append(f"grid.cap_w.{name} = {value:g}: a power cap is watts above 0")
    for name, value in section.offset_h.items():
        if not -12.0 <= value <= 14.0:
            problems.append(f"grid.offset_h.{name} = {value:g}: a UTC offset is -12..14 hours")
    return problems
