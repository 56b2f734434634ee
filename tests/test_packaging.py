"""Installing swarm-fleet (no extras) is enough for what users import: `swarm.testing`."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import pytest

TESTING = Path(__file__).resolve().parents[1] / "src" / "swarm" / "testing"


def _third_party_imports() -> set[str]:
    found: set[str] = set()
    for path in TESTING.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return {m for m in found if m != "swarm" and m not in sys.stdlib_module_names}


def test_every_module_swarm_testing_imports_is_a_plain_dependency() -> None:
    plain = {
        re.split(r"[<>=!~ ;\[]", req, maxsplit=1)[0].lower()
        for req in requires("swarm-fleet") or []
        if "extra ==" not in req
    }
    distributions = packages_distributions()
    modules = _third_party_imports()
    assert "hypothesis" in modules
    for module in sorted(modules):
        names = {d.lower() for d in distributions.get(module, [module])}
        assert names & plain, f"swarm.testing imports {module}, not a plain dependency"


@pytest.mark.slow
def test_swarm_testing_imports_in_a_fresh_plain_install(tmp_path: Path) -> None:
    """The real thing: a new virtual environment, `pip install .`, `import swarm.testing`."""
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(root)], check=True)
    done = subprocess.run(
        [str(python), "-c", "import swarm.testing, hypothesis; print('ok')"],
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == "ok", done.stderr
