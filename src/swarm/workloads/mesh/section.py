"""The [mesh] section: duty cycles, relayed entries and the field the hearables sense."""

from __future__ import annotations

from dataclasses import dataclass

from swarm.scenario.schema import rule

__all__ = ["WAKES", "MeshSection"]

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
