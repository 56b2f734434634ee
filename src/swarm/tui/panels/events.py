"""The event log: deaths, partitions, injections, refusals, newest last, bounded."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import RichLog

from swarm.tui.view import LOG_LINES

__all__ = ["EventLog", "describe"]


def describe(event: dict[str, Any]) -> Text:
    """One line for an event message."""
    kind = str(event.get("event") or event.get("state") or "?")
    round_ = event.get("round")
    text = Text(f"r{round_:<5} " if isinstance(round_, int) else "       ", "dim")
    if kind == "control":
        ok = bool(event.get("ok"))
        text.append(f"{event.get('command', '?')}: ", "bold green" if ok else "bold red")
        text.append(str(event.get("detail", "")), "" if ok else "red")
    elif kind == "crash":
        text.append("crash ", "bold red")
        text.append(f"{event.get('agent', '?')} ({event.get('reason', '')})")
    elif kind == "lost":
        text.append("lost ", "bold red")
        text.append(f"{event.get('agent', '?')}: its connection vanished")
    else:
        text.append(f"{kind} ", "bold")
        text.append(", ".join(f"{k}={v}" for k, v in event.items() if k not in ("event", "round")))
    return text


class EventLog(RichLog):
    """Crash events come one per agent: a burst is folded into one line per batch."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_lines=LOG_LINES, wrap=False, markup=False, **kwargs)
        self.border_title = "Events"

    def add(self, events: list[dict[str, Any]]) -> None:
        crashes = [e for e in events if e.get("event") == "crash"]
        for event in events:
            if event.get("event") != "crash" or len(crashes) <= 3:
                self.write(describe(event))
        if len(crashes) > 3:
            reasons = sorted({str(e.get("reason")) for e in crashes})
            line = Text(f"r{crashes[-1].get('round', '?'):<5} ", "dim")
            line.append(f"{len(crashes)} crashes ", "bold red")
            line.append(f"({', '.join(reasons)[:60]})")
            self.write(line)
