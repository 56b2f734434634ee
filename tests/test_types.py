"""The package type-checks under the project's mypy settings ([tool.mypy] in pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _mypy() -> list[str]:
    exe = shutil.which("mypy", path=str(Path(sys.executable).parent)) or shutil.which("mypy")
    if exe is None:
        pytest.fail("mypy is not installed: pip install -e '.[test]'")
    return [exe]


def test_mypy_is_clean() -> None:
    done = subprocess.run(
        [*_mypy(), "--config-file", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_workload_from_outside_swarm_is_checked_against_the_protocol(tmp_path: Path) -> None:
    """swarm ships py.typed, so a plugin author's mypy sees the Workload protocol."""
    plugin = ROOT / "tests" / "workloads" / "plugin" / "max_gossip.py"
    ok = subprocess.run(
        [*_mypy(), "--config-file", str(ROOT / "pyproject.toml"), str(plugin)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # The same class with one method misnamed no longer implements the protocol.
    broken = tmp_path / "broken_gossip.py"
    broken.write_text(plugin.read_text().replace("def live_status(", "def live_state("))
    bad = subprocess.run(
        [*_mypy(), "--config-file", str(ROOT / "pyproject.toml"), str(broken)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "type[Workload]" in bad.stdout, bad.stdout + bad.stderr
