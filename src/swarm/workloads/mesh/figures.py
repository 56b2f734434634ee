"""What a report draws of a mesh run: how much of the field reaches the sink, how a
reading degrades with the hops it travels, and the energy the duty cycle spends."""

from __future__ import annotations

from swarm.figures import Bars, Curves, Line

__all__ = ["FIGURES", "HEADLINE"]

FIGURES = (
    Curves(
        name="coverage",
        title="How much of the field does the fleet see?",
        y_label="share of the field covered",
        lines=(Line("coverage", "coverage"),),
        x="time",
        x_label="simulated time (s)",
    ),
    Bars(
        name="error-by-hops",
        title="How stale is a reading after the hops it travelled?",
        y_label="mean error of the view",
        x_label="hops from the reading's source",
        source="error_by_hops",
    ),
    Curves(
        name="energy",
        title="How fast does the mesh spend its energy?",
        y_label="energy spent (J, whole fleet)",
        lines=(Line("energy_j", "energy"),),
        x="time",
        x_label="simulated time (s)",
    ),
)

HEADLINE = (
    "coverage",
    "view_error",
    "delivery_ratio",
    "age_of_information.p50",
    "energy_j.per_device_mean",
)
