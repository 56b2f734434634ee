"""The FedAvg server's defenses: what each rule makes of a round with Sybils in it, and
the books it keeps on who was left out, flagged and ignored.

Rounds are synthetic: honest clients send small perturbations of one direction `MU`,
colluding attackers all send the sign-flipped, boosted mean of the honest updates (what
`swarm.workloads.learn.poison` crafts), so the right answer is known.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from swarm.protocols.consensus.reputation import Reputation
from swarm.scenario import ScenarioError, load
from swarm.workloads.learn.robust import MIN_ROUNDS, Entry, RobustServer
from swarm.workloads.learn.workload import robust_server

D = 20
MU = np.random.default_rng(0).normal(size=D)


def attacked_round(
    rng: np.random.Generator,
    honest: int = 7,
    attackers: int = 3,
    boost: float = 4.0,
    noise: float = 0.1,
) -> tuple[list[Entry], np.ndarray]:
    """Identities 0..honest-1 honest, the next `attackers` colluding; returns the entries
    and the honest clients' mean update."""
    h = MU + noise * rng.normal(size=(honest, D))
    honest_mean = h.mean(axis=0)
    entries = [Entry(i, 100, h[i]) for i in range(honest)]
    entries += [Entry(honest + j, 100, -boost * honest_mean) for j in range(attackers)]
    return entries, honest_mean


def attackers_of(honest: int = 7, attackers: int = 3) -> set[int]:
    return set(range(honest, honest + attackers))


# --------------------------------------------------------------------------- the step


def test_mean_is_the_sample_weighted_mean() -> None:
    rng = np.random.default_rng(1)
    deltas = rng.normal(size=(5, D))
    samples = [1, 7, 30, 2, 100]
    server = RobustServer()
    step = server.combine(
        [Entry(i, s, d) for i, (s, d) in enumerate(zip(samples, deltas, strict=True))]
    )
    expected = (np.array(samples, float) @ deltas) / sum(samples)
    np.testing.assert_allclose(step, expected, rtol=1e-12, atol=1e-15)
    assert server.refused == 0 and server.ignored == 0
    assert server.seen == dict.fromkeys(range(5), 1)


def test_a_client_with_more_samples_pulls_the_mean_harder() -> None:
    server = RobustServer()
    ones, zeros = np.ones(D), np.zeros(D)
    step = server.combine([Entry(1, 1, ones), Entry(2, 3, zeros)])
    np.testing.assert_allclose(step, np.full(D, 0.25))


@pytest.mark.parametrize(
    ("rule", "options"),
    [
        ("median", {}),
        ("trimmed-mean", {"beta": 0.3}),
        ("krum", {"f": 3}),
        ("multi-krum", {"f": 3}),
        ("foolsgold", {}),
    ],
)
def test_robust_rules_step_the_honest_way_under_a_sign_flipped_boosted_minority(
    rule: str, options: dict[str, Any]
) -> None:
    rng = np.random.default_rng(2)
    robust = RobustServer(rule=rule, **options)
    plain = RobustServer(rule="mean")
    for _ in range(3):
        entries, honest_mean = attacked_round(rng)
        step = robust.combine(entries)
        assert step is not None
        assert step @ honest_mean > 0.5 * honest_mean @ honest_mean
        # The mean follows the attackers backwards: 3 x 4 outweighs 7 x 1.
        assert plain.combine(entries) @ honest_mean < 0
    assert robust.refused == 0


def test_clipping_bounds_what_one_boosted_update_contributes() -> None:
    rng = np.random.default_rng(3)
    entries, honest_mean = attacked_round(rng, honest=7, attackers=3, boost=4.0)
    limit = float(np.linalg.norm(MU))  # honest updates are about this long
    clipped = RobustServer(rule="mean", max_norm=limit).combine(entries)
    rows = np.stack([e.delta for e in entries])
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    expected = (rows * np.minimum(1.0, limit / norms)).mean(axis=0)
    np.testing.assert_allclose(clipped, expected, rtol=1e-9)
    # Clipped to the honest length, 3 attackers can no longer outweigh 7 honest clients.
    assert clipped @ honest_mean > 0


