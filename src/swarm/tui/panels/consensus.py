"""Consensus: how often a taxi's own decisions are wrong, and what voting should make of it.

The compound law: a peer's false report only convinces a taxi voting by quorum q when q
independent reporters are wrong together, (1 - p)^q for single-decision accuracy p.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from swarm.tui.panels.base import Panel, figure
from swarm.tui.view import View


class ConsensusPanel(Panel):
    title = "Consensus"

    @classmethod
    def applies(cls, view: View) -> bool:
        return view.workload == "hazards"

    def draw(self, view: View, width: int) -> Any:
        last = view.last
        decisions = last.get("decisions") or 0
        wrong = (last.get("false_alarms") or 0) + (last.get("missed_decisions") or 0)
        rule = view.info.get("voting") or "any"
        quorum = 1 if rule == "any" else int(view.info.get("quorum") or 2)
        text = Text()
        text.append(f"voting {rule}", "bold")
        text.append(f"  quorum {quorum}\n" if rule != "any" else "\n")
        if not decisions:
            text.append("no decisions yet", "dim")
            return text
        p = 1.0 - wrong / decisions
        text.append(f"single decision accuracy {figure(p)} ({figure(decisions)} decisions)\n")
        text.append("law: false report convinces ", "yellow")
        text.append(f"{figure((1.0 - p) ** quorum)}", "bold yellow")
        heard = last.get("false_alarms_heard") or 0
        own = last.get("false_alarms") or 0
        text.append("\nmeasured: false alarms heard per own ")
        text.append(figure(heard / own if own else None), "bold")
        return text
