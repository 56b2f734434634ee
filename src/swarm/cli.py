"""The `swarm` command.

Exit status: 0 success, 2 bad input (scenario, option or value; one line on stderr, no
traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from swarm import __version__, workloads
from swarm.run.report import brief
from swarm.run.sweep import flatten
from swarm.scenario import ScenarioError, builtin_names, from_dict, load

RUN_FILES = ("metrics.jsonl", "events.jsonl", "summary.json")  # what --out DIR receives
EPILOG_RUN = """\
examples:
  swarm run                              the default scenario (1,000 devices, push gossip)
  swarm run rumor --set gossip.k=3       a built-in scenario with one value changed
  swarm run my.toml --seed 7 --out runs/a --json > summary.json

Every scenario key can be set with --set SECTION.KEY=VALUE (VALUE is TOML; bare words
are strings). `swarm scenarios` lists the built-ins; `swarm scenarios NAME` prints one.
"""


EPILOG_SWEEP = """\
examples:
  swarm sweep rumor --grid gossip.k=1,2,3,4 --repeat 5 --out sweeps/k
  swarm sweep sybil-fedavg --grid learn.aggregator=mean,median,multi-krum \\
      --grid sybil.count=0,2,5 --repeat 3 --jobs 2 --out sweeps/attack
  swarm sweep fleet --zip fleet.count=100,1000 --zip run.rounds=20,40 --out sweeps/n

