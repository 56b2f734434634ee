"""Energy accounting in simulated time, without I/O: what each device spent and has left.

The model is additive, so callers charge each activity once and never double count:

- `idle(seconds)` charges idle_w for every stretch of simulated time, busy or not;
- `compute(seconds)` adds (active_w - idle_w) on top, so idle plus compute over the same
  seconds comes to active_w;
- `send(nbytes)` and `receive(nbytes)` add tx_j_per_byte or rx_j_per_byte per byte,
  on top of the idle draw.

A battery device stops once its charge is gone: the call that runs it flat records only
what was left and returns False, and every later call records nothing and returns False,
until `charge` puts energy back (a charger, a harvester). Mains devices never run flat.

With a `reserve` share, a battery device *rests* once its charge falls below it, and
rests until charging takes it above twice the reserve (hysteresis, so that it does not
flap): its workload skips the work and the relaying it would do, as a phone in low-power
mode does; it still draws its idle power.
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

    def __init__(self, profile: DeviceProfile, reserve: float = 0.0) -> None:
        self.profile = profile
        self._spent = dict.fromkeys(CATEGORIES, 0.0)
        self._remaining = math.inf if profile.mains else profile.battery_j
        self.reserve = 0.0 if profile.mains else reserve  # share of capacity kept back
        self._resting = False
        self.charged_j = 0.0  # joules put back by charging, in all

    def charge(self, joules: float) -> float:
        """Put up to `joules` back into the battery (never above its capacity); the joules
        it took. Mains devices take none."""
        if self.profile.mains:
            return 0.0
        taken = min(_amount("joules", joules), self.profile.battery_j - self._remaining)
        taken = max(0.0, taken)
        self._remaining += taken
        self.charged_j += taken
        return taken

    @property
    def resting(self) -> bool:
        """Below its reserve (until charged above twice it), or flat: it does no work."""
        if self.depleted:
            return True
        if self.reserve <= 0.0:
            return False
        share = self._remaining / self.profile.battery_j
        if self._resting and share > 2 * self.reserve:
            self._resting = False
        elif not self._resting and share < self.reserve:
            self._resting = True
        return self._resting

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
