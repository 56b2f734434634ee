"""Datasets a fleet learns from, and how they are dealt out to agents.

Three small real datasets ship with scikit-learn (digits, wine, breast_cancer: no
download); `telematics` is synthetic and generated here from the seed. `load` splits
(stratified) and standardizes with statistics of the training split only, so nothing
about the test set leaks into training. `shard` deals training indices to agents, IID or
non-IID (each agent sees only a few classes, as in McMahan et al. 2017).

scikit-learn is imported inside the functions that need it: the scenario module imports
`DATASETS`, and importing scikit-learn would slow every command that reads a scenario.
"""

from __future__ import annotations

import functools
import heapq
from dataclasses import dataclass
from typing import Final

import numpy as np

__all__ = [
    "DATASETS",
    "TELEMATICS_FEATURES",
    "TELEMATICS_KINDS",
    "Dataset",
    "NotEnoughData",
    "load",
    "shard",
    "shard_label_counts",
    "telematics",
]

DATASETS: Final = ("digits", "wine", "breast_cancer", "telematics")
TELEMATICS_FEATURES: Final = (
    "speed_kmh",
    "accel_ms2",
    "jerk_ms3",
    "brake_bar",
    "steering_dps",
    "engine_temp_c",
    "battery_v",
    "tyre_fl_bar",
    "tyre_fr_bar",
    "tyre_rl_bar",
    "tyre_rr_bar",
    "gps_jitter_m",
)
TELEMATICS_KINDS: Final = ("normal", "harsh_braking", "sensor_fault", "overheating")
# Entropy tags: the data and the split of one seed come from independent streams.
_GENERATE: Final = 0
_SPLIT: Final = 1


@dataclass(frozen=True)
class Dataset:
    """A standardized train/test split; arrays are read-only so that one loaded dataset
    can be shared by every agent of a process without one corrupting it for the others."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: np.ndarray
    n_features: int

    @property
    def n_classes(self) -> int:
        return int(self.classes.size)


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    return int(seed)


@functools.lru_cache(maxsize=4)
def _sklearn_raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The raw (X, y) of a scikit-learn toy dataset, read once per process."""
    from sklearn import datasets

    loader = {
        "digits": datasets.load_digits,
        "wine": datasets.load_wine,
        "breast_cancer": datasets.load_breast_cancer,
    }[name]
    X, y = loader(return_X_y=True)
    return _frozen(np.asarray(X, dtype=np.float64)), _frozen(np.asarray(y, dtype=np.int64))


@functools.lru_cache(maxsize=16)
def _telematics_raw(seed: int) -> tuple[np.ndarray, np.ndarray]:
    X, y = telematics(np.random.default_rng(np.random.SeedSequence([seed, _GENERATE])))
    return _frozen(X), _frozen(y)


