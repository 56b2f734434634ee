"""The package's layers: no import cycle, workloads below the fleet, one place per kind.

Every import inside `swarm` counts, at module level or inside a function (a lazy import
is still a dependency); imports under `if TYPE_CHECKING:` are annotations only and do
not. Importing `swarm.a.b` also imports the package `swarm.a`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "swarm"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path) -> set[str]:
    """The swarm modules `name` imports (outside TYPE_CHECKING blocks)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    out: set[str] = set()
    for target in found:
        if target.split(".")[0] != "swarm":
            continue
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        parts = target.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))  # parents too
    out.discard(name)
    return {m for m in out if m in MODULES and not name.startswith(m + ".") and m != "swarm"}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycle() -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(GRAPH):
        if node not in state and (found := walk(node)):
            return found
    return None


def test_there_is_no_import_cycle_inside_swarm() -> None:
    cycle = _cycle()
    assert cycle is None, " -> ".join(cycle or [])


# Bottom to top; a module imports only from its own layer or the ones below, and belongs
# to the layer of its longest matching name. The registry (the package `swarm.workloads`
# alone) is light and sits below the scenario, which asks it for each workload's section;
# the workload modules sit above the scenario. The benchmarks measure everything up to
# the dashboard, so they sit at the top.
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "swarm.wire",
        "swarm.topics",
        "swarm.clock",
        "swarm.rounds",
        "swarm.seeding",
        "swarm.seal",
        "swarm.activation",
        "swarm.commands",
    ),
    ("swarm.metrics", "swarm.laws", "swarm.figures"),
    ("swarm.broker",),
    ("swarm.protocols", "swarm.devices"),
    ("=swarm.workloads",),
    ("swarm.scenario", "swarm.placement"),
    ("swarm.workloads",),
    ("swarm.fleet",),
    ("swarm.run",),
    ("swarm.cli", "swarm.tui", "swarm.decode", "swarm.testing", "swarm.run.bench"),
    ("swarm.__main__",),
)


def _layer(module: str) -> int:
    best: tuple[int, int] | None = None  # (length of the matching name, layer)
    for rank, names in enumerate(LAYERS):
        for name in names:
            exact = name.startswith("=")
            name = name.lstrip("=")
            if module == name or (not exact and module.startswith(name + ".")):
                best = max(best or (0, 0), (len(name) + exact, rank))
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best[1]


@pytest.mark.parametrize("name", sorted(m for m in MODULES if m != "swarm"))
def test_every_module_imports_only_its_own_layer_or_below(name: str) -> None:
    rank = _layer(name)
    upward = sorted(m for m in GRAPH[name] if _layer(m) > rank)
    assert upward == [], f"{name} (layer {rank}) imports {upward} from above"


ABOVE_WORKLOADS = ("swarm.fleet", "swarm.run", "swarm.cli", "swarm.tui")


@pytest.mark.parametrize("name", sorted(m for m in MODULES if m.startswith("swarm.workloads")))
def test_no_workload_module_imports_the_layers_above_it(name: str) -> None:
    upward = sorted(m for m in GRAPH[name] if m.startswith(ABOVE_WORKLOADS))
    assert upward == [], f"{name} imports {upward}"


# The throughput benchmark measures its ceiling with a bare aiomqtt client, beside ours.
AIOMQTT = ("swarm.broker.mqtt", "swarm.broker.shared", "swarm.run.bench")


def test_only_tui_imports_textual_and_only_the_mqtt_transports_import_aiomqtt() -> None:
    for module, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if module != "swarm.run.plots":  # matplotlib is an optional extra, for reports
            assert not re.search(r"^\s*(from|import) matplotlib", text, re.M), module
        if not module.startswith("swarm.tui"):
            assert not re.search(r"^\s*(from|import) textual", text, re.M), module
        if not module.startswith(AIOMQTT):
            assert not re.search(r"^\s*(from|import) aiomqtt", text, re.M), module


WORKLOAD_NAMES = ("gossip", "learn", "hazards", "mesh")
# `fleet.workload == "learn"`, `workload == "mesh"`, `{"hazards": ...}[workload]`: a
# decision taken by workload kind.
KIND_TEST = re.compile(
    r"""(workload\s*(==|!=|in)\s*["'(]|["'](NAMES)["']\s*:\s*\(|\.workload\]\s*$)""".replace(
        "NAMES", "|".join(WORKLOAD_NAMES)
    )
)


def test_only_the_registry_decides_by_workload_kind_outside_workloads() -> None:
    offenders = []
    for module, path in MODULES.items():
        if module.startswith("swarm.workloads"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if KIND_TEST.search(line):
                offenders.append(f"{module}:{number}: {line.strip()}")
    assert offenders == []


def test_no_module_probes_a_workload_with_hasattr_or_getattr() -> None:
    offenders = []
    for module, path in MODULES.items():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"(hasattr|getattr)\((self\.|fleet\.)?(work|workload)\b", line):
                offenders.append(f"{module}:{number}: {line.strip()}")
    assert offenders == []


def test_the_public_face_is_lazy_and_every_name_resolves() -> None:
    """`import swarm.wire` must not load the fleet; `swarm.<name>` loads on first use."""
    import subprocess
    import sys

    program = (
        "import sys, swarm, swarm.wire\n"
        "assert 'swarm.fleet' not in sys.modules and 'swarm.scenario' not in sys.modules\n"
        "missing = [n for n in swarm.__all__ if getattr(swarm, n, None) is None]\n"
        "assert not missing, missing\n"
        "assert set(swarm.__all__) <= set(dir(swarm))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
