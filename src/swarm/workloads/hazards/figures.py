"""What a report draws of a hazards run: how long warnings take, how awareness grows, and
whether the ensemble of judges does as well as the voting laws say."""

from __future__ import annotations

from swarm.figures import Bar, Bars, Curves, Histogram, Line

__all__ = ["FIGURES", "HEADLINE"]

_JUDGES = "compound_judges."

FIGURES = (
    Histogram(
        name="awareness-latency",
        title="How long until the taxis near a hazard know of it?",
        x_label="awareness latency (s, per hazard)",
        source="awareness_latencies",
        marks=tuple(Bar(q, f"awareness_latency.{q}") for q in ("p50", "p90", "p99")),
    ),
    Curves(
        name="awareness",
        title="How many of the taxis that should know, know?",
        y_label="share of live hazards' audience aware",
        lines=(Line("aware_fraction", "aware"),),
        x="time",
        x_label="simulated time (s)",
    ),
    Bars(
        name="judges",
        title="Does voting among judges beat one judge, as the laws say?",
        y_label="share of readings judged right",
        x_label="decision rule",
        bars=(
            Bar("one judge (mean)", _JUDGES + "measured.mean_member_accuracy"),
            Bar("majority", _JUDGES + "measured.majority", _JUDGES + "measured.majority_law"),
            Bar("quorum", _JUDGES + "measured.quorum", _JUDGES + "measured.quorum_law"),
            Bar(
                "majority, independent",
                _JUDGES + "independent.majority",
                _JUDGES + "independent.majority_law",
            ),
        ),
    ),
    Curves(
        name="false-alarms",
        title="How many false warnings do taxis hear?",
        y_label="false warnings heard so far",
        lines=(
            Line("false_alarms_heard", "from honest misjudgements"),
            Line("fake_alarms_heard", "from Sybils"),
        ),
        x="time",
        x_label="simulated time (s)",
    ),
)

HEADLINE = (
    "reached_fraction",
    "awareness_latency.p50",
    "awareness_latency.p90",
    "false_alarms_heard",
    "decision_accuracy",
    "attack.fake_alarms_believed",
)
