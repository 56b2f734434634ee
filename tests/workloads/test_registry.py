"""The workload registry answers a broken plugin with one line that names it, never a crash.

A plugin is code swarm does not control: its module may be missing or fail on import, its
spec may be wrong, its name may clash with a built-in workload or a scenario section.
Every case ends as a one-line `swarm: error:` and exit status 2.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from swarm import workloads
from swarm.cli import main
from swarm.fleet import Fleet
from swarm.scenario import ScenarioError, from_dict

PLUGIN = """
from dataclasses import dataclass

from swarm.workloads.base import WorkloadSpec


@dataclass(frozen=True)
class Section:
    level: int = 1


WRONG_NAME = WorkloadSpec(name="other", summary="s", factory="broken_plugin:Nope", kinds=("k1",))
NO_FACTORY = WorkloadSpec(name="nofac", summary="s", factory="broken_plugin:Nope", kinds=("k2",))
NOT_A_CLASS = WorkloadSpec(
    name="notclass", summary="s", factory="broken_plugin:NOT_A_SPEC", kinds=("k3",)
)
BOOM = WorkloadSpec(name="boom", summary="s", factory="exploding_module:Cls", kinds=("k4",))
FLEET_KIND = WorkloadSpec(name="fleetkind", summary="s", factory="x:Y", kinds=("metrics",))
NETWORK = WorkloadSpec(
    name="network", summary="s", factory="x:Y", kinds=("k5",), section=Section
)
NOT_A_SPEC = 42
FACTORY_NONE = WorkloadSpec(name="nonefac", summary="s", factory=None, kinds=("k6",))
SECTION_INT = WorkloadSpec(name="intsec", summary="s", factory="x:Y", kinds=("k7",), section=int)
TAKEN_CODE = WorkloadSpec(name="taken", summary="s", factory="x:Y", kinds=("k9",), codes={"k9": 10})
STRAY_CODE = WorkloadSpec(name="stray", summary="s", factory="x:Y", kinds=("k10",), codes={"k": 2})


def _explode(scenario):
    raise KeyError("level")


CHECK_RAISES = WorkloadSpec(
    name="badcheck", summary="s", factory="x:Y", kinds=("k8",), check=_explode
)
"""


@pytest.fixture(autouse=True)
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "broken_plugin.py").write_text(textwrap.dedent(PLUGIN))
    (tmp_path / "exploding_module.py").write_text('raise RuntimeError("disk on fire")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("broken_plugin", "exploding_module"):
        sys.modules.pop(name, None)


def run_with(monkeypatch, line: str, workload: str, capsys, tmp_path: Path) -> str:
    monkeypatch.setenv(workloads.ENVIRONMENT, line)
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'[fleet]\ncount = 4\nworkload = "{workload}"\n[run]\nrounds = 2\n')
    assert main(["run", str(scenario), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("swarm: error:") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    ("line", "workload", "needle"),
    [
        ("x=broken_plugin:WRONG_NAME", "x", "is not the WorkloadSpec of 'x'"),
        ("x=broken_plugin:NOT_A_SPEC", "x", "is not the WorkloadSpec of 'x'"),
        ("x=broken_plugin:MISSING", "x", "has no attribute 'MISSING'"),
        ("x=no_such_module:SPEC", "x", "No module named 'no_such_module'"),
        ("x=exploding_module:SPEC", "x", "RuntimeError: disk on fire"),
        ("nofac=broken_plugin:NO_FACTORY", "nofac", "fleet.workload = 'nofac': cannot load"),
        ("notclass=broken_plugin:NOT_A_CLASS", "notclass", "is not a class implementing"),
        ("boom=broken_plugin:BOOM", "boom", "RuntimeError: disk on fire"),
        ("fleetkind=broken_plugin:FLEET_KIND", "fleetkind", "message kind 'metrics'"),
        ("network=broken_plugin:NETWORK", "network", "[network] is one every scenario has"),
        ("gossip=broken_plugin:WRONG_NAME", "gossip", "'gossip' is a built-in workload"),
        ("Max Gossip=broken_plugin:X", "gossip", "must be lowercase letters"),
        ("max", "gossip", "is not name=module:attribute"),
        ("nonefac=broken_plugin:FACTORY_NONE", "nonefac", "factory None is not 'module:Class'"),
        ("intsec=broken_plugin:SECTION_INT", "intsec", "is not a dataclass"),
        ("taken=broken_plugin:TAKEN_CODE", "taken", "kind code 10 of 'k9' is taken by 'push'"),
        ("stray=broken_plugin:STRAY_CODE", "stray", "is not a map of some of its kinds"),
        # A plugin's check runs for every scenario: it must not crash a plain gossip run.
        ("badcheck=broken_plugin:CHECK_RAISES", "gossip", "check failed (KeyError: 'level')"),
    ],
)
def test_a_broken_plugin_is_a_one_line_error(
    monkeypatch, capsys, tmp_path: Path, line: str, workload: str, needle: str
) -> None:
    assert needle in run_with(monkeypatch, line, workload, capsys, tmp_path)


def test_a_broken_plugin_does_not_crash_the_other_commands(monkeypatch, capsys) -> None:
    monkeypatch.setenv(workloads.ENVIRONMENT, "x=no_such_module:SPEC")
    for argv in (["scenarios", "--workloads"], ["decode", "-"]):
        assert main(argv) == 2
        assert "workload 'x': cannot load 'no_such_module:SPEC'" in capsys.readouterr().err


def test_a_workload_that_fails_to_load_is_a_scenario_error_for_the_fleet(monkeypatch) -> None:
    monkeypatch.setenv(workloads.ENVIRONMENT, "boom=broken_plugin:BOOM")
    scenario = from_dict({"fleet": {"count": 4, "workload": "boom"}})
    with pytest.raises(ScenarioError, match=r"fleet\.workload = 'boom'.*disk on fire"):
        Fleet(scenario)


def test_register_refuses_a_bad_target_or_name() -> None:
    with pytest.raises(ValueError, match="module:attribute"):
        workloads.register("x", "no-colon")
    with pytest.raises(ValueError, match="must be lowercase letters"):
        workloads.register("Bad Name", "m:SPEC")


def test_a_plugin_cannot_take_the_name_of_a_workload_registered_in_code(monkeypatch) -> None:
    monkeypatch.setenv(workloads.ENVIRONMENT, "zz=broken_plugin:WRONG_NAME")
    assert "zz" in workloads.names()
    monkeypatch.setitem(workloads.REGISTRY, "zz", "broken_plugin:WRONG_NAME")
    with pytest.raises(workloads.UnknownWorkload, match="'zz' is a built-in workload"):
        workloads.names()


def test_the_registry_reads_installed_plugins_once_not_every_round(monkeypatch) -> None:
    """The observer asks for a spec every round; scanning every package's metadata each
    time made a one-hour gossip run a third slower."""
    calls = []
    real = workloads.entry_points

    def counting(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(workloads, "entry_points", counting)
    workloads._entry_points.cache_clear()
    try:
        for _ in range(100):
            workloads.spec("gossip")
        assert len(calls) == 1
    finally:
        workloads._entry_points.cache_clear()
