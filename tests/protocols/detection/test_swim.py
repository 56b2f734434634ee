"""SWIM: detection time against the analysis, false positives under loss, and a group
that always settles whoever dies, whatever arrives."""

from __future__ import annotations

import contextlib
import math
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm.protocols.detection import simulate
from swarm.protocols.detection.swim import (
    Swim,
    SwimError,
    default_suspicion_periods,
    expected_first_detection,
)


def test_mean_time_to_first_detection_is_e_over_e_minus_1_periods() -> None:
    """Uniform targets: a crashed member is first probed after a geometric number of
    periods with success 1 - (1 - 1/(n-1))^(n-1) (SWIM section 3.1)."""
    n, trials = 30, 1500
    rng = np.random.default_rng(11)
    latencies = []
    for _ in range(trials):
        outcome = simulate.run(n, 60, rng, crashes={7: 0}, stop_when_detected=True)
        latencies.append(outcome.detection_latency({7: 0})[7])
    assert None not in latencies
    mean = statistics.fmean(latencies)
    error = statistics.stdev(latencies) / math.sqrt(trials)
    assert abs(mean - expected_first_detection(n)) < 3 * error
    assert expected_first_detection(10**6) == pytest.approx(math.e / (math.e - 1), rel=1e-5)


def test_round_robin_probes_every_member_within_2n_minus_1_periods() -> None:
    n = 12
    rng = np.random.default_rng(3)
    worst = 0
    for trial in range(300):
        crash = {trial % n: int(rng.integers(0, 5))}
        outcome = simulate.run(n, 40, rng, crashes=crash, selection="round-robin")
        latency = outcome.detection_latency(crash)[trial % n]
        assert latency is not None
        worst = max(worst, latency)
    assert worst <= 2 * n - 1