def test_too_few_updates_for_the_rule_refuse_the_round() -> None:
    rng = np.random.default_rng(4)
    entries, _ = attacked_round(rng, honest=4, attackers=1)
    for rule, f in (("krum", 1), ("multi-krum", 1), ("bulyan", 1), ("krum", 3)):
        server = RobustServer(rule=rule, f=f)
        need = {"krum": 2 * f + 3, "multi-krum": 2 * f + 3, "bulyan": 4 * f + 3}[rule]
        few = entries[: need - 1]
        assert server.combine(few) is None
        assert server.refused == 1
        assert server.seen == {} and server.left_out == {}  # nothing was judged
    server = RobustServer(rule="krum", f=1)
    assert server.combine(entries) is not None  # 5 = 2f + 3 is enough
    assert server.refused == 0


def test_a_rule_that_fails_on_its_input_is_refused_not_raised() -> None:
    # FoolsGold gives identical histories weight 0; when everyone is a copy, nobody is left.
    server = RobustServer(rule="foolsgold")
    same = np.ones(D)
    assert server.combine([Entry(i, 10, same) for i in range(4)]) is None
    assert server.refused == 1


def test_no_updates_is_no_step_and_no_refusal() -> None:
    server = RobustServer(rule="multi-krum", f=3)
    assert server.combine([]) is None
    assert server.refused == 0


def test_an_unknown_rule_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown aggregator 'average'"):
        RobustServer(rule="average")


# --------------------------------------------------------------------------- who it flags


@pytest.mark.parametrize("rule", ["mean", "median", "trimmed-mean"])
def test_rules_that_select_nobody_flag_nobody_without_reputation(rule: str) -> None:
    rng = np.random.default_rng(5)
    server = RobustServer(rule=rule, beta=0.3)
    for _ in range(4):
        server.combine(attacked_round(rng)[0])
    assert not server.flags
    assert server.flagged() == set()
    assert sum(server.left_out.values()) > 0  # the books were kept all the same


def test_multi_krum_flags_the_identities_it_keeps_leaving_out_and_no_honest_one() -> None:
    rng = np.random.default_rng(6)
    server = RobustServer(rule="multi-krum", f=3)
    assert server.flags
    server.combine(attacked_round(rng)[0])
    assert server.flagged() == set()  # one round is not a pattern
    for _ in range(MIN_ROUNDS - 1):
        server.combine(attacked_round(rng)[0])
    assert server.flagged() == attackers_of()
    for _ in range(3):
        server.combine(attacked_round(rng)[0])
    assert server.flagged() == attackers_of()
    assert all(server.left_out.get(i, 0) == 0 for i in range(7))
    assert all(server.seen[i] == 3 + MIN_ROUNDS for i in range(10))


def test_an_identity_left_out_only_now_and_then_is_not_flagged() -> None:
    rng = np.random.default_rng(7)
    server = RobustServer(rule="multi-krum", f=1)
    # Identity 9 attacks in one round of three and behaves honestly otherwise.
    for r in range(6):
        entries, honest_mean = attacked_round(rng, honest=9, attackers=0)
        bad = -4.0 * honest_mean if r % 3 == 0 else MU + 0.1 * rng.normal(size=D)
        server.combine([*entries, Entry(9, 100, bad)])
    assert server.seen[9] == 6
    assert 2 <= server.left_out[9] <= 3
    assert server.flagged() == set()


def test_with_reputation_a_repeatedly_excluded_identity_is_ignored() -> None:
    rng = np.random.default_rng(8)
    server = RobustServer(rule="median", reputation=Reputation())
    assert server.flags
    ignored_from = None
    for r in range(10):
        entries, honest_mean = attacked_round(rng)
        before = server.ignored
        step = server.combine(entries)
        assert step @ honest_mean > 0
        if server.ignored > before:
            ignored_from = r if ignored_from is None else ignored_from
            assert server.ignored - before == 3  # exactly the attackers' updates
            # Only honest updates were combined: the median of those.
            honest = np.stack([e.delta for e in entries[:7]])
            np.testing.assert_allclose(step, np.median(honest, axis=0))
    # 0.8^k < 0.5 from k = 4 left-out rounds on: rounds 4.. ignore the attackers.
    assert ignored_from == 4
    assert server.ignored == 3 * 6
    assert all(server.seen[a] == 4 for a in attackers_of())  # never judged again
    assert server.flagged() == attackers_of()
    assert all(server.reputation.trusted(i) for i in range(7))


def test_reputation_with_multi_krum_ignores_the_attackers_and_keeps_aggregating() -> None:
    rng = np.random.default_rng(9)
    server = RobustServer(rule="multi-krum", f=2, reputation=Reputation())
    for _ in range(8):
        entries, honest_mean = attacked_round(rng, honest=9, attackers=2)
        step = server.combine(entries)
        assert step is not None and step @ honest_mean > 0
    assert server.ignored == 2 * 4
    assert server.refused == 0
    assert server.flagged() == attackers_of(9, 2)


