"""A frozen data source: 30 rounds of a learning run with Sybils injected at round 12."""

from __future__ import annotations

from typing import Any

import pytest

from swarm.run.live import StaticSource


def frozen_rows() -> list[dict[str, Any]]:
    rows = []
    for r in range(31):
        accuracy = min(0.9, 0.1 + 0.06 * r) if r <= 12 else max(0.2, 0.82 - 0.05 * (r - 12))
        rows.append(
            {
                "round": r,
                "time": float(r),
                "alive": 60,
                "sent": 40 * r,
                "delivered": 40 * r,
                "dropped": 0,
                "dropped_malformed": 0,
                "dropped_spoofed": 0,
                "bytes": 104_000 * r,
                "accuracy": accuracy,
                "accuracy_min": accuracy - 0.1,
                "accuracy_max": accuracy + 0.05,
                "update_bytes": 2600 * r,
                "updates_rejected": 0,
            }
        )
    return rows


INFO = {
    "name": "lab",
    "description": "60 devices learn digits by FedAvg; 15 dormant Sybils wait for `inject`",
    "agents": 60,
    "workload": "learn",
    "fanout": 1,
    "period": 1.0,
    "regions": ["north", "south"],
    "classes": ["gpu", "taxi"],
    "strategy": "fedavg",
    "aggregators": ["mean", "median", "krum"],
    "sybils": 15,
}

STATUS = {
    "round": 30,
    "time": 30.0,
    "agents": 60,
    "shard": 0,
    "classes": {
        "gpu": {"total": 30, "alive": 30, "crashed": 0},
        "taxi": {"total": 30, "alive": 27, "crashed": 3},
    },
    "sybils": {"reserved": 15, "joined": 15, "alive": 15, "behaviour": "sign-flip"},
    "paused": False,
    "speed": 4.0,
    "virtual": True,
    "fanout": 1,
    "aggregator": "mean",
    "partitioned": False,
    "workload": "learn",
    "max_rounds": 100000,
    "baseline_accuracy": 0.94,
}

EVENTS = [
    {
        "event": "control",
        "command": "inject",
        "ok": True,
        "round": 12,
        "detail": "15 Sybils joined (0 dormant left)",
    },
    {"event": "crash", "agent": "a07", "reason": "control: crash", "round": 20},
    {
        "event": "control",
        "command": "fanout",
        "ok": False,
        "round": 21,
        "detail": "fanout: no agent in this workload gossips with a fanout",
    },
]


@pytest.fixture
def frozen() -> StaticSource:
    return StaticSource(dict(INFO), frozen_rows(), list(EVENTS), dict(STATUS))
