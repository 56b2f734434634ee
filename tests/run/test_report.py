"""`swarm report`: figures and report.md for a run of each workload and for a sweep."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")  # the [plot] extra; the test extra installs it

from PIL import Image

from swarm.cli import main
from swarm.run.report import report

PNG = b"\x89PNG\r\n\x1a\n"
GRID = ["--grid", "gossip.k=1,2,3", "--grid", "fleet.count=60,90", "--repeat", "3"]

# One small run of each built-in workload (and of averaging, gossip's other half).
RUNS = {
    "gossip": ["fleet", "--agents", "200"],
    "averaging": ["averaging", "--agents", "200", "--set", "run.rounds=20"],
    "learn": ["mobile-nomad", "--set", "run.rounds=10"],
    "hazards": ["edge-guardian-sybil", "--agents", "60", "--set", "run.duration=120"],
    "mesh": ["tiny-pioneer", "--agents", "60", "--set", "run.rounds=120"],
}
EXPECTED = {
    "gossip": {"coverage", "traffic"},
    "averaging": {"traffic", "variance"},
    "learn": {"accuracy", "update-bytes", "energy"},
    "hazards": {"awareness-latency", "awareness", "judges", "false-alarms"},
    "mesh": {"coverage", "error-by-hops", "energy"},
}


def assert_png(path: Path) -> None:
    """A whole PNG (every chunk checked) of a size a reader can read."""
    data = path.read_bytes()
    assert data[:8] == PNG and data[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", data[16:24])
    assert 600 <= width <= 3000 and 400 <= height <= 2000, (path, width, height)
    with Image.open(path) as image:
        image.verify()
    assert len(data) > 10_000, path  # axes, labels and data, not an empty canvas


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("runs")
    for name, args in RUNS.items():
        assert main(["run", *args, "--out", str(base / name), "--quiet"]) == 0
    return {name: base / name for name in RUNS}


@pytest.mark.parametrize("workload", list(RUNS))
def test_a_run_of_each_workload_gets_its_figures(runs, workload: str) -> None:
    done = report(runs[workload])
    names = {path.stem for path, _ in done.drawn}
    assert names == EXPECTED[workload]
    for path, _ in done.drawn:
        assert_png(path)
    text = (runs[workload] / "report" / "report.md").read_text()
    for path, title in done.drawn:
        assert f"![{title}]({path.name})" in text
    assert "## Results" in text


def test_a_figure_without_its_data_is_named_with_the_reason(runs, tmp_path: Path) -> None:
    done = report(runs["gossip"], tmp_path / "r")
    assert ("variance", "metrics.jsonl has no `variance`") in done.skipped
    assert "- `variance`: metrics.jsonl has no `variance`" in (tmp_path / "r/report.md").read_text()


def test_unreadable_metrics_lines_are_counted_not_fatal(runs, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    copy.mkdir()
    (copy / "summary.json").write_text((runs["gossip"] / "summary.json").read_text())
    lines = (runs["gossip"] / "metrics.jsonl").read_text().splitlines()
    (copy / "metrics.jsonl").write_text("\n".join([lines[0], "{not json", "[1, 2]", *lines[1:]]))
    done = report(copy)
    assert {p.stem for p, _ in done.drawn} == {"coverage", "traffic"}
    assert any("2 lines that are not JSON objects" in note for note in done.notes)
    (copy / "metrics.jsonl").unlink()
    done = report(copy)
    assert not done.drawn  # every figure of a gossip run is a course
    assert {name for name, _ in done.skipped} == {"coverage", "traffic", "variance"}


def test_a_sweep_gets_a_figure_per_result_and_a_table(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    assert main(["sweep", "rumor", *GRID, "--jobs", "2", "--out", str(out), "--quiet"]) == 0
    assert main(["report", str(out)]) == 0
    done = report(out)
    names = {path.stem for path, _ in done.drawn}
    assert {"sweep-residue", "sweep-traffic", "coverage", "traffic"} <= names
    for path, _ in done.drawn:
        assert_png(path)
    text = done.markdown.read_text()
    table = [line for line in text.splitlines() if line.startswith("| 2 | 90 |")]
    assert len(table) == 1 and "[" in table[0]  # k=2, n=90: mean [95% interval]
    assert ("sweep-max_error", "no run gave a number for `max_error`") in done.skipped


def test_the_same_run_draws_the_same_bytes(runs, tmp_path: Path) -> None:
    first = report(runs["learn"], tmp_path / "a")
    second = report(runs["learn"], tmp_path / "b")
    for (a, _), (b, _) in zip(first.drawn, second.drawn, strict=True):
        assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        (lambda d: None, "no such directory"),
        (lambda d: d.mkdir(), "neither a run (summary.json"),
        (lambda d: (d.mkdir(), (d / "summary.json").write_text("{oops")), "not JSON"),
        (lambda d: (d.mkdir(), (d / "summary.json").write_text("[1]")), "not a run summary"),
        (
            lambda d: (d.mkdir(), (d / "summary.csv").write_text("a,b\n1,2\n")),
            "not a sweep's summary",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys, setup, needle: str) -> None:
    target = tmp_path / "d"
    setup(target)
    assert main(["report", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("swarm: error: ") and needle in err and err.count("\n") == 1


def test_without_matplotlib_it_says_what_to_install(runs) -> None:
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from swarm.cli import main\n"
        f"sys.exit(main(['report', {str(runs['gossip'])!r}]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert "pip install 'swarm-fleet[plot]'" in done.stderr
    assert done.stderr.count("\n") == 1


def test_hazards_results_keep_each_latency_for_the_distribution(runs) -> None:
    results = json.loads((runs["hazards"] / "summary.json").read_text())["results"]
    latencies = results["awareness_latencies"]
    assert len(latencies) == results["reached"]
    assert min(latencies) <= results["awareness_latency"]["p50"] <= max(latencies)


def test_any_json_in_a_runs_files_is_drawn_or_named_never_a_crash(runs, tmp_path: Path) -> None:
    """A hand-edited or forged run directory: every value of the wrong type is a figure
    not drawn (or drawn without that value), never a traceback."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    values = st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=8,
    )
    base = json.loads((runs["hazards"] / "summary.json").read_text())
    keys = ["awareness_latencies", "awareness_latency", "compound_judges", "reached_fraction"]

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.fixed_dictionaries({k: values for k in keys}), st.lists(values, max_size=4))
    def check(results: dict, rows: list) -> None:
        target = tmp_path / "forged"
        target.mkdir(exist_ok=True)
        forged = {**base, "results": {**base["results"], **results}}
        (target / "summary.json").write_text(json.dumps(forged))
        (target / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
        done = report(target, tmp_path / "out")
        assert len(done.drawn) + len(done.skipped) == 4
        for path, _ in done.drawn:
            assert_png(path)

    check()


def test_a_sweep_with_failures_draws_them_beside_their_law_on_a_log_axis(tmp_path: Path) -> None:
    from swarm.figures import Series
    from swarm.run.report import _decades

    out = tmp_path / "faults"
    args = ["--grid", "faults.mtbf_scale=1e-8,1e-7,1e-6", "--set", "faults.process=exponential"]
    assert main(["sweep", "rumor", *args, "--out", str(out), "--quiet"]) == 0
    done = report(out)
    drawn = {path.stem for path, _ in done.drawn}
    assert {"sweep-reliability-failures", "sweep-reliability-availability"} <= drawn
    assert _decades([Series("a", [1e-8, 1e-6], [1, 2])])
    assert not _decades([Series("a", [1, 50], [1, 2])])
