"""What a report draws of a gossip run: coverage beside the mean-field law, traffic, and
the spread of the values for the averaging protocols."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from swarm import laws
from swarm.figures import Curves, Line

__all__ = ["FIGURES", "HEADLINE"]


def _push_curve(
    summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
) -> list[float] | None:
    """Push on a complete graph without loss is the law's setting; elsewhere it only misleads."""
    scenario = summary["scenario"]
    gossip, network = scenario["gossip"], scenario["network"]
    if gossip["protocol"] != "push" or network["topology"] != "complete" or network["loss"]:
        return None
    n = summary["agents"]
    return laws.push_informed_curve(n, gossip["fanout"], len(rows) - 1)


def _pairwise_curve(
    summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
) -> list[float] | None:
    """Jelasity et al.'s factor per cycle holds for pairwise averaging, from the first row."""
    if summary["scenario"]["gossip"]["protocol"] != "average" or not rows:
        return None
    first = rows[0].get("variance")
    if not isinstance(first, int | float) or first <= 0:
        return None
    return laws.averaging_variance_curve(first, len(rows) - 1)


FIGURES = (
    Curves(
        name="coverage",
        title="How fast does the rumor reach everyone?",
        y_label="share of nodes informed",
        lines=(Line("informed_fraction", "measured"),),
        law=_push_curve,
        law_label="mean-field push (Demers et al. 1987)",
    ),
    Curves(
        name="traffic",
        title="How many messages does each round cost?",
        y_label="messages sent per round",
        lines=(Line("sent", "messages", per_row=True),),
    ),
    Curves(
        name="variance",
        title="How fast do the nodes' values agree?",
        y_label="variance of the nodes' values",
        lines=(Line("variance", "measured"),),
        log_y=True,
        law=_pairwise_curve,
        law_label="1/(2·sqrt(e)) per cycle (Jelasity et al. 2005)",
    ),
)

HEADLINE = (
    "rounds_to_all",
    "residue",
    "traffic",
    "t_ave",
    "t_last",
    "variance_per_cycle",
    "max_error",
)
