"""A group of SWIM members in lockstep protocol periods, with crashes and message loss.

Each period: every live member starts it (`on_period`), the pings and their acks are
delivered, the members whose target has not answered send ping-reqs (`on_timeout`), and
the relayed pings and acks are delivered; the next period's start judges what did not
arrive. Every message is lost independently with probability `loss`. Everything random
comes from `rng`, so a seed gives the same run.

This is how the core's detection latency and false positives are measured against the
analysis, without a broker.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from swarm.protocols.detection.swim import Send, Swim, SwimError

__all__ = ["Outcome", "run"]


@dataclass
class Outcome:
    """What the group concluded, in protocol periods."""

    periods: int
    first_suspected: dict[int, int | None] = field(default_factory=dict)  # crashed -> period
    first_confirmed: dict[int, int | None] = field(default_factory=dict)
    false_suspicions: int = 0  # a live member suspected by a failed probe (refuted or not)
    false_confirmations: int = 0  # live members declared failed by someone
    refutations: int = 0  # suspicions live members answered by raising their incarnation
    messages: int = 0
    lost: int = 0

    def detection_latency(self, crashes: Mapping[int, int]) -> dict[int, int | None]:
        """Periods from each crash to its first suspicion (None: never suspected)."""
        out: dict[int, int | None] = {}
        for member, at in crashes.items():
            seen = self.first_suspected.get(member)
            out[member] = None if seen is None else seen - at
        return out


def run(
    n: int,
    periods: int,
    rng: np.random.Generator,
    *,
    crashes: Mapping[int, int] | None = None,
    loss: float = 0.0,
    k: int = 3,
    suspicion_periods: int | None = None,
    selection: str = "random",
    stop_when_detected: bool = False,
) -> Outcome:
    """Run `n` members for `periods`; member m crashes at the start of period
    `crashes[m]` (before it acts). With `stop_when_detected`, end once every crash has
    been suspected by someone."""
    if type(n) is not int or n < 2:
        raise SwimError(f"n = {n!r}: at least 2 members")
    if not 0.0 <= loss < 1.0:
        raise SwimError(f"loss = {loss!r}: must be in [0, 1)")
    crashes = dict(crashes or {})
    if any(m not in range(n) for m in crashes):
        raise SwimError(f"crashes {sorted(crashes)}: members are 0..{n - 1}")
    members = {
        i: Swim(i, range(n), k=k, suspicion_periods=suspicion_periods, selection=selection)
        for i in range(n)
    }
    outcome = Outcome(periods=0)
    outcome.first_suspected = {m: None for m in crashes}
    outcome.first_confirmed = {m: None for m in crashes}
    dead: set[int] = set()
    falsely_confirmed: set[int] = set()

    def deliver(sends: list[tuple[int, Send]]) -> None:
        queue = deque(sends)
        while queue:
            src, (dst, kind, body) = queue.popleft()
            outcome.messages += 1
            if rng.random() < loss:
                outcome.lost += 1
                continue
            if dst in dead or dst not in members:
                continue
            queue.extend((dst, reply) for reply in members[dst].on_message(src, kind, body))

    for period in range(periods):
        outcome.periods = period + 1
        dead.update(m for m, at in crashes.items() if at <= period)
        live = [m for m in members if m not in dead]
        counts = {m: (len(members[m].probed), len(members[m].confirmed)) for m in live}
        deliver([(m, s) for m in live for s in members[m].on_period(period, rng)])
        deliver([(m, s) for m in live for s in members[m].on_timeout(period, rng)])
        for m in live:
            suspected, confirmed = counts[m]
            for at, who in members[m].probed[suspected:]:
                if who in dead and outcome.first_suspected.get(who) is None:
                    outcome.first_suspected[who] = at
                elif who not in dead:
                    outcome.false_suspicions += 1
            for at, who in members[m].confirmed[confirmed:]:
                if who in dead and outcome.first_confirmed.get(who) is None:
                    outcome.first_confirmed[who] = at
                elif who not in dead:
                    falsely_confirmed.add(who)
        outcome.false_confirmations = len(falsely_confirmed)
        outcome.refutations = sum(members[m].refuted for m in members)
        if stop_when_detected and all(v is not None for v in outcome.first_suspected.values()):
            break
    return outcome
