"""Device classes: what a gpu, a taxi, glasses and a hearable can compute, send and spend.

The figures live in the packaged `devices.toml`, each with its source, so they can be
checked and replaced without touching code. `load_profiles` reads them, applies per-run
overrides and checks every value, so a bad figure fails before the fleet starts with one
line naming `devices.<class>.<field>`, the value and what is allowed.
"""

from __future__ import annotations

import difflib
import functools
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["CLASSES", "DeviceError", "DeviceProfile", "load_profiles"]

CLASSES = ("gpu", "taxi", "glasses", "hearable")


class DeviceError(ValueError):
    """A device figure that cannot be used; the message is one line a user can act on."""


@dataclass(frozen=True)
class DeviceProfile:
    """One device class: compute, memory, link, power, battery and reliability figures."""

    name: str
    label: str
    description: str
    flops: float  # FLOP/s usable for training
    memory_bytes: int
    uplink_bps: float
    downlink_bps: float
    latency_s: float  # one-way, to the nearest broker or peer
    idle_w: float
    active_w: float
    tx_j_per_byte: float
    rx_j_per_byte: float
    battery_wh: float  # 0 = mains powered
    mtbf_s: float
    typical_count: int
    regions: int

    def compute_seconds(self, flop: float) -> float:
        """Seconds to do `flop` floating-point operations at this class's rate."""
        _non_negative("flop", flop)
        return flop / self.flops

    def transfer_seconds(self, nbytes: int, *, upload: bool = True) -> float:
        """Seconds to send (upload) or receive `nbytes`: one-way latency plus serialisation."""
        _non_negative("nbytes", nbytes)
        bps = self.uplink_bps if upload else self.downlink_bps
        return self.latency_s + nbytes * 8 / bps

    @property
    def mains(self) -> bool:
        """True when the device runs off the grid and never runs flat."""
        return self.battery_wh == 0

    @property
    def battery_j(self) -> float:
        """Battery capacity in joules (0 for mains devices)."""
        return self.battery_wh * 3600.0


def _non_negative(name: str, value: float) -> None:
    if not value >= 0 or not math.isfinite(value):
        raise ValueError(f"{name} = {value!r}: must be a finite number >= 0")


# Field -> (type, lower bound, whether the bound itself is allowed).
_RULES: dict[str, tuple[type, float | None, bool]] = {
    "label": (str, None, True),
    "description": (str, None, True),
    "flops": (float, 0.0, False),
    "memory_bytes": (int, 0, False),
    "uplink_bps": (float, 0.0, False),
    "downlink_bps": (float, 0.0, False),
    "latency_s": (float, 0.0, True),
    "idle_w": (float, 0.0, True),
    "active_w": (float, 0.0, True),
    "tx_j_per_byte": (float, 0.0, True),
    "rx_j_per_byte": (float, 0.0, True),
    "battery_wh": (float, 0.0, True),
    "mtbf_s": (float, 0.0, False),
    "typical_count": (int, 0, False),
    "regions": (int, 0, False),
}
FIELDS = tuple(_RULES)
# mtbf_s = inf is how a run says "this class never fails"; other figures must be finite.
_MAY_BE_INFINITE = frozenset({"mtbf_s"})


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, bool) else str(value).lower()
    return text if len(text) <= 60 else text[:57] + "..."


def _check_class(name: Any) -> str:
    if name not in CLASSES:
        raise DeviceError(
            f"unknown device class {name!r}{_did_you_mean(str(name), CLASSES)}; "
            f"known: {', '.join(CLASSES)}"
        )
    return name


def _check_field(cls: str, key: Any, value: Any) -> Any:
    """`value` converted to the field's type, or DeviceError naming devices.<cls>.<key>."""
    path = f"devices.{cls}.{key}"
    if key not in _RULES:
        raise DeviceError(
            f"unknown field {path}{_did_you_mean(str(key), FIELDS)}; known: {', '.join(FIELDS)}"
        )
    tp, bound, inclusive = _RULES[key]
    shown = _show(value)
    if tp is str:
        if type(value) is not str:
            raise DeviceError(f"{path} = {shown}: expected a string")
        return value
    if tp is int:
        if type(value) is not int:
            raise DeviceError(f"{path} = {shown}: expected an integer")
    else:
        if type(value) not in (int, float) or math.isnan(value):
            raise DeviceError(f"{path} = {shown}: expected a number")
        if math.isinf(value) and key not in _MAY_BE_INFINITE:
            raise DeviceError(f"{path} = {shown}: expected a finite number")
        value = float(value)
    if bound is not None:
        if inclusive and value < bound:
            raise DeviceError(f"{path} = {shown}: must be >= {bound:g}")
        if not inclusive and value <= bound:
            raise DeviceError(f"{path} = {shown}: must be > {bound:g}")
    return value


@functools.cache
def _packaged() -> dict[str, dict[str, Any]]:
    """The packaged devices.toml, parsed once per process."""
    text = (resources.files("swarm.devices") / "devices.toml").read_text("utf-8")
    return tomllib.loads(text)


def _profile(cls: str, table: Mapping[str, Any]) -> DeviceProfile:
    values = {key: _check_field(cls, key, value) for key, value in table.items()}
    missing = [key for key in FIELDS if key not in values]
    if missing:
        raise DeviceError(f"devices.{cls}: missing {', '.join(missing)}")
    if values["active_w"] < values["idle_w"]:
        raise DeviceError(
            f"devices.{cls}.active_w = {_show(table['active_w'])}: must be >= "
            f"idle_w ({_show(table['idle_w'])})"
        )
    return DeviceProfile(name=cls, **values)


def load_profiles(
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, DeviceProfile]:
    """Every device class from the packaged devices.toml, with `overrides` applied.

    `overrides` maps a class to the fields to replace, e.g. {"glasses": {"battery_wh": 2.0}};
    each value is checked like the packaged ones. Returns profiles in CLASSES order.
    """
    data = _packaged()
    for cls in data:
        _check_class(cls)
    tables = {cls: dict(data.get(cls, {})) for cls in CLASSES}
    for cls, fields in (overrides or {}).items():
        _check_class(cls)
        if not isinstance(fields, Mapping):
            raise DeviceError(f"devices.{cls} = {_show(fields)}: expected a table of field = value")
        tables[cls].update(fields)
    return {cls: _profile(cls, tables[cls]) for cls in CLASSES}