@pytest.mark.parametrize("loss", [0.05, 0.1])
def test_false_suspicions_under_loss_follow_the_probe_law_and_are_refuted(loss: float) -> None:
    """A live member is suspected when its direct round trip and all k relayed ones fail:
    (1 - (1-l)^2) (1 - (1-l)^4)^k per probe. Nearly every suspicion is refuted in time:
    a false positive needs the refutation itself lost on the way to someone."""
    n, periods, seeds, k = 40, 150, 12, 3
    counts, refuted, confirmed = [], 0, 0
    for seed in range(seeds):
        outcome = simulate.run(n, periods, np.random.default_rng(seed), loss=loss, k=k)
        counts.append(outcome.false_suspicions)
        refuted += outcome.refutations
        confirmed += outcome.false_confirmations
    per_probe = (1 - (1 - loss) ** 2) * (1 - (1 - loss) ** 4) ** k
    expected = per_probe * n * periods
    mean = statistics.fmean(counts)
    assert abs(mean - expected) < 3 * math.sqrt(expected / seeds) + 0.5  # Poisson
    assert confirmed <= 0.05 * sum(counts) and refuted >= 0.8 * sum(counts)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(3, 12),
    deaths=st.dictionaries(st.integers(0, 11), st.integers(0, 15), max_size=11),
    selection=st.sampled_from(["random", "round-robin"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_whoever_dies_whenever_the_live_members_settle_on_it(
    n: int, deaths: dict[int, int], selection: str, seed: int
) -> None:
    """Without loss: every crashed member is confirmed by every live one within a bound,
    and no live member is ever confirmed; the group never waits forever."""
    crashes = {m: at for m, at in deaths.items() if m < n}
    live = [m for m in range(n) if m not in crashes]
    bound = 16 + 2 * n + default_suspicion_periods(n) + 4 * math.ceil(math.log2(n + 1))
    rng = np.random.default_rng(seed)
    members = {i: Swim(i, range(n), selection=selection) for i in range(n)}
    # Drive the members directly, to read every live member's final view.
    for period in range(bound):
        dead = {m for m, at in crashes.items() if at <= period}
        for phase in ("period", "timeout"):
            queue = []
            for m in members:
                if m in dead:
                    continue
                core = members[m]
                sends = (
                    core.on_period(period, rng)
                    if phase == "period"
                    else core.on_timeout(period, rng)
                )
                queue.extend((m, s) for s in sends)
            while queue:
                src, (dst, kind, body) = queue.pop(0)
                if dst not in dead:
                    queue.extend((dst, r) for r in members[dst].on_message(src, kind, body))
    for m in live:
        assert set(members[m].view) == set(live) - {m}, (m, members[m].view)
        assert not {who for _, who in members[m].confirmed} & set(live)


@given(st.sampled_from(["ping", "ack", "ping-req", "gossip"]), st.from_type(object))
@settings(max_examples=200, deadline=None)
def test_a_forged_message_is_a_swim_error_never_a_crash(kind: str, body: object) -> None:
    core = Swim(0, range(5))
    with contextlib.suppress(SwimError):
        core.on_message(1, kind, body)


@given(
    st.lists(
        st.lists(st.one_of(st.text(max_size=8), st.integers(-3, 9)), min_size=3, max_size=3),
        max_size=40,
    )
)
@settings(max_examples=200, deadline=None)
def test_forged_membership_updates_are_refused_or_applied_never_a_crash(updates) -> None:
    core = Swim(0, range(10))
    try:
        core.on_message(1, "ping", {"seq": 2, "updates": updates})
    except SwimError:
        return
    assert set(core.view) <= set(range(1, 10))


@pytest.mark.parametrize(
    ("settings_", "needle"),
    [
        ({"k": -1}, "k = -1"),
        ({"suspicion_periods": 0}, "suspicion_periods = 0"),
        ({"selection": "best"}, "selection = 'best'"),
        ({"retransmit": 0}, "retransmit = 0"),
    ],
)
def test_bad_settings_name_themselves(settings_: dict, needle: str) -> None:
    with pytest.raises(SwimError, match=needle):
        Swim(0, range(4), **settings_)
    with pytest.raises(SwimError, match="at least 2"):
        expected_first_detection(1)


def test_a_malformed_message_changes_nothing() -> None:
    core = Swim(0, range(5))
    for kind, updates in [
        ("bogus", [["suspect", 2, 5]]),
        ("ping", [["confirm", 2, 0], ["bogus", 3, 0]]),
        ("ping", [["suspect", 2, 5], ["alive", "x", 0]]),
    ]:
        with pytest.raises(SwimError):
            core.on_message(1, kind, {"seq": 2, "updates": updates})
        assert set(core.view) == {1, 2, 3, 4} and core.suspected == []
    with pytest.raises(SwimError, match="retransmit"):
        Swim(0, range(3), retransmit=float("inf"))


def test_relays_whose_ack_never_comes_are_forgotten() -> None:
    outcome_members = []
    rng = np.random.default_rng(4)
    core = Swim(0, range(20))
    for period in range(500):
        core.on_period(period, rng)
        # someone asks us to probe a member whose ack never arrives
        core.on_message(1, "ping-req", {"seq": 2 * period, "target": 5})
        outcome_members.append(len(core._relays))
    assert max(outcome_members) <= 2


def _exchange(members: dict[int, Swim], rng: np.random.Generator, period: int) -> None:
    """One lockstep period among `members`, no loss (the live ones only)."""
    queue = [(m, s) for m, core in members.items() for s in core.on_period(period, rng)]
    queue += [(m, s) for m, core in members.items() for s in core.on_timeout(period, rng)]
    while queue:
        src, (dst, kind, body) = queue.pop(0)
        if dst in members:
            queue.extend((dst, reply) for reply in members[dst].on_message(src, kind, body))


def test_a_member_declared_failed_is_taken_back_when_it_returns_newer() -> None:
    """A repaired device rejoins with a higher incarnation: everyone takes it back, and a
    stale confirmation of its earlier life does not remove it again."""
    rng = np.random.default_rng(5)
    n = 8
    group = {i: Swim(i, range(n), suspicion_periods=3) for i in range(n)}
    del group[3]  # member 3 crashes
    for period in range(30):
        _exchange(group, rng, period)
    assert all(3 not in core.members for core in group.values())
    group[3] = Swim(3, range(n), suspicion_periods=3, incarnation=1 << 16)
    for period in range(30, 60):
        _exchange(group, rng, period)
    assert all(3 in core.members for m, core in group.items() if m != 3)
    stale = {"seq": 2, "updates": [["confirm", 3, 0]]}
    group[0].on_message(1, "ping", stale)
    assert 3 in group[0].members
    newer = {"seq": 4, "updates": [["confirm", 3, 1 << 16]]}
    group[0].on_message(1, "ping", newer)
    assert 3 not in group[0].members


def test_a_negative_incarnation_is_refused() -> None:
    with pytest.raises(SwimError, match="incarnation"):
        Swim(0, range(3), incarnation=-1)
