"""Analytic predictions that runs are compared against.

Sources: Pittel 1987, "On spreading a rumor" (push on the complete graph informs all n
nodes in log2(n) + ln(n) + O(1) rounds); Demers et al. 1987, section 1.4 (residue of
rumor mongering with feedback and coin: s = exp(-(k + 1)(1 - s))); Patarasuk & Yuan 2009
(ring all-reduce); Li et al. 2014 and McMahan et al. 2017 (parameter server and sampled
clients); Dally & Towles 2004 (bisection bandwidth).

Every law checks its inputs and raises ValueError naming the bad one, so a wrong
prediction cannot come from a silently impossible argument.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

__all__ = [
    "bisection_saturation",
    "failure_probability",
    "first_failure_mean",
    "gossip_rounds",
    "parameter_server_bytes",
    "push_rounds_complete",
    "ring_allreduce_bytes_per_node",
    "ring_allreduce_seconds",
    "rumor_residue_feedback_coin",
    "weibull_scale",
]


def push_rounds_complete(n: int) -> float:
    """Expected rounds for push (fanout 1) to inform all n nodes of a complete graph."""
    if n < 2:
        return 0.0
    return math.log2(n) + math.log(n)


def rumor_residue_feedback_coin(k: int) -> float:
    """Fraction never informed by rumor mongering with feedback and a 1/k coin.

    Solves s = exp(-(k + 1)(1 - s)) for its root in (0, 1) by fixed-point iteration
    (the map is a contraction near that root).
    """
    s = 0.5
    for _ in range(10_000):
        nxt = math.exp(-(k + 1) * (1 - s))
        if abs(nxt - s) < 1e-15:
            break
        s = nxt
    return s


# -- input checks ----------------------------------------------------------------------------


def _count(name: str, value: object, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} = {value!r}: expected an integer")
    if value < least:
        raise ValueError(f"{name} = {value!r}: must be >= {least}")
    return int(value)


def _number(name: str, value: object, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} = {value!r}: expected a number")
    if not math.isfinite(value):
        raise ValueError(f"{name} = {value!r}: must be finite")
    if positive and value <= 0:
        raise ValueError(f"{name} = {value!r}: must be > 0")
    if value < 0:
        raise ValueError(f"{name} = {value!r}: must be >= 0")
    return float(value)


# -- collective communication ----------------------------------------------------------------


def ring_allreduce_bytes_per_node(n: int, model_bytes: float) -> float:
    """Bytes each of n nodes sends (and receives) to all-reduce a model of `model_bytes`.

    Patarasuk & Yuan 2009, "Bandwidth optimal all-reduce algorithms for clusters of
    workstations": reduce-scatter then all-gather around a ring, each n - 1 steps moving
    M/n bytes, so 2(n - 1)/n * M per node, which no all-reduce can beat. 0 for n == 1.
    """
    n = _count("n", n)
    m = _number("model_bytes", model_bytes)
    return 2 * (n - 1) * m / n


def ring_allreduce_seconds(
    n: int, model_bytes: float, bandwidth_bps: float, latency_s: float
) -> float:
    """Seconds for a ring all-reduce: 2(n - 1) latency-bound steps plus the bytes on the wire.

    Patarasuk & Yuan 2009 (alpha-beta model): 2(n - 1) * latency + 2(n - 1)/n * M * 8 / B,
    with B the per-node link rate in bits per second. Steps are synchronous, so the
    latency term grows with n while the bandwidth term stays below 2M * 8 / B.
    """
    per_node = ring_allreduce_bytes_per_node(n, model_bytes)
    bandwidth = _number("bandwidth_bps", bandwidth_bps, positive=True)
    latency = _number("latency_s", latency_s)
    return 2 * (n - 1) * latency + per_node * 8 / bandwidth


def parameter_server_bytes(
    n_clients: int, model_bytes: float, fraction: float = 1.0
) -> dict[str, float]:
    """Bytes through a parameter server in one round with a share of the clients sampled.

    Li et al. 2014, "Scaling distributed machine learning with the parameter server"
    (OSDI): each worker pushes its update to and pulls the model from the server; with
    McMahan et al. 2017 (FedAvg) only max(1, round(fraction * n)) clients take part in a
    round (Python rounds halves to even). Everything converges on the server, which is
    why its load grows with the clients while a ring's per-node load does not.

    Returns: `clients` sampled, `client_upload` and `client_download` per client,
    `uploaded` to and `downloaded` from the server in total, and `server_total`.
    """
    n = _count("n_clients", n_clients)
    m = _number("model_bytes", model_bytes)
    f = _number("fraction", fraction, positive=True)
    if f > 1:
        raise ValueError(f"fraction = {fraction!r}: must be <= 1")
    clients = max(1, round(f * n))
    return {
        "clients": clients,
        "client_upload": m,
        "client_download": m,
        "uploaded": clients * m,
        "downloaded": clients * m,
        "server_total": 2 * clients * m,
    }


# -- gossip and networks ---------------------------------------------------------------------


def gossip_rounds(n: int, fanout: int = 1) -> float:
    """Expected push rounds for every informed node, contacting `fanout` peers, to reach all n.

    For fanout 1 this is log2(n) + ln(n) (Frieze & Grimmett 1985, "The shortest-path
    problem for graphs with random arc-lengths"; Pittel 1987), the same figure as
    `push_rounds_complete`. For fanout f > 1 it is an approximation built the same way:
    the informed set grows by about (1 + f) per round until half are informed, giving
    log_{1+f}(n) rounds, then each uninformed node stays so with probability about
    exp(-f) per round, giving ln(n)/f more.
    """
    n = _count("n", n)
    f = _count("fanout", fanout)
    if n == 1:
        return 0.0
    if f == 1:
        return push_rounds_complete(n)
    return math.log(n) / math.log(1 + f) + math.log(n) / f


def bisection_saturation(
    n_nodes: int, bisection_links: int, link_bps: float, offered_bps_per_node: float
) -> float:
    """Share of the bisection capacity used when half the nodes send across the cut.

    Dally & Towles 2004, "Principles and Practices of Interconnection Networks", ch. 3:
    the bisection bandwidth bounds what traffic crossing the middle of a network can
    reach. Here floor(n/2) nodes on one side each offer `offered_bps_per_node` to the
    other side, against bisection_links * link_bps in that direction (links are full
    duplex, so the reverse direction is not counted twice). Above 1 the cut is the
    bottleneck: senders get at most 1/saturation of what they offer.
    """
    n = _count("n_nodes", n_nodes)
    links = _count("bisection_links", bisection_links)
    capacity = links * _number("link_bps", link_bps, positive=True)
    offered = (n // 2) * _number("offered_bps_per_node", offered_bps_per_node)
    return offered / capacity


def push_informed_curve(n: int, fanout: int, rounds: int) -> list[float]:
    """Mean-field informed fraction after 0..rounds rounds of push gossip from one node.

    Each round every uninformed node is missed by all f*I pushes with probability about
    exp(-f * x), x the informed fraction: x' = x + (1 - x)(1 - exp(-f x)) (the SI
    epidemic of Demers et al. 1987 in discrete rounds). Drawn beside measured coverage.
    """
    n = _count("n", n)
    f = _count("fanout", fanout)
    x = 1.0 / n
    curve = [x]
    for _ in range(max(0, rounds)):
        x = x + (1.0 - x) * (1.0 - math.exp(-f * x))
        curve.append(x)
    return curve


def weibull_scale(mean: float, shape: float) -> float:
    """The scale of a Weibull law of this mean and shape: mean / Gamma(1 + 1/shape)."""
    mean = _number("mean", mean, positive=True)
    shape = _number("shape", shape, positive=True)
    try:
        return mean / math.gamma(1 + 1 / shape)
    except OverflowError:
        raise ValueError(
            f"shape = {shape!r}: too small for a Weibull law (at least 0.01)"
        ) from None


def failure_probability(mtbf: float, t: float, shape: float = 1.0) -> float:
    """P(a device of mean time to failure `mtbf` has failed by `t`): 1 - exp(-(t/lambda)^k),
    lambda the Weibull scale of that mean (k = 1: the exponential law, 1 - exp(-t/mtbf))."""
    t = _number("t", t)
    if math.isinf(mtbf):
        return 0.0
    scale = weibull_scale(mtbf, shape)
    if t == 0:
        return 0.0
    if scale <= 0:
        return 1.0
    exponent = shape * (math.log(t) - math.log(scale))  # (t/scale)^k without overflow
    return 1.0 if exponent > 700 else -math.expm1(-math.exp(exponent))


def first_failure_mean(mtbfs: Sequence[float], shape: float = 1.0) -> float | None:
    """Mean time to the first failure among independent devices with Weibull lifetimes of
    one shape k and these means: the minimum is Weibull with scale (sum lambda_i^-k)^(-1/k).
    None when none of them ever fails (every mtbf infinite)."""
    shape = _number("shape", shape, positive=True)
    # log of lambda_i^-k, summed in log space: scales span many decades
    logs = [-shape * math.log(weibull_scale(m, shape)) for m in mtbfs if not math.isinf(m)]
    if not logs:
        return None
    top = max(logs)
    total = top + math.log(math.fsum(math.exp(v - top) for v in logs))
    return math.exp(-total / shape) * math.gamma(1 + 1 / shape)


def young_interval(cost: float, mtbf: float) -> float:
    """The checkpoint interval that maximizes goodput to first order, sqrt(2 delta M), for a
    checkpoint that takes `cost` (delta) and a system MTBF M (Young 1974, "A first order
    approximation to the optimum checkpoint interval", CACM 17(9))."""
    return math.sqrt(
        2.0 * _number("cost", cost, positive=True) * _number("mtbf", mtbf, positive=True)
    )


def daly_interval(cost: float, mtbf: float) -> float:
    """Daly's higher-order optimum (Daly 2006, "A higher order estimate of the optimum
    checkpoint interval for restart dumps", FGCS 22(3), eq. 37): Young's interval with
    correction terms, less the cost; M itself once the cost reaches 2M."""
    delta = _number("cost", cost, positive=True)
    m = _number("mtbf", mtbf, positive=True)
    if delta >= 2.0 * m:
        return m
    x = delta / (2.0 * m)
    return math.sqrt(2.0 * delta * m) * (1.0 + math.sqrt(x) / 3.0 + x / 9.0) - delta


def checkpoint_goodput(interval: float, cost: float, mtbf: float, restart: float = 0.0) -> float:
    """First-order share of time spent on kept work, checkpointing every `interval` of work:
    1 - cost / (interval + cost) - ((interval + cost) / 2 + restart) / mtbf, at least 0.
    Its maximum is near `young_interval` (each failure loses half a segment on average)."""
    tau = _number("interval", interval, positive=True)
    delta = _number("cost", cost, positive=True)
    m = _number("mtbf", mtbf, positive=True)
    segment = tau + delta
    return max(0.0, 1.0 - delta / segment - (segment / 2.0 + restart) / m)


# Push-pull averaging cuts the variance of the estimates by about 1 / (2 sqrt(e)) per
# round (Jelasity, Montresor & Babaoglu 2005, "Gossip-based aggregation in large dynamic
# networks", ACM TOCS 23(3)).
PUSH_PULL_VARIANCE_FACTOR = 1.0 / (2.0 * math.sqrt(math.e))


def averaging_variance_curve(initial: float, rounds: int) -> list[float]:
    """Expected variance of push-pull averaging estimates after 0..rounds rounds."""
    v = _number("initial", initial)
    return [v * PUSH_PULL_VARIANCE_FACTOR**r for r in range(max(0, rounds) + 1)]
