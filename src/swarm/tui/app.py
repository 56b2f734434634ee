"""The live dashboard: panels fed from a `Source`, knobs sent as control messages.

`build_app(source)` is the only way in: the app knows nothing of fleets or brokers, so a
test hands it a `StaticSource`, `swarm tui` a `LocalRun`, `swarm tui --attach` an
`Attached` run. The source is polled a few times a second and its batch applied at once,
so a fleet of 10,000 agents costs the UI one redraw per tick, whatever its message rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import Footer, Header

from swarm.fleet.control import ControlError
from swarm.run.live import Source
from swarm.tui.help import HelpScreen
from swarm.tui.panels import PANELS, Panel
from swarm.tui.panels.events import EventLog
from swarm.tui.view import View

__all__ = ["SwarmApp", "build_app"]

REFRESH_SECONDS = 0.25  # how often the source's batch is applied
MAX_SPEED = 1e5


class SwarmApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "swarm"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "pause", "pause/resume"),
        Binding("plus,equals_sign", "speed(2.0)", "faster", key_display="+"),
        Binding("minus", "speed(0.5)", "slower", key_display="-"),
        Binding("s", "inject", "Sybils"),
        Binding("c", "crash", "crash 10%"),
        Binding("p", "partition", "partition/heal"),
        Binding("f", "fanout(1)", "fanout+"),
        Binding("F", "fanout(-1)", "fanout-", show=False),
        Binding("a", "aggregator", "aggregator"),
        Binding("r", "reset", "reset"),
        Binding("e", "export", "export"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "quit", "quit"),
    ]
    KEYS: ClassVar[list[tuple[str, str]]] = [
        ("space", "pause or resume the rounds (virtual time freezes too)"),
        ("+ / -", "double / halve the simulation speed (embedded broker)"),
        ("s", "inject every dormant Sybil identity"),
        ("c", "crash 10% of the live honest agents (palette: by class or region)"),
        ("p", "cut the first region off the rest, or heal (palette: any region)"),
        ("f / F", "gossip fanout one more / one less"),
        ("a", "switch the FedAvg server to the next aggregation rule"),
        ("r", "restart the scenario from round 0"),
        ("e", "export metrics, events and summary to ./swarm-export/"),
        ("?", "this help"),
        ("q", "stop the fleet and quit"),
    ]

    def __init__(self, source: Source, *, export_root: Path | None = None) -> None:
        super().__init__()
        self.source = source
        self.view = View(dict(source.info))
        self.export_root = export_root or Path("swarm-export")
        self.sub_title = str(source.info.get("description") or source.title)
        self.title = f"swarm · {source.title}"
        self.last_refresh = 0.0
        # Held, not queried: a query looks at the active screen, which may be the help.
        self.panels: list[Panel] = [
            cls(id=cls.__name__.removesuffix("Panel").lower()) for cls in PANELS
        ]
        self.log_panel = EventLog(id="events")

    # -- layout ----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Container(id="panels"):
            for panel in self.panels:
                panel.display = type(panel).applies(self.view)
                yield panel
        yield self.log_panel
        yield Footer()

    def on_mount(self) -> None:
        self.source.start()
        self.set_interval(REFRESH_SECONDS, self.refresh_from_source)
        self.refresh_from_source()

    def on_resize(self) -> None:
        width, height = self.size
        grid = self.panels[0].parent
        if grid is None:
            return
        grid.styles.grid_size_columns = 1 if width < 70 else 2 if width < 150 else 3
        self.log_panel.styles.height = 4 if height < 30 else 6 if height < 45 else 10

    def on_unmount(self) -> None:
        self.source.stop()

    # -- data ------------------------------------------------------------------------------
    def refresh_from_source(self) -> None:
        if not self.log_panel.is_attached:  # shutting down
            return
        snapshot = self.source.take()
        generation = self.view.generation
        changed = self.view.apply(snapshot)
        log = self.log_panel
        if self.view.generation != generation:
            log.clear()
        if snapshot.events:
            log.add(snapshot.events)
            self.notify_refusals(snapshot.events)
        if changed or not self.last_refresh:
            self.redraw()
        self.last_refresh = time.monotonic()

    def notify_refusals(self, events: list[dict[str, Any]]) -> None:
        """A fleet that refuses our control says why; the user should not have to read the log."""
        sender = self.source.sender
        if sender is None:  # a recording: its answers were never meant for us
            return
        for event in events:
            if (
                event.get("event") == "control"
                and event.get("ok") is False
                and event.get("src") == sender
            ):
                self.notify(str(event.get("detail", "")), title="refused", severity="warning")

    def redraw(self) -> None:
        view = self.view
        for panel in self.panels:
            panel.display = type(panel).applies(view)
            if panel.display:
                panel.show(view)
        self.sub_title = f"{view.state} · {self.source.info.get('description') or ''}".strip(" ·")

    # -- controls --------------------------------------------------------------------------
    def control(self, command: str, **args: Any) -> bool:
        """Send one control message; a refusal shows as a notification, never a crash."""
        try:
            self.source.send(command, **args)
        except ControlError as exc:
            self.notify(str(exc), title="refused", severity="warning")
            return False
        self.notify(f"{command} {_args(args)}".strip(), timeout=2)
        return True

    @property
    def status(self) -> dict[str, Any]:
        return self.view.status or {}

    def action_pause(self) -> None:
        self.control("resume" if self.status.get("paused") else "pause")

    def action_speed(self, factor: float) -> None:
        speed = self.status.get("speed") or float(self.view.info.get("period") or 1.0)
        new = min(MAX_SPEED, max(0.01, float(speed) * factor))
        self.control("speed", speed=round(new, 4))

    def action_inject(self) -> None:
        sybils = self.status.get("sybils", {})
        dormant = int(sybils.get("reserved", 0)) - int(sybils.get("joined", 0))
        self.control("inject", count=max(1, dormant))

    def action_crash(self, fraction: float = 0.1, **where: str) -> None:
        self.control("crash", fraction=fraction, **where)

    def action_partition(self) -> None:
        regions = list(self.view.info.get("regions") or [])
        if self.status.get("partitioned"):
            self.control("heal")
        elif len(regions) < 2:
            self.notify("partition: this fleet has one region", severity="warning")
        else:
            self.control("partition", groups=[[regions[0]]])

    def action_fanout(self, step: int) -> None:
        fanout = int(self.status.get("fanout") or self.view.info.get("fanout") or 1)
        if fanout + step < 1:
            self.notify("fanout: 1 is the least", severity="warning")
            return
        self.control("fanout", fanout=fanout + step)

    def action_aggregator(self) -> None:
        rules = list(self.view.info.get("aggregators") or [])
        current = self.status.get("aggregator")
        if not rules or current is None:
            self.notify("aggregator: only a FedAvg run has a server rule", severity="warning")
            return
        following = rules[(rules.index(current) + 1) % len(rules)] if current in rules else rules[0]
        self.control("aggregator", rule=following)

    def action_reset(self) -> None:
        try:
            self.source.reset()
        except ControlError as exc:
            self.notify(str(exc), title="refused", severity="warning")
            return
        self.notify("reset: the scenario starts again from round 0", timeout=2)

    def action_export(self) -> None:
        round_ = self.view.last.get("round", 0)
        name = f"{self.view.run_id or self.source.title}-round{round_}".replace("/", "_")
        try:
            path = self.source.export(self.export_root / name)
        except OSError as exc:
            self.notify(f"export failed: {exc}", severity="error")
            return
        self.notify(f"exported to {path}", timeout=4)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.KEYS))

    # -- the command palette ---------------------------------------------------------------
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        info = self.view.info
        yield SystemCommand("Pause or resume", "hold the rounds", self.action_pause)
        for speed in (1, 2, 5, 10, 50, 100):
            yield SystemCommand(
                f"Speed {speed}x",
                f"{speed} simulated s per wall s",
                _bind(self, "speed", speed=float(speed)),
            )
        for count in (1, 5, 10):
            yield SystemCommand(
                f"Inject {count} Sybil(s)",
                "admit dormant identities",
                _bind(self, "inject", count=count),
            )
        for fraction in (0.1, 0.25, 0.5):
            pct = f"{fraction:.0%}"
            yield SystemCommand(
                f"Crash {pct} of the fleet",
                "live honest agents",
                _bind(self, "crash", fraction=fraction),
            )
            for kind in info.get("classes") or []:
                yield SystemCommand(
                    f"Crash {pct} of class {kind}",
                    "live agents of that class",
                    _bind(self, "crash", fraction=fraction, kind=kind),
                )
            for region in info.get("regions") or []:
                yield SystemCommand(
                    f"Crash {pct} of region {region}",
                    "live agents in that region",
                    _bind(self, "crash", fraction=fraction, region=region),
                )
        for region in info.get("regions") or []:
            yield SystemCommand(
                f"Partition {region} off",
                "cut it from the other regions",
                _bind(self, "partition", groups=[[region]]),
            )
        yield SystemCommand("Heal the network", "undo partitions", _bind(self, "heal"))
        for fanout in range(1, 6):
            yield SystemCommand(
                f"Fanout {fanout}", "peers per gossip round", _bind(self, "fanout", fanout=fanout)
            )
        if info.get("strategy") == "fedavg":
            for rule in info.get("aggregators") or []:
                yield SystemCommand(
                    f"Aggregator {rule}",
                    "the FedAvg server's rule",
                    _bind(self, "aggregator", rule=rule),
                )
        yield SystemCommand("Reset", "restart from round 0", self.action_reset)
        yield SystemCommand("Export", "metrics, events and summary", self.action_export)


def _bind(app: SwarmApp, command: str, **args: Any) -> Any:
    return lambda: app.control(command, **args)


def _args(args: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={v:g}" if isinstance(v, float) and math.isfinite(v) else f"{k}={v}"
        for k, v in args.items()
    )


def build_app(source: Source, *, export_root: Path | None = None) -> SwarmApp:
    """The dashboard over `source` (a LocalRun, an Attached run or a StaticSource)."""
    return SwarmApp(source, export_root=export_root)
