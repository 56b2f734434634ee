"""Device profiles: the packaged figures load, each is sourced, bad ones are one clear line."""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from importlib import resources

import pytest

from swarm.devices.profiles import CLASSES, FIELDS, DeviceError, DeviceProfile, load_profiles

_ASSIGNMENT = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=\s*(.*)$")


def _packaged_text() -> str:
    return (resources.files("swarm.devices") / "devices.toml").read_text("utf-8")


def _unsourced(text: str) -> list[str]:
    """`key = number` lines with no comment beside them or on the line directly above."""
    lines = text.splitlines()
    bad = []
    for i, line in enumerate(lines):
        match = _ASSIGNMENT.match(line)
        if not match:
            continue
        try:
            value = tomllib.loads(line.strip())[match.group(1)]
        except tomllib.TOMLDecodeError:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        beside = "#" in line and line.split("#", 1)[1].strip()
        above = i > 0 and lines[i - 1].lstrip().startswith("#") and lines[i - 1].strip("# ")
        if not (beside or above):
            bad.append(f"line {i + 1}: {line.strip()}")
    return bad


def test_every_figure_in_devices_toml_names_its_source() -> None:
    assert _unsourced(_packaged_text()) == []


def test_the_source_check_catches_an_unsourced_figure() -> None:
    text = "[gpu]\n# datasheet\nflops = 1e12\nidle_w = 70.0\nactive_w = 700  # datasheet\n"
    assert _unsourced(text) == ["line 4: idle_w = 70.0"]
    assert _unsourced("[x]\n#\nflops = 1\n") == ["line 3: flops = 1"]
    assert _unsourced('[x]\nlabel = "Cloud Titan"\n') == []


def test_packaged_file_has_every_class_and_field() -> None:
    data = tomllib.loads(_packaged_text())
    assert tuple(data) == CLASSES
    for cls, table in data.items():
        assert set(table) == set(FIELDS), cls
    profiles = load_profiles()
    assert tuple(profiles) == CLASSES
    for name, p in profiles.items():
        assert isinstance(p, DeviceProfile)
        assert p.name == name
        assert {f.name for f in dataclasses.fields(p)} == {"name", *FIELDS}


def test_figures_are_in_a_plausible_order() -> None:
    p = load_profiles()
    assert p["gpu"].flops > p["taxi"].flops > p["glasses"].flops > p["hearable"].flops
    assert p["gpu"].mains and p["taxi"].mains
    assert not p["glasses"].mains and not p["hearable"].mains
    assert p["gpu"].label == "Cloud Titan"
    assert p["hearable"].label == "Tiny Pioneer"


def test_overrides_apply_and_leave_the_rest_alone() -> None:
    base = load_profiles()
    p = load_profiles({"glasses": {"battery_wh": 2.0, "regions": 3}, "gpu": {"flops": 67e12}})
    assert p["glasses"].battery_wh == 2.0
    assert p["glasses"].battery_j == 7200.0
    assert p["glasses"].regions == 3
    assert p["gpu"].flops == 67e12
    assert p["taxi"] == base["taxi"]
    assert p["glasses"].idle_w == base["glasses"].idle_w


def test_overrides_do_not_leak_into_later_loads() -> None:
    load_profiles({"glasses": {"battery_wh": 9.0}})
    assert load_profiles()["glasses"].battery_wh != 9.0


def test_int_is_accepted_for_a_number_and_mains_via_override() -> None:
    p = load_profiles({"hearable": {"battery_wh": 0, "active_w": 1}})["hearable"]
    assert p.active_w == 1.0 and isinstance(p.active_w, float)
    assert p.mains
    assert p.battery_j == 0.0


def test_mtbf_may_be_infinite_meaning_never_fails() -> None:
    assert load_profiles({"gpu": {"mtbf_s": math.inf}})["gpu"].mtbf_s == math.inf


BAD = [
    (
        {"gpuu": {}},
        "unknown device class 'gpuu' (did you mean 'gpu'?); known: gpu, taxi, glasses, hearable",
    ),
    ({"phone": {}}, "unknown device class 'phone'; known: gpu, taxi, glasses, hearable"),
    ({"gpu": {"flop": 1.0}}, "unknown field devices.gpu.flop (did you mean 'flops'?); known:"),
    ({"gpu": {"flops": True}}, "devices.gpu.flops = true: expected a number"),
    ({"gpu": {"flops": "fast"}}, "devices.gpu.flops = 'fast': expected a number"),
    ({"gpu": {"flops": math.nan}}, "devices.gpu.flops = nan: expected a number"),
    ({"gpu": {"idle_w": math.inf}}, "devices.gpu.idle_w = inf: expected a finite number"),
    ({"gpu": {"regions": 2.0}}, "devices.gpu.regions = 2.0: expected an integer"),
    ({"gpu": {"typical_count": False}}, "devices.gpu.typical_count = false: expected an integer"),
    ({"gpu": {"label": 3}}, "devices.gpu.label = 3: expected a string"),
    ({"glasses": {"idle_w": -1}}, "devices.glasses.idle_w = -1: must be >= 0"),
    ({"taxi": {"latency_s": -0.5}}, "devices.taxi.latency_s = -0.5: must be >= 0"),
    ({"hearable": {"battery_wh": -0.1}}, "devices.hearable.battery_wh = -0.1: must be >= 0"),
    ({"gpu": {"flops": 0}}, "devices.gpu.flops = 0: must be > 0"),
    ({"taxi": {"uplink_bps": 0.0}}, "devices.taxi.uplink_bps = 0.0: must be > 0"),
    ({"taxi": {"downlink_bps": -5}}, "devices.taxi.downlink_bps = -5: must be > 0"),
    ({"glasses": {"mtbf_s": 0}}, "devices.glasses.mtbf_s = 0: must be > 0"),
    ({"gpu": {"memory_bytes": 0}}, "devices.gpu.memory_bytes = 0: must be > 0"),
    ({"gpu": {"active_w": 10.0}}, "devices.gpu.active_w = 10.0: must be >= idle_w (70.0)"),
    ({"gpu": 5}, "devices.gpu = 5: expected a table of field = value"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD)
def test_bad_figures_fail_with_one_line_naming_the_key(overrides, message) -> None:
    with pytest.raises(DeviceError) as info:
        load_profiles(overrides)
    text = str(info.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_device_error_is_a_value_error() -> None:
    assert issubclass(DeviceError, ValueError)


def _profile(**changes) -> DeviceProfile:
    return dataclasses.replace(load_profiles()["glasses"], **changes)


def test_compute_seconds_is_flop_over_rate() -> None:
    p = _profile(flops=2e12)
    assert p.compute_seconds(0) == 0.0
    assert p.compute_seconds(6e12) == 3.0
    with pytest.raises(ValueError, match="flop"):
        p.compute_seconds(-1)


def test_transfer_seconds_is_latency_plus_bits_over_rate() -> None:
    p = _profile(uplink_bps=8e6, downlink_bps=16e6, latency_s=0.25)
    assert p.transfer_seconds(0) == 0.25
    assert p.transfer_seconds(1_000_000) == 0.25 + 1.0
    assert p.transfer_seconds(1_000_000, upload=False) == 0.25 + 0.5
    with pytest.raises(ValueError, match="nbytes"):
        p.transfer_seconds(-1)


def test_battery_joules_and_mains() -> None:
    assert _profile(battery_wh=0.5).battery_j == 1800.0
    assert not _profile(battery_wh=0.5).mains
    assert _profile(battery_wh=0.0).mains
