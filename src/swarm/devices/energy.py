"""Energy accounting in simulated time, without I/O: what each device spent and has left.

The model is additive, so callers charge each activity once and never double count:

- `idle(seconds)` charges idle_w for every stretch of simulated time, busy or not;
- `compute(seconds)` adds (active_w - idle_w) on top, so idle plus compute over the same
  seconds comes to active_w;
- `send(nbytes)` and `receive(nbytes)` add tx_j_per_byte or rx_j_per_byte per byte,
  on top of the idle draw.

A battery device stops once its charge is gone: the call that runs it flat records only
what was left and returns False, and every later call records nothing and returns False.
Mains devices never run flat.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

from swarm.devices.profiles import DeviceProfile

__all__ = ["CATEGORIES", "EnergyMeter", "fleet_energy"]

CATEGORIES = ("idle", "compute", "tx", "rx")


def _amount(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} = {value!r}: expected a number")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} = {value!r}: must be a finite number >= 0")
    return float(value)


class EnergyMeter:
    """Joules one device has spent, by category, and the charge it has left."""

    def __init__(self, profile: DeviceProfile) -> None:
        self.profile = profile
        self._spent = dict.fromkeys(CATEGORIES, 0.0)
        self._remaining = math.inf if profile.mains else profile.battery_j

    def idle(self, seconds: float) -> bool:
        """Charge the idle draw for `seconds` of simulated time; False once flat."""
        return self._charge("idle", _amount("seconds", seconds) * self.profile.idle_w)

    def compute(self, seconds: float) -> bool:
        """Charge the extra draw of `seconds` of computing over idle; False once flat."""
        extra = self.profile.active_w - self.profile.idle_w
        return self._charge("compute", _amount("seconds", seconds) * extra)

    def send(self, nbytes: int) -> bool:
        """Charge the radio energy of sending `nbytes`; False once flat."""
        return self._charge("tx", _amount("nbytes", nbytes) * self.profile.tx_j_per_byte)

    def receive(self, nbytes: int) -> bool:
        """Charge the radio energy of receiving `nbytes`; False once flat."""
        return self._charge("rx", _amount("nbytes", nbytes) * self.profile.rx_j_per_byte)

    def _charge(self, category: str, joules: float) -> bool:
        if self.depleted:
            return False
        if joules > self._remaining:
            self._spent[category] += self._remaining
            self._remaining = 0.0
            return False
        self._spent[category] += joules
        self._remaining -= joules
        return True

    @property
    def depleted(self) -> bool:
        """True once a battery device has no charge left (never for mains)."""
        return self._remaining <= 0.0

    @property
    def remaining_j(self) -> float:
        """Joules left in the battery; inf for mains devices."""
        return self._remaining

    @property
    def spent_j(self) -> float:
        """Joules spent so far, all categories."""
        return math.fsum(self._spent.values())

    def by_category(self) -> dict[str, float]:
        """Joules spent so far per category (idle, compute, tx, rx); a copy."""
        return dict(self._spent)

    def __repr__(self) -> str:
        return (
            f"EnergyMeter({self.profile.name}, spent_j={self.spent_j:.6g}, "
            f"remaining_j={self._remaining:.6g})"
        )


def fleet_energy(meters: Iterable[EnergyMeter]) -> dict[str, Any]:
    """Fleet totals: meters, joules spent (total and per category), how many ran flat."""
    parts: dict[str, list[float]] = {c: [] for c in CATEGORIES}
    count = depleted = 0
    for meter in meters:
        count += 1
        depleted += meter.depleted
        for category, joules in meter.by_category().items():
            parts[category].append(joules)
    by_category = {c: math.fsum(parts[c]) for c in CATEGORIES}
    return {
        "meters": count,
        "total_j": math.fsum(by_category.values()),
        "by_category": by_category,
        "depleted": depleted,
    }
