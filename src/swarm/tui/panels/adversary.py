"""Adversary: the Sybil identities, what the attack achieved, and the defense in use."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from swarm.tui.panels.base import Panel, figure
from swarm.tui.view import View


class AdversaryPanel(Panel):
    title = "Adversary"

    @classmethod
    def applies(cls, view: View) -> bool:
        return view.sybils > 0

    def draw(self, view: View, width: int) -> Any:
        status = view.status or {}
        sybils = status.get("sybils", {})
        reserved, joined = sybils.get("reserved", view.sybils), sybils.get("joined", 0)
        text = Text()
        text.append(f"{sybils.get('behaviour') or 'sybils'}: ", "bold magenta")
        text.append(f"{figure(joined)} joined of {figure(reserved)}")
        dormant = (reserved or 0) - (joined or 0)
        if dormant:
            text.append(f"  ({figure(dormant)} dormant: s injects)", "dim")
        text.append("\ndefense: ", "bold")
        text.append(_defense(view, status))
        text.append("\nattack: ", "bold")
        text.append(_success(view))
        return text


def _defense(view: View, status: dict[str, Any]) -> str:
    if status.get("aggregator"):
        rejected = view.last.get("updates_rejected")
        return f"server rule {status['aggregator']}, {figure(rejected)} updates rejected"
    if view.info.get("voting"):
        return f"voting {view.info['voting']}"
    return "none configured"


def _success(view: View) -> str:
    """What changed since the first injection: accuracy lost, or fake alarms believed."""
    last = view.last
    if "accuracy" in last:
        before = _accuracy_at_first_inject(view)
        if before is None:
            return f"accuracy {figure(last['accuracy'])} (no Sybil injected yet)"
        return f"accuracy {figure(before)} → {figure(last['accuracy'])} since inject"
    if "fake_alarms_heard" in last:
        return f"{figure(last['fake_alarms_heard'])} fake alarms believed"
    if "informed_fraction" in last:
        return f"informed {figure(last['informed_fraction'])}"
    return "-"


def _accuracy_at_first_inject(view: View) -> float | None:
    injected = [
        e.get("round")
        for e in view.events
        if e.get("event") == "control" and e.get("command") == "inject" and e.get("ok")
    ]
    if not injected or type(injected[0]) is not int:
        return None
    for row in view.rows:
        if row.get("round") == injected[0] and "accuracy" in row:
            return float(row["accuracy"])
    return None
