"""Consensus: voting by a taxi's judges beside the binomial law, and the fleet's quorum.

The compound law says k independent judges of accuracy p, voting by majority, are right
with probability sum_{j > k/2} C(k, j) p^j (1-p)^(k-j). The judges are measured on
held-out readings; they learn from the same data, so their errors correlate and they
fall short of the law, while simulated independent voters meet it. Across the fleet, a
false report convinces a taxi voting by quorum q only when q reporters are wrong
together, (1 - p)^q for the taxis' measured decision accuracy p.
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
        return "consensus" in view.panels

    def draw(self, view: View, width: int) -> Any:
        last = view.last
        readings = last.get("readings") or 0  # own readings: what false alarms count
        wrong = (last.get("false_alarms") or 0) + (last.get("missed_decisions") or 0)
        rule = view.info.get("voting") or "any"
        quorum = 1 if rule == "any" else int(view.info.get("quorum") or 2)
        text = Text()
        text.append(f"voting {rule}", "bold")
        text.append(f"  quorum {quorum}\n" if rule != "any" else "\n")
        judges = (view.status or {}).get("judges")
        if judges:
            text.append(f"{judges['k']} judges, each {figure(judges['member_accuracy'])}")
            text.append(f", error corr {figure(judges['error_correlation'], 2)}\n", "dim")
            text.append("majority ")
            text.append(figure(judges["majority"]), "bold")
            text.append("  law ", "yellow")
            text.append(figure(judges["majority_law"]), "bold yellow")
            text.append(f"  indep. {figure(judges['independent_majority'])}\n", "dim")
        if not readings:
            text.append("no readings judged yet", "dim")
            return text
        p = 1.0 - wrong / readings
        text.append(f"taxis right {figure(p)} of {figure(readings)} readings\n")
        text.append(f"law: a false report convinces (1-p)^{quorum} ", "yellow")
        text.append(f"{figure((1.0 - p) ** quorum)}", "bold yellow")
        heard = last.get("false_alarms_heard") or 0
        own = last.get("false_alarms") or 0
        text.append("\nfalse alarms heard per own ")
        text.append(figure(heard / own if own else None), "bold")
        return text