--grid values are TOML separated by commas (bare words are strings); the grids'
product is swept, --zip keys vary together. Seeds are --seed (default: the scenario's
run.seed), +1, ... for --repeat runs of every point. DIR gets results.csv (a row per
run), summary.csv (per point: mean, sd, 95% interval of every result) and runs/ (each
run's own files). Run the same command again to finish a sweep that was stopped.
"""

EPILOG_TUI = """\
examples:
  swarm tui                                   the lab: 60 devices learn, 15 Sybils wait
  swarm tui fleet --speed 10                  1,000 devices spread a rumor, 10 rounds/s
  swarm tui --attach mqtt://127.0.0.1:1883    a run started with swarm run --broker ...
  swarm tui --replay runs/a                   a run recorded with swarm run --out runs/a

keys: space pause, + - speed, s Sybils, c crash, p partition, f fanout, a aggregator,
r reset, e export, ? help, q quit; ctrl+p for every control with its arguments.
"""

EPILOG_CONTROL = """\
examples:
  swarm control --broker mqtt://127.0.0.1:1883 --run lab pause
  swarm control --broker mqtt://127.0.0.1:1883 --run lab crash fraction=0.2 kind=taxi
  swarm control --broker mqtt://127.0.0.1:1883 --run lab partition 'groups=[["north"]]'
"""


MAX_SHARDS = 256  # worker processes one coordinator starts on its machine


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swarm",
        description="A deterministic fleet emulator: thousands of asyncio agents gossiping "
        "over an MQTT-semantics broker, in virtual time.",
    )
    parser.add_argument("--version", action="version", version=f"swarm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    run = sub.add_parser(
        "run",
        help="run a scenario headless and print a summary",
        description="Run a scenario on the embedded broker (virtual time, deterministic): "
        "the same scenario and seed give byte-identical metrics.jsonl.",
        epilog=EPILOG_RUN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _scenario_arguments(run, default="fleet")
    run.add_argument(
        "--out", type=Path, metavar="DIR", help="write metrics.jsonl and summary.json here"
    )
    run.add_argument(
        "--json", action="store_true", help="print the summary as JSON on stdout, nothing else"
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar and no summary table")
    run.add_argument(
        "--force",
        action="store_true",
        help="with --out: overwrite the run already in that directory",
    )
    run.add_argument(
        "--broker",
        metavar="URL",
        help="run over a real MQTT broker, mqtt://[user:pass@]host:port (wall-clock time; "
        "every agent is its own MQTT client). Default: the embedded broker",
    )
    run.add_argument(
        "--shards",
        type=_non_negative_int,
        default=1,
        metavar="N",
        help="with --broker: run the fleet in N worker processes on this machine (shared "
        f"connections); at most {MAX_SHARDS} and no more than the fleet's agents",
    )

    sweep = sub.add_parser(
        "sweep",
        help="run a scenario over a grid of keys and seeds, into CSV tables",
        description="Run a scenario once per grid point and seed, in parallel processes, "
        "and tabulate every result (embedded broker: deterministic for the same seeds).",
        epilog=EPILOG_SWEEP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("scenario", help="a built-in name or a .toml path")
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="sweep a key over these values (repeatable: the product of all grids)",
    )
    sweep.add_argument(
        "--zip",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="keys that vary together, value i with value i (repeatable, equal lengths)",
    )
    sweep.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fix a scenario key for every run, as in swarm run (repeatable)",
    )
    sweep.add_argument(
        "--repeat", type=_positive_int, default=1, metavar="R", help="seeds per point (1)"
    )
    sweep.add_argument("--seed", type=_non_negative_int, help="the first seed (run.seed)")
    sweep.add_argument(
        "--jobs", type=_positive_int, default=1, metavar="J", help="worker processes (1)"
    )
    sweep.add_argument(
        "--out", type=Path, default=Path("sweep"), metavar="DIR", help="output (./sweep)"
    )
    sweep.add_argument(
        "--max-runs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="refuse a sweep of more runs than this unless --yes (default 1000)",
    )
    sweep.add_argument(
        "--cluster",
        metavar="tcp://HOST:PORT",
        help="run on a Dask distributed cluster (dask scheduler / dask worker; pip install "
        "'swarm-fleet[cluster]') instead of --jobs local processes; runs keep only their "
        "summary.json",
    )
    sweep.add_argument("--yes", action="store_true", help="run however many runs it takes")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")

    report = sub.add_parser(
        "report",
        help="draw a run or a sweep: PNG figures and report.md",
        description="Draw the figures a reader expects of a run (its course: coverage, "
        "accuracy, awareness, energy, with the analytic laws beside) or of a sweep (each "
        "headline result against the grid, with 95% intervals), and write report.md with "
        "the tables. Needs matplotlib: pip install 'swarm-fleet[plot]'.",
        epilog="examples:\n"
        "  swarm run rumor --out runs/rumor && swarm report runs/rumor\n"
        "  swarm sweep rumor --grid gossip.k=1,2,3 --repeat 5 --out sw && swarm report sw",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("directory", type=Path, help="the --out of `swarm run` or `swarm sweep`")
    report.add_argument(
        "--out", type=Path, metavar="DIR", help="where to write (default DIRECTORY/report)"
    )

    worker = sub.add_parser(
        "worker",
        help="run one shard of a fleet whose coordinator is on the broker",
        description="Join a sharded run: read the scenario and start time that `swarm run "
        "--broker URL --shards N` published, run slice I of N (agents I, I+N, I+2N, ...), "
        "report to the coordinator through the broker. Works from any machine that reaches "
        "the broker. The run's messages are sealed with a key only its processes hold: "
        "a worker reads it from SWARM_RUN_KEY (hex), which the coordinator sets for the "
        "workers it starts.",
    )
    worker.add_argument("--broker", required=True, metavar="URL", help="mqtt://host:port")
    worker.add_argument("--run", required=True, metavar="ID", help="the run's name (run.name)")
    worker.add_argument("--shard", required=True, metavar="I/N", help="which slice, e.g. 0/2")
    worker.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=60.0,
        metavar="S",
        help="seconds to wait for the coordinator's scenario (default 60)",
    )

    broker = sub.add_parser(
        "broker",
        help="start a local mosquitto configured for fleets",
        description="Start mosquitto on loopback with a generated configuration (queue and "
        "packet limits sized for fleets), print the URL to pass to --broker, and stop "
        "cleanly on Ctrl-C.",
    )
    broker.add_argument(
        "--port",
        type=_port,
        default=0,
        help="port to listen on (default: a free one); one in use by another program is an error",
    )
    broker.add_argument(
        "--auth",
        metavar="USER[:PASSWORD]",
        help="refuse anonymous clients and apply the fleet ACL, with one user per role: USER "
        "for the fleet (swarm run --broker and the workers it starts), USER-operator for "
        "dashboards and swarm control (live controls only), USER-agent for swarm worker on "
        "other machines (its agents' messages, no metrics or controls). Everyone reads "
        "swarm/#; a client may publish on agent inboxes and bundles only under its own client "
        "id. Without PASSWORD a random one is made; the other two are always random. A URL "
        "per role is printed",
    )
    broker.add_argument(
        "--print-config", action="store_true", help="print the generated configuration and exit"
    )

    decode = sub.add_parser(
        "decode",
        help="print wire payloads as JSON (from a file, stdin, or a live broker)",
        description="Decode swarm wire payloads into JSON lines. Reads one raw payload from "
        "FILE or stdin; with --hex, lines of '[topic ]HEX' such as mosquitto_sub -F '%%t %%x' "
        "prints; with --broker, subscribes live.",
        epilog="examples:\n"
        "  mosquitto_sub -p 1883 -t 'swarm/#' -F '%t %x' | swarm decode --hex\n"
        "  swarm decode --broker mqtt://127.0.0.1:1883 --topic 'swarm/fleet/metrics' --count 5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    decode.add_argument("file", nargs="?", type=Path, help="a file holding one raw payload")
    decode.add_argument("--hex", action="store_true", help="stdin lines are '[topic ]HEX'")
    decode.add_argument("--broker", metavar="URL", help="subscribe live on this broker")
    decode.add_argument(
        "--topic", default="swarm/#", metavar="FILTER", help="with --broker (default: swarm/#)"
    )
    decode.add_argument(
        "--count", type=_non_negative_int, default=0, help="with --broker: stop after N (0: never)"
    )

    tui = sub.add_parser(
        "tui",
        help="watch a run live in a terminal dashboard and turn its knobs",
        description="Run a scenario on the embedded broker with a live dashboard (default "
        "scenario: lab), or attach to a run on a real broker. Keys are shown in the footer; "
        "? lists them all, ctrl+p opens the command palette. Every knob is a control message "
        "on swarm/<run>/control/<command>, the same a headless run accepts.",
        epilog=EPILOG_TUI,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _scenario_arguments(tui, default="lab")
    tui.add_argument(
        "--speed",
        type=_positive_seconds,
        metavar="S",
        help="simulated seconds per wall second (default: 4 gossip periods); + and - change it",
    )
    tui.add_argument(
        "--attach",
        metavar="URL",
        help="watch a run on this broker (mqtt://host:port) instead of starting one",
    )
    tui.add_argument(
        "--run", metavar="ID", help="with --attach: the run's name (default: the first seen)"
    )
    tui.add_argument(
        "--replay", type=Path, metavar="DIR", help="show a run recorded with swarm run --out DIR"
    )
    tui.add_argument(
        "--export-dir",
        type=Path,
        default=Path("swarm-export"),
        metavar="DIR",
        help="where the export key writes (default: ./swarm-export)",
    )

    ctl = sub.add_parser(
        "control",
        help="send one control message to a running fleet on a broker",
        description="Publish a control command to a fleet running on a real broker (swarm run "
        "--broker ...), as the dashboard does. Its answer (applied or refused, and why) is an "
        "event on swarm/<run>/events/control.",
        epilog=EPILOG_CONTROL,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ctl.add_argument("verb", metavar="COMMAND", help="one of: " + ", ".join(_control_names()))
    ctl.add_argument("args", nargs="*", metavar="KEY=VALUE", help="arguments (VALUE is TOML)")
    ctl.add_argument("--broker", required=True, metavar="URL", help="mqtt://host:port")
    ctl.add_argument("--run", required=True, metavar="ID", help="the run's name (run.name)")

    for needs_broker in (run, worker, decode, tui, ctl):
        needs_broker.add_argument(
            "--password-file",
            type=Path,
            metavar="FILE",
            help="the broker password, read from FILE (first line) instead of the URL, "
            "for the user named in the URL; or set SWARM_BROKER_PASSWORD",
        )
    scenarios = sub.add_parser(
        "scenarios",
        help="list the built-in scenarios, or print one",
        description="List the built-in scenarios; with a NAME, print its resolved TOML "
        "(every key, defaults filled in), a starting point for your own file.",
    )
    scenarios.add_argument("name", nargs="?", help="a built-in scenario to print")
    scenarios.add_argument(
        "--workloads",
        action="store_true",
        help="list the registered workloads instead: what their agents do, their scenario "
        "section, message kinds and Sybil behaviours",
    )

    bench = sub.add_parser(
        "bench",
        help="run benchmarks (separate from the tests)",
        description="Run the named benchmarks (all when none is named) and print their "
        "figures; each compares against a ceiling measured in the same run where one exists.",
    )
    bench.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run")
    bench.add_argument("--json", action="store_true", help="print a JSON list of results")
    bench.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    bench.add_argument(
        "--quick", action="store_true", help="smaller sizes, for a smoke test of the harness"
    )
    return parser


def _scenario_arguments(parser: argparse.ArgumentParser, *, default: str) -> None:
    """SCENARIO, --set, --seed and --agents, as `run` and `tui` both take them."""
    parser.add_argument(
        "scenario", nargs="?", help=f"a built-in name or a .toml path (default: {default})"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key, e.g. --set gossip.fanout=3 (repeatable)",
    )
    parser.add_argument("--seed", type=_non_negative_int, help="override run.seed")
    parser.add_argument("--agents", type=_non_negative_int, help="override fleet.count")


def _direct_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """--seed and --agents as scenario keys."""
    direct: dict[str, Any] = {}
    if args.seed is not None:
        direct["run.seed"] = args.seed
    if args.agents is not None:
        direct["fleet.count"] = args.agents
    return direct


def _control_names() -> list[str]:
    from swarm.fleet.control import COMMANDS

    return list(COMMANDS)


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _port(text: str) -> int:
    value = _non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is 0-65535, got {value}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _use_password_file(path: Path) -> None:
    """Put the broker password where BrokerUrl looks for it (workers inherit it too)."""
    from swarm.broker.url import PASSWORD_ENVIRONMENT

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"--password-file {str(path)!r}: cannot read it ({exc})") from None
    if not lines or not lines[0]:
        raise ScenarioError(f"--password-file {str(path)!r}: the first line is empty")
    os.environ[PASSWORD_ENVIRONMENT] = lines[0]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if getattr(args, "password_file", None) is not None:
            _use_password_file(args.password_file)
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "scenarios":
            return _cmd_scenarios(args)
        if args.command == "sweep":
            return _cmd_sweep(args)
        if args.command == "report":
            return _cmd_report(args)
        if args.command == "broker":
            return _cmd_broker(args)
        if args.command == "decode":
            return _cmd_decode(args)
        if args.command == "worker":
            return _cmd_worker(args)
        if args.command == "tui":
            return _cmd_tui(args)
        if args.command == "control":
            return _cmd_control(args)
        if args.command == "bench":
            from swarm.run.bench import main as bench_main

            return bench_main(args.names, as_json=args.json, list_only=args.list, quick=args.quick)
    except (ScenarioError, workloads.UnknownWorkload) as exc:
        print(f"swarm: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # the environment (no broker, no mosquitto), not the input
        print(f"swarm: error: {exc}", file=sys.stderr)
        return getattr(exc, "status", 1)  # an interrupted run: 128 + the signal
    except KeyboardInterrupt as exc:
        print("swarm: interrupted", file=sys.stderr)
        return 143 if isinstance(exc, _Terminated) else 130
    return 2  # pragma: no cover - argparse guarantees a command


def _cmd_sweep(args: argparse.Namespace) -> int:
    from swarm.run.sweep import (
        MAX_JOBS,
        SweepError,
        execute,
        write_tables,
    )

    try:
        the_plan = sweep_plan(args)
    except SweepError as exc:
        raise ScenarioError(str(exc)) from None
    if args.jobs > MAX_JOBS:
        raise ScenarioError(f"--jobs {args.jobs}: at most {MAX_JOBS} worker processes")
    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScenarioError(f"--out {str(out)!r}: cannot create it ({exc})") from None
    failed = 0
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=args.quiet,
    )
    with progress:
        task = progress.add_task(f"sweep of {len(the_plan.jobs)} runs", total=len(the_plan.jobs))

        def on_done(outcome: Any, done: int, total: int) -> None:
            nonlocal failed
            if outcome[1] is None:
                failed += 1
                progress.console.print(f"run {outcome[0].run_id} failed: {outcome[2]}")
            progress.update(task, completed=done)

        # SIGTERM stops a sweep as Ctrl-C does (the workers go with it); what finished
        # stays, and the same command finishes the rest.
        previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
        try:
            outcomes = execute(the_plan, out, jobs=args.jobs, cluster=args.cluster, on_done=on_done)
        except OSError as exc:
            raise ScenarioError(f"--out {str(out)!r}: {exc}") from None
        finally:
            signal.signal(signal.SIGTERM, previous)
    try:
        write_tables(the_plan, outcomes, out)
    except OSError as exc:
        raise ScenarioError(f"writing the tables in {str(out)!r}: {exc}") from None
    print(
        f"{len(outcomes) - failed} of {len(outcomes)} runs ok over {the_plan.points} points: "
        f"{out / 'results.csv'}, {out / 'summary.csv'}",
        file=sys.stderr,
    )
    return 1 if failed else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from swarm.run.report import ReportError, report

    try:
        done = report(args.directory, args.out)
    except ReportError as exc:
        raise ScenarioError(str(exc)) from None
    except OSError as exc:  # the disk filled or the directory vanished while writing
        print(f"swarm: error: writing the report: {exc}", file=sys.stderr)
        return 1
    print(f"{done.markdown}: {len(done.drawn)} figures", file=sys.stderr)
    for name, why in done.skipped:
        print(f"  not drawn: {name}: {why}", file=sys.stderr)
    return 0


def sweep_plan(args: argparse.Namespace) -> Any:
    """The sweep `swarm sweep` ARGS asks for (every scenario built and checked, no run
    made); SweepError names what is wrong."""
    from swarm.run.sweep import DEFAULT_MAX_RUNS, plan

    return plan(
        args.scenario,
        args.grid,
        args.zip,
        args.overrides,
        repeat=args.repeat,
        seed=args.seed,
        max_runs=sys.maxsize if args.yes else args.max_runs or DEFAULT_MAX_RUNS,
    )


class _Terminated(KeyboardInterrupt):
    """SIGTERM, unwinding like Ctrl-C (exit status 143)."""


def _terminate_as_interrupt(signum: int, frame: Any) -> None:
    raise _Terminated


def _cmd_tui(args: argparse.Namespace) -> int:
    from swarm.run import live

    source: Any
    if args.attach is not None and args.replay is not None:
        raise ScenarioError("--attach and --replay: choose one")
    if args.attach is not None:
        if args.scenario or args.overrides:
            raise ScenarioError("--attach watches a run that exists: no scenario or --set")
        try:
            source = live.Attached(args.attach, args.run)
        except ValueError as exc:
            raise ScenarioError(f"--attach: {exc}") from None
        source.start()  # fails here, before the screen is taken, if the broker is away
    elif args.replay is not None:
        if not (args.replay / "metrics.jsonl").is_file():
            raise ScenarioError(f"--replay {str(args.replay)!r}: no metrics.jsonl there")
        try:
            source = live.StaticSource.from_directory(args.replay)
        except ValueError as exc:
            raise ScenarioError(f"--replay: {exc}") from None
    else:
        scenario = load(args.scenario or "lab", args.overrides, **_direct_overrides(args))
        source = live.LocalRun(scenario, speed=args.speed)
    from swarm.tui import build_app

    try:
        build_app(source, export_root=args.export_dir).run()
    finally:
        source.stop()
    return 0


def _cmd_control(args: argparse.Namespace) -> int:
    import asyncio
    import tomllib

    from swarm import topics
    from swarm.broker.mqtt import BrokerUrl, MqttTransport
    from swarm.broker.network import Endpoint
    from swarm.fleet import control

    body: dict[str, Any] = {}
    for item in args.args:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ScenarioError(f"argument {item!r}: expected KEY=VALUE, e.g. fraction=0.1")
        try:
            body[key] = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            body[key] = text
    try:
        control.parse(args.verb, body)
        topics.validate_segment("run", args.run)
        url = BrokerUrl.parse(args.broker)
    except (control.ControlError, ValueError) as exc:
        raise ScenarioError(str(exc)) from None
    topic, payload = control.encode(args.run, args.verb, body, src="cli", seq=1)

    async def send() -> None:
        transport = MqttTransport(url)
        link = transport.connect(f"swarm-control-{secrets.token_hex(4)}", Endpoint(reliable=True))
        await transport.start()
        link.publish(topic, payload)
        await transport.drain()
        await transport.stop()

    asyncio.run(send())
    print(f"sent {args.verb} to {topic}")
    return 0


def _cmd_scenarios(args: argparse.Namespace) -> int:
    if args.workloads:
        return _print_workloads()
    if args.name:
        print(load(args.name).to_toml(), end="")
        return 0
    table = Table(title="built-in scenarios", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("agents", justify="right")
    table.add_column("does")
    table.add_column("description")
    for name in builtin_names():
        s = load(name)
        does = workloads.spec(s.fleet.workload).describe(s)
        table.add_row(name, str(s.fleet.count), does, s.run.description)
    Console().print(table)
    return 0


def _print_workloads() -> int:
    table = Table(title="workloads (fleet.workload)", title_justify="left")
    for column in ("name", "agents", "section", "message kinds", "Sybil behaviours"):
        table.add_column(column, style="bold" if column == "name" else None)
    for name in workloads.names():
        spec = workloads.spec(name)
        section = escape(f"[{name}]") if spec.section is not None else "-"
        behaviours = ", ".join(spec.behaviours) or "-"
        table.add_row(name, spec.summary, section, ", ".join(spec.kinds), behaviours)
    Console().print(table)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from swarm.run.runner import run_scenario

    direct = _direct_overrides(args)
    if args.shards > 1:
        direct["broker.connections"] = "shared"
    scenario = load(args.scenario, args.overrides, **direct)
    if args.shards > 1 and args.broker is None:
        raise ScenarioError("--shards needs --broker: shards talk through a real broker")
    if args.shards == 0:
        raise ScenarioError("--shards must be >= 1")
    if args.shards > min(MAX_SHARDS, scenario.fleet.count):
        raise ScenarioError(
            f"--shards {args.shards}: at most {MAX_SHARDS}, and no more than the fleet's "
            f"{scenario.fleet.count} agents (each shard is a process on this machine)"
        )
    if args.shards > 1:
        from swarm import seal

        try:
            seal.key_from_environment()  # the run key its workers will share
        except ValueError as exc:
            raise ScenarioError(str(exc)) from None
    if args.broker is not None:
        from swarm.broker.mqtt import BrokerUrl

        try:
            BrokerUrl.parse(args.broker)
        except ValueError as exc:
            raise ScenarioError(f"--broker: {exc}") from None
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ScenarioError(f"--out {str(args.out)!r} exists and is not a directory")
    if args.out is not None and not args.force:
        earlier = [name for name in RUN_FILES if (args.out / name).exists()]
        if earlier:
            raise ScenarioError(
                f"--out {str(args.out)!r} holds an earlier run ({', '.join(earlier)}); "
                "add --force to overwrite it, or choose another directory"
            )

    stderr = Console(stderr=True)
    show_progress = stderr.is_terminal and not args.quiet
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=stderr,
        disable=not show_progress,
        transient=True,
    )
    task = progress.add_task(scenario.run.name, total=scenario.max_rounds, status="")

    def on_round(row: dict[str, Any]) -> None:
        if "informed_fraction" in row:
            status = f"informed {row['informed_fraction']:.1%}"
        elif "accuracy" in row:
            status = f"accuracy {row['accuracy']:.1%}"
        elif row.get("coverage") is not None:
            status = f"coverage {row['coverage']:.1%}"
        elif row.get("aware_fraction") is not None:
            status = f"aware {row['aware_fraction']:.1%}"
        elif "variance" in row:
            status = f"variance {row['variance']:.3g}"
        else:
            status = ""
        progress.update(task, completed=row["round"], status=status)

    if show_progress and scenario.sybil.count and scenario.sybil.compare_clean:
        stderr.print(
            "[dim]then the same run without Sybils, for comparison "
            "(--set sybil.compare_clean=false skips it)[/dim]"
        )
    shown = False

    def show(summary: dict[str, Any]) -> None:
        """The summary on stdout before anything is written to disk, which may be full."""
        nonlocal shown
        shown = True
        progress.stop()
        if args.json:
            print(json.dumps(summary, indent=2, sort_keys=True), flush=True)
        elif not args.quiet:
            _print_summary(summary)

    try:
        with progress:
            if args.shards > 1:
                from swarm.run.shards import run_sharded

                run_sharded(
                    scenario,
                    args.broker,
                    args.shards,
                    out_dir=args.out,
                    on_round=on_round,
                    show=show,
                )
            else:
                run_scenario(
                    scenario,
                    out_dir=args.out,
                    on_round=on_round,
                    broker_url=args.broker,
                    show=show,
                )
    except OSError as exc:
        where = " (the summary is on stdout)" if shown and args.json else ""
        raise ScenarioError(f"cannot write results to {str(args.out)!r}: {exc}{where}") from None
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    import asyncio

    from swarm import topics
    from swarm.broker.mqtt import BrokerUrl

    try:
        BrokerUrl.parse(args.broker)
        topics.validate_segment("--run", args.run)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
    try:
        index_text, count_text = args.shard.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise ScenarioError(f"--shard {args.shard!r}: use I/N, e.g. 0/2") from None
    if not 0 <= index < count:
        raise ScenarioError(f"--shard {args.shard!r}: need 0 <= I < N")
    from swarm import seal
    from swarm.run.shards import run_worker

    try:
        key = seal.key_from_environment()
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
    if key is None:
        raise ScenarioError(
            f"{seal.KEY_ENVIRONMENT} is not set: a worker needs its run's key (the "
            f"coordinator passes it to the workers it starts; to join from elsewhere, run "
            f"the coordinator with {seal.KEY_ENVIRONMENT} set and give the worker the same)"
        )
    return asyncio.run(run_worker(args.broker, args.run, index, count, key, args.timeout))


def _cmd_decode(args: argparse.Namespace) -> int:
    from swarm import decode

    decode.know_every_kind()  # a broken plugin is an error before any input is read
    if args.broker is not None:
        return _decode_live(args)
    if args.hex:
        for record in decode.from_hex_lines(sys.stdin):
            print(decode.to_line(record), flush=True)
        return 0
    try:
        payload = args.file.read_bytes() if args.file else sys.stdin.buffer.read()
    except OSError as exc:
        raise ScenarioError(f"cannot read {str(args.file)!r}: {exc.strerror}") from None
    record = decode.describe(payload)
    print(decode.to_line(record))
    return 1 if "malformed" in record else 0


def _decode_live(args: argparse.Namespace) -> int:
    import asyncio
    import os

    from swarm import decode, topics
    from swarm.broker.mqtt import BrokerUrl, MqttTransport

    try:
        url = BrokerUrl.parse(args.broker)
        topics.validate_filter(args.topic)
    except ValueError as exc:
        raise ScenarioError(f"decode: {exc}") from None

    async def follow() -> None:
        transport = MqttTransport(url)
        link = transport.connect(f"swarm-decode-{os.getpid()}")
        link.subscribe(args.topic)
        await transport.start()
        seen = 0
        try:
            async for message in link:
                print(decode.to_line(decode.describe(message.payload, message.topic)), flush=True)
                seen += 1
                if args.count and seen >= args.count:
                    break
        finally:
            await transport.stop()

    asyncio.run(follow())
    return 0


def _cmd_broker(args: argparse.Namespace) -> int:
    import signal
    import threading

    from swarm.broker.server import MosquittoServer, PortInUse

    # What each role's URL is for: the role decides what its user may publish.
    uses = {
        "fleet": "swarm run --broker URL: the coordinator, the workers it starts, their agents",
        "operator": "swarm tui --attach URL, swarm control --broker URL: live controls only",
        "agent": "swarm worker --broker URL on another machine: its agents' messages and its "
        "shard's reports, no metrics or controls",
    }
    users: dict[str, str] = {}
    roles: dict[str, str] = {}
    if args.auth is not None:
        user, _, password = args.auth.partition(":")
        if not user or any(c in args.auth for c in "\n\r\0"):
            raise ScenarioError(f"--auth {args.auth!r}: give USER or USER:PASSWORD")
        users[user] = password or secrets.token_urlsafe(12)
        for role in ("operator", "agent"):
            users[f"{user}-{role}"] = secrets.token_urlsafe(12)
            roles[f"{user}-{role}"] = role
    server = MosquittoServer(
        port=args.port, users=users, roles=roles, live_controls=tuple(_control_names())
    )
    try:
        acl = server.acl_text() if users else ""
    except ValueError as exc:
        raise ScenarioError(f"--auth {args.auth!r}: {exc}") from None
    if args.print_config:
        if server.port == 0:
            server.port = 1883
        print(server.config_text(), end="")
        if users:
            print(f"# the acl file:\n{acl}", end="")
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        server.start()
    except PortInUse as exc:
        raise ScenarioError(f"{exc}: choose another with --port, or 0 for a free one") from None
    try:
        print(f"mosquitto listening on {server.url}", flush=True)
        watcher = ""
        if users:
            print("anonymous clients are refused; one user per role, each with its own URL:")
            for role, use in uses.items():
                print(f"  {role:<9} {server.url_for(role)}\n            for {use}")
            watcher = next(u for u in users if server.role_of(u) == "operator")
        print(f"run a fleet on it:  swarm run --broker {server.url}", flush=True)
        creds = f" -u {shlex.quote(watcher)} -P {shlex.quote(users[watcher])}" if watcher else ""
        watch = f"mosquitto_sub -h 127.0.0.1 -p {server.port}{creds} -t 'swarm/#' -v"
        print(f"watch the traffic:  {watch}", flush=True)
        print("Ctrl-C stops it.", flush=True)
        try:
            while not stop.wait(0.5):
                why = server.failure()
                if why is not None:
                    raise RuntimeError(f"mosquitto stopped unexpectedly: {why}")
        except KeyboardInterrupt:
            pass
    finally:
        server.stop()
    print("mosquitto stopped", flush=True)
    return 0


def _print_summary(summary: dict[str, Any]) -> None:
    console = Console()
    table = Table(title=f"run {summary['scenario']['run']['name']!r}", title_justify="left")
    table.add_column("figure", style="bold")
    table.add_column("value", justify="right")
    speedup = summary["sim_time"] / summary["wall_time"] if summary["wall_time"] else 0.0
    scenario = from_dict(summary["scenario"])
    doing = ("workload", workloads.spec(scenario.fleet.workload).describe(scenario))
    rows = [
        ("agents", summary["agents"]),
        doing,
        ("topology", summary["topology"]["name"]),
        ("seed", summary["seed"]),
        ("rounds", summary["rounds"]),
        ("simulated time (s)", summary["sim_time"]),
        ("wall time (s)", summary["wall_time"]),
        ("speed-up", speedup),
    ]
    rows += [(f"messages.{k}", v) for k, v in summary["messages"].items()]
    rows += flatten("results", summary["results"])
    if summary["crashes"]:
        rows.append(("crashed agents", len(summary["crashes"])))
    for name, value in rows:
        table.add_row(name, brief(value))
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