def telematics(
    rng: np.random.Generator, n: int = 4000, anomaly_share: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic vehicle telematics with labelled anomalies: (X, y), X of shape (n, 12).

    Not real data: each row is one vehicle snapshot (columns `TELEMATICS_FEATURES`).
    Normal driving mixes city (~42 km/h) and highway (~105 km/h) speeds; acceleration and
    jerk are centred on zero, brake pressure follows deceleration, steering rate is
    Laplace (wider in town), engine temperature rises slightly with speed, the battery
    sits near 13.9 V, the four tyres share a per-vehicle pressure near 2.4 bar, and GPS
    jitter is log-normal around 2.5 m. Then `anomaly_share` of the rows, chosen at
    random, are overwritten with one anomaly kind each (uniform over 1..3, see
    `TELEMATICS_KINDS`): 1 harsh braking (strong deceleration and jerk, high brake
    pressure), 2 sensor fault (a tyre-pressure or battery sensor stuck at zero),
    3 overheating (engine some 12 °C hotter than normal, slow traffic, battery sagging
    under the fan's load). The distributions overlap a little, so the task is not trivial.
    """
    highway = rng.random(n) < 0.35
    speed = np.where(highway, rng.normal(105, 12, n), rng.normal(42, 14, n)).clip(0, None)
    accel = rng.normal(0, 0.9, n)
    brake = 6.0 * np.clip(-accel, 0, None) + rng.gamma(1.0, 0.5, n)
    X = np.column_stack(
        [
            speed,
            accel,
            rng.normal(0, 1.2, n),
            brake,
            rng.laplace(0, np.where(highway, 3.0, 12.0)),
            rng.normal(88, 3, n) + 0.04 * speed,
            rng.normal(13.9, 0.15, n),
            rng.normal(2.4, 0.06, (n, 1)) + rng.normal(0, 0.03, (n, 4)),
            rng.lognormal(np.log(2.5), 0.35, n),
        ]
    )
    y = np.zeros(n, dtype=np.int64)
    rows = rng.choice(n, size=round(anomaly_share * n), replace=False)
    y[rows] = rng.integers(1, len(TELEMATICS_KINDS), size=rows.size)
    hb, sf, oh = (rows[y[rows] == k] for k in (1, 2, 3))
    X[hb, 0] = rng.normal(70, 20, hb.size).clip(10, None)
    X[hb, 1] = rng.normal(-4.0, 1.3, hb.size)
    X[hb, 2] = rng.normal(-5.0, 3.0, hb.size)
    X[hb, 3] = rng.normal(30, 12, hb.size).clip(0, None)
    X[sf, rng.integers(6, 11, sf.size)] = 0.0  # battery or one tyre sensor reads zero
    X[oh, 0] = rng.normal(30, 15, oh.size).clip(0, None)
    X[oh, 5] = rng.normal(102, 5, oh.size)
    X[oh, 6] = rng.normal(13.4, 0.25, oh.size)
    return X, y


def load(name: str, seed: int = 0, test_fraction: float = 0.25) -> Dataset:
    """`name` split into train/test (stratified, the split drawn from `seed`), scaled."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    seed = _check_seed(seed)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    X, y = _telematics_raw(seed) if name == "telematics" else _sklearn_raw(name)
    state = int(np.random.SeedSequence([seed, _SPLIT]).generate_state(1)[0])
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_fraction, stratify=y, random_state=state
    )
    scaler = StandardScaler().fit(X_train)
    return Dataset(
        name=name,
        X_train=_frozen(np.asarray(scaler.transform(X_train), dtype=np.float64)),
        y_train=_frozen(np.array(y_train, dtype=np.int64)),
        X_test=_frozen(np.asarray(scaler.transform(X_test), dtype=np.float64)),
        y_test=_frozen(np.array(y_test, dtype=np.int64)),
        classes=_frozen(np.unique(y)),
        n_features=int(X.shape[1]),
    )


# --------------------------------------------------------------------------- sharding


class NotEnoughData(ValueError):
    """Disjoint shards cannot be dealt: the fleet asks for more samples than there are
    (overlapping shards could)."""


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{what} must be an int, got {value!r}")
    return int(value)


def _have(n: int, dataset: str | None) -> str:
    return f"{dataset} has {n} for training" if dataset else f"there are {n}"


def shard(
    y: np.ndarray,
    n_agents: int,
    rng: np.random.Generator,
    *,
    iid: bool = True,
    classes_per_agent: int = 2,
    shard_size: int | None = None,
    dataset: str | None = None,
    overlap: bool = False,
) -> list[np.ndarray]:
    """Per agent, the sorted indices into `y` (the training labels) it trains on.

    IID: a random permutation cut into near-equal parts, or into `shard_size` each
    (None or 0: split everything); shards are disjoint. Non-IID: see `_non_iid`; each
    agent's labels span at most `classes_per_agent` classes (checked only when not
    `iid`). Every agent gets at least one sample. `dataset` only names the data in errors.

    With `overlap` (which needs `shard_size`) each agent draws its own `shard_size`
    distinct samples from the whole set (IID) or from `classes_per_agent` classes picked
    at random (non-IID), independently of the others: agents may share samples, as many
    devices observing one world do, so a fleet can be larger than the data.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D labels, got shape {y.shape}")
    n = int(y.size)
    n_agents = _count(n_agents, "n_agents")
    if n_agents < 1:
        raise ValueError(f"n_agents must be >= 1, got {n_agents}")
    size = None if shard_size is None else _count(shard_size, "shard_size")
    if size is not None and size < 0:
        raise ValueError(f"shard_size must be >= 0 (0 = split evenly), got {size}")
    size = size or None
    if overlap:
        if size is None:
            raise ValueError("overlapping shards need a shard_size (samples per agent)")
        if n == 0:
            raise ValueError(f"there is no data to draw shards from; {_have(n, dataset)}")
        return _overlapping(y, n_agents, size, rng, None if iid else classes_per_agent, dataset)
    if n_agents > n:
        raise NotEnoughData(
            f"{n_agents} agents need at least {n_agents} samples; {_have(n, dataset)}"
        )
    if size is not None and size * n_agents > n:
        raise NotEnoughData(
            f"shard_size {size} x {n_agents} agents needs {size * n_agents} samples; "
            f"{_have(n, dataset)}"
        )
    if iid:
        order = rng.permutation(n)
        parts = np.array_split(order if size is None else order[: size * n_agents], n_agents)
        return [np.sort(p) for p in parts]
    classes = np.unique(y)
    k = _count(classes_per_agent, "classes_per_agent")
    if not 1 <= k <= classes.size:
        where = f"in {dataset}" if dataset else "in the labels"
        raise ValueError(
            f"classes_per_agent must be between 1 and {classes.size} (the classes {where}), got {k}"
        )
    return _non_iid(y, classes, n_agents, k, rng, size)


def _overlapping(
    y: np.ndarray,
    n_agents: int,
    size: int,
    rng: np.random.Generator,
    per_agent: int | None,
    dataset: str | None,
) -> list[np.ndarray]:
    """Each agent's `size` distinct samples, drawn on its own from the whole set (IID,
    `per_agent` None) or from `per_agent` classes picked at random."""
    if per_agent is None:
        if size > y.size:
            raise ValueError(f"shard_size {size} is larger than the data; {_have(y.size, dataset)}")
        # The `size` smallest of a row of random keys: a uniform sample without
        # replacement, drawn for a block of agents at a time to bound the memory.
        shards: list[np.ndarray] = []
        block = max(1, (1 << 22) // y.size)
        for start in range(0, n_agents, block):
            keys = rng.random((min(block, n_agents - start), y.size))
            picked = np.argpartition(keys, size - 1, axis=1)[:, :size]
            shards.extend(np.sort(picked, axis=1))
        return shards
    classes = np.unique(y)
    k = _count(per_agent, "classes_per_agent")
    if not 1 <= k <= classes.size:
        raise ValueError(f"classes_per_agent must be between 1 and {classes.size}, got {k}")
    members = [np.flatnonzero(y == c) for c in classes]
    out = []
    for _ in range(n_agents):
        pool = np.concatenate([members[c] for c in rng.choice(classes.size, k, replace=False)])
        if size > pool.size:
            raise ValueError(
                f"shard_size {size} is larger than the {pool.size} samples of the "
                f"{k} classes an agent drew"
            )
        out.append(np.sort(rng.choice(pool, size, replace=False)))
    return out


def _holders(counts: np.ndarray, n_agents: int, per_agent: int) -> np.ndarray:
    """How many agents hold each class: proportional to its size (D'Hondt), every class
    at least once when there are enough slots, and never more holders than samples (each
    holder gets one) or than agents (no agent holds a class twice)."""
    caps = np.minimum(counts, n_agents)
    total = int(min(n_agents * per_agent, caps.sum()))  # >= n_agents: sum(caps) >= n_agents
    holders = np.ones_like(counts) if total >= counts.size else np.zeros_like(counts)
    heap = [(-counts[c] / (holders[c] + 1), c) for c in range(counts.size) if holders[c] < caps[c]]
    heapq.heapify(heap)
    for _ in range(total - int(holders.sum())):
        _, c = heapq.heappop(heap)
        holders[c] += 1
        if holders[c] < caps[c]:
            heapq.heappush(heap, (-counts[c] / (holders[c] + 1), c))
    return holders


def _non_iid(
    y: np.ndarray,
    classes: np.ndarray,
    n_agents: int,
    per_agent: int,
    rng: np.random.Generator,
    size: int | None,
) -> list[np.ndarray]:
    """The label-sorted shards of McMahan et al. (2017), cut along class boundaries.

    Each class is shuffled and cut into as many pieces as it has holders (`_holders`);
    the pieces, lined up class by class in a random class order, are dealt round-robin
    to the agents in a random order. A class's pieces are at most n_agents consecutive
    slots, so no agent gets two pieces of one class: each sees <= `per_agent` classes.
    Without `shard_size` the shards partition all the data (whenever there are at least
    as many slots as classes). With it, an agent keeps a random `shard_size` of its own
    pieces, topped up, if they are too small, with other samples of its classes (the only
    case where shards overlap).
    """
    members = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
    holders = _holders(np.array([m.size for m in members]), n_agents, per_agent)
    dealer = rng.permutation(n_agents)
    parts: list[list[np.ndarray]] = [[] for _ in range(n_agents)]
    held: list[list[int]] = [[] for _ in range(n_agents)]
    slot = 0
    for c in rng.permutation(classes.size):
        if holders[c] == 0:
            continue  # fewer slots than classes: the smallest classes go unused
        for piece in np.array_split(members[c], holders[c]):
            agent = int(dealer[slot % n_agents])
            parts[agent].append(piece)
            held[agent].append(int(c))
            slot += 1
    shards = [np.concatenate(p) for p in parts]
    if size is not None:
        shards = [
            _resize(s, [members[c] for c in h], size, rng, classes[h])
            for s, h in zip(shards, held, strict=True)
        ]
    return [np.sort(s) for s in shards]


def _resize(
    own: np.ndarray,
    pools: list[np.ndarray],
    size: int,
    rng: np.random.Generator,
    labels: np.ndarray,
) -> np.ndarray:
    if own.size >= size:
        return rng.choice(own, size=size, replace=False)
    pool = np.setdiff1d(np.concatenate(pools), own)
    if own.size + pool.size < size:
        raise ValueError(
            f"non-IID shard_size {size} is larger than the {own.size + pool.size} samples "
            f"of classes {labels.tolist()} an agent holds"
        )
    return np.concatenate([own, rng.choice(pool, size=size - own.size, replace=False)])


def shard_label_counts(
    y: np.ndarray, shards: list[np.ndarray], classes: np.ndarray | None = None
) -> np.ndarray:
    """(n_agents, n_classes) sample counts per agent and class, columns in `classes`
    order (default: the classes present in `y`); for reports and tests of skew."""
    y = np.asarray(y)
    classes = np.unique(y) if classes is None else np.asarray(classes)
    counts = np.zeros((len(shards), classes.size), dtype=np.int64)
    for i, idx in enumerate(shards):
        labels = y[np.asarray(idx, dtype=np.intp)]
        col = np.searchsorted(classes, labels).clip(0, classes.size - 1)
        if not np.array_equal(classes[col], labels):
            raise ValueError(f"shard {i} holds labels outside {classes.tolist()}")
        counts[i] = np.bincount(col, minlength=classes.size)
    return counts
