"""The [mesh] section: duty cycles, relayed entries and the field the hearables sense."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from swarm.scenario.schema import ScenarioError, rule

if TYPE_CHECKING:
    from swarm.scenario import Scenario

__all__ = ["SLEEP_SHARE", "WAKES", "MeshSection", "check"]

# The share of idle_w drawn while the radio sleeps. Estimate: asleep, an earbud keeps its
# clock and a motion or temperature sensor running at tens of µW; 1% of the 3 mW idle draw
# of the hearable profile is 30 µW.
SLEEP_SHARE = 0.01

WAKES = ("random", "synchronized")


@dataclass(frozen=True)
class MeshSection:
    duty_cycle: float = rule(0.25, "share of rounds a device's radio is awake", above=0.0, max=1.0)
    entries: int = rule(8, "readings relayed per message (the freshest first)", min=1, max=256)
    field_period: float = rule(600.0, "seconds over which the sensed field changes", above=0.0)
    noise: float = rule(0.05, "sensor noise, in units of the field's range", min=0.0)
    max_hops: int = rule(8, "hops a reading may travel", min=1, max=255)
    wake: str = rule(
        "random",
        "when radios are on: random (each device, each round, with probability "
        "duty_cycle) or synchronized (every device in the same evenly spaced rounds, "
        "duty_cycle of them, as BLE and LoRaWAN class B slots do)",
        choices=WAKES,
    )
    power_budget: float = rule(
        0.0,
        "watts each device may draw on average: it skips a wake-up whose worst case would "
        "take it over budget x time so far (0 = none)",
        min=0.0,
        max=1e3,
    )


def check(s: Scenario) -> None:
    """A power budget every device in the mix can keep: above its sleep draw."""
    budget = s.mesh.power_budget
    if s.fleet.workload != "mesh" or budget <= 0:
        return
    profiles = s.profiles()
    for kind, share in s.fleet.mix.items():
        floor = profiles[kind].idle_w * SLEEP_SHARE
        if share > 0 and budget < floor:
            raise ScenarioError(
                f"mesh.power_budget = {budget:g} W: below what a sleeping {kind} draws "
                f"({floor:g} W, {SLEEP_SHARE:g} of its idle_w); no duty cycle fits it"
            )
