"""What a report draws of a learning run: accuracy beside the centralized baseline, what
the updates cost on the wire, and where the energy went."""

from __future__ import annotations

from swarm.figures import Bars, Curves, Line

__all__ = ["FIGURES", "HEADLINE"]

FIGURES = (
    Curves(
        name="accuracy",
        title="How fast does the fleet learn?",
        y_label="test accuracy (mean over devices; band: worst to best)",
        lines=(Line("accuracy", "fleet", low="accuracy_min", high="accuracy_max"),),
        level="baseline_accuracy",
        level_label="one model trained on all the data",
    ),
    Curves(
        name="update-bytes",
        title="What does learning cost on the wire?",
        y_label="model-update bytes per round",
        lines=(Line("update_bytes", "updates", per_row=True),),
    ),
    Bars(
        name="energy",
        title="Where does the fleet's energy go?",
        y_label="energy (J, whole fleet)",
        x_label="spent on",
        source="energy_j",
        leave_out=("total",),
    ),
)

HEADLINE = (
    "accuracy",
    "accuracy_gap",
    "attack.accuracy_loss",
    "update_bytes",
    "energy_j.total",
)