def test_foolsgold_judges_each_identity_by_its_history() -> None:
    d = 200  # wide enough that independent vectors are nearly orthogonal
    rng = np.random.default_rng(10)
    direction = rng.normal(size=d)
    server = RobustServer(rule="foolsgold")

    def honest_updates() -> list[Entry]:
        return [Entry(i, 50, rng.normal(size=d)) for i in range(5)]

    # Three colluders push the same direction for three rounds...
    for _ in range(3):
        colluders = [Entry(5 + j, 50, direction.copy()) for j in range(3)]
        server.combine(honest_updates() + colluders)
    assert server.flagged() == {5, 6, 7}
    # ... then disguise this round's updates with independent noise, sent in a new
    # order. On its own the round would not betray them; their histories still do.
    disguised = [Entry(5 + j, 50, direction + 1.5 * rng.normal(size=d)) for j in range(3)]
    entries = disguised[::-1] + honest_updates()
    fresh = RobustServer(rule="foolsgold")
    fresh.combine(entries)
    assert fresh.left_out == {}  # a server without memory keeps them
    server.combine(entries)
    assert all(server.left_out[i] == 4 for i in (5, 6, 7))  # the server with memory does not
    assert all(server.left_out.get(i, 0) == 0 for i in range(5))
    assert all(server.seen[i] == 4 for i in range(8))


# --------------------------------------------------------------------------- from a scenario


def test_the_learn_section_configures_the_server() -> None:
    s = load(
        "sybil-fedavg",
        [
            "learn.aggregator=multi-krum",
            "learn.byzantine=2",
            "learn.trim=0.1",
            "learn.clip_norm=5",
            "learn.reputation=true",
        ],
    )
    server = robust_server(s.learn)
    assert (server.rule, server.f, server.beta, server.max_norm) == ("multi-krum", 2, 0.1, 5.0)
    assert isinstance(server.reputation, Reputation)
    assert robust_server(load("sybil-fedavg").learn).reputation is None


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["learn.strategy=gossip", "learn.aggregator=median"], "learn.aggregator"),
        (
            ["learn.strategy=allreduce", "learn.aggregator=krum", "sybil.count=0"],
            "learn.aggregator",
        ),
        (["learn.trim=0.5"], "learn.trim"),
        (["learn.trim=0.75", "learn.aggregator=trimmed-mean"], "learn.trim"),
    ],
)
def test_defenses_that_cannot_run_are_scenario_errors_naming_the_key(
    overrides: list[str], key: str
) -> None:
    with pytest.raises(ScenarioError) as info:
        load("sybil-fedavg", overrides)
    message = str(info.value)
    assert key in message and "\n" not in message


def test_the_limits_of_the_defense_checks_are_allowed() -> None:
    s = load("sybil-fedavg", ["learn.trim=0.49", "learn.aggregator=trimmed-mean"])
    assert s.learn.trim == 0.49
    s = load("sybil-fedavg", ["learn.strategy=gossip", "learn.aggregator=mean"])
    assert s.learn.aggregator == "mean"


def test_krum_flags_the_attackers_and_no_honest_client() -> None:
    rng = np.random.default_rng(11)
    server = RobustServer(rule="krum", f=3)
    for _ in range(4):
        server.combine(attacked_round(rng)[0])
    assert server.flagged() == attackers_of()


@pytest.mark.parametrize("rule", ["krum", "multi-krum"])
def test_once_reputation_ignores_the_attackers_the_rule_expects_fewer_and_keeps_running(
    rule: str,
) -> None:
    rng = np.random.default_rng(12)
    server = RobustServer(rule=rule, f=3, reputation=Reputation())
    for _ in range(10):
        step = server.combine(attacked_round(rng)[0])
        assert step is not None and step @ MU > 0
    assert server.refused == 0 and server.ignored > 0


def test_reputation_beside_a_hijacked_mean_still_blames_the_attackers() -> None:
    # The mean points the Sybils' way; the median reference still points the honest way.
    rng = np.random.default_rng(13)
    server = RobustServer(rule="mean", reputation=Reputation())
    for _ in range(8):
        server.combine(attacked_round(rng)[0])
    assert server.flagged() == attackers_of()
    assert all(server.reputation.trusted(i) for i in range(7))
