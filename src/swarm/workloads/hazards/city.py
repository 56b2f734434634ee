"""A 2-D city for the taxi fleet: hazards come and go, taxis drive, sensors read.

This is the sans-I/O world model. Every random draw comes from a numpy Generator the
caller passes in, and draws happen in a fixed order (hazards by id, taxis by index), so
a run is a deterministic function of its seeds. Perception of the readings (embedding,
classification) and awareness bookkeeping live in `swarm.workloads.hazards.awareness`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
from sklearn.neighbors import KDTree

__all__ = [
    "DETECTION_TIME_S",
    "KINDS",
    "SPURIOUS_SPREAD",
    "City",
    "CityConfig",
    "Hazard",
    "Observation",
    "Taxis",
    "kind_means",
    "sample_features",
    "sense",
]

KINDS: tuple[str, ...] = ("pothole", "debris", "stalled_vehicle", "flooding")

# The class means are fixed by this seed, not by a run's seed: every run, and every
# taxi's classifier, agrees on what a pothole looks like.
_KIND_SEED = 0x5EED
# Norm of each kind's mean vector; with the default sensor_noise (0.5) this puts the
# real-vs-spurious accuracy of a linear classifier around 94%, so misses and false
# alarms both happen.
_KIND_MEAN_NORM = 2.5
SPURIOUS_SPREAD = 1.5  # a spurious reading is N(0, (SPURIOUS_SPREAD * sensor_noise)^2)
DETECTION_TIME_S = 1.0  # mean time in range before a taxi detects a hazard
# A KD-tree pays for its construction only with many taxis and many query points.
_KDTREE_MIN_TAXIS = 4096
_KDTREE_MIN_POINTS = 64


def _check(name: str, value: object, ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(f"CityConfig.{name} must be {what}, got {value!r}")


def _real(value: object) -> float:
    """The value as a float; NaN (which fails every bound) when it is not a finite real."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return math.nan
    return float(value) if math.isfinite(value) else math.nan


@dataclass(frozen=True)
class CityConfig:
    """Parameters of the city, its hazards and the taxis' sensors."""

    size_m: float = 5000.0  # side of the square city
    hazard_rate: float = 0.05  # new hazards per simulated second, whole city
    hazard_lifetime_s: float = 600.0  # mean of the exponential lifetime
    sensing_range_m: float = 150.0
    speed_mps: float = 10.0
    sensor_noise: float = 0.5  # std of observation noise, feature units
    false_reading_rate: float = 0.002  # spurious readings per taxi per second
    n_features: int = 16
    embedding_dim: int = 8

    def __post_init__(self) -> None:
        for name in ("size_m", "hazard_lifetime_s", "sensing_range_m", "speed_mps"):
            value = getattr(self, name)
            _check(name, value, _real(value) > 0, "a finite positive number")
        for name in ("hazard_rate", "sensor_noise", "false_reading_rate"):
            value = getattr(self, name)
            _check(name, value, _real(value) >= 0, "a finite non-negative number")
        for name in ("n_features", "embedding_dim"):
            value = getattr(self, name)
            ok = (
                isinstance(value, numbers.Integral)
                and not isinstance(value, bool)
                and int(value) >= 1
            )
            _check(name, value, ok, "a positive integer")
        limit = f"at most n_features ({self.n_features})"
        _check("embedding_dim", self.embedding_dim, self.embedding_dim <= self.n_features, limit)


def kind_means(n_features: int) -> np.ndarray:
    """(len(KINDS), n_features) mean raw feature vector of each hazard kind.

    Random directions from a fixed seed, scaled to a common norm so that separability
    does not depend on n_features.
    """
    means = np.random.default_rng(_KIND_SEED).standard_normal((len(KINDS), n_features))
    return means / np.linalg.norm(means, axis=1, keepdims=True) * _KIND_MEAN_NORM


def sample_features(config: CityConfig, rng: np.random.Generator, kinds: np.ndarray) -> np.ndarray:
    """Raw sensor readings, one row per entry of `kinds` (index into KINDS, -1 = spurious)."""
    kinds = np.asarray(kinds, dtype=np.int64)
    means = np.vstack([kind_means(config.n_features), np.zeros(config.n_features)])
    std = np.where(kinds < 0, SPURIOUS_SPREAD, 1.0) * config.sensor_noise
    noise = rng.standard_normal((kinds.size, config.n_features))
    return means[kinds] + noise * std[:, None]  # kinds == -1 picks the zero row


@dataclass(slots=True)
class Hazard:
    """A hazard, active on [appeared_at, expires_at)."""

    id: int
    kind: str
    x: float
    y: float
    appeared_at: float
    expires_at: float


class City:
    """Hazards arriving as a Poisson process with exponential lifetimes."""

    def __init__(self, config: CityConfig, rng: np.random.Generator, start: float = 0.0) -> None:
        self.config = config
        self._rng = rng
        self._now = float(start)
        self._next_id = 0
        self._active: dict[int, Hazard] = {}
        self._history: dict[int, Hazard] = {}
        self._next_arrival = self._now + self._gap()

    def _gap(self) -> float:
        rate = self.config.hazard_rate
        return float(self._rng.exponential(1.0 / rate)) if rate > 0 else math.inf

    @property
    def now(self) -> float:
        return self._now

    @property
    def active(self) -> list[Hazard]:
        """Current hazards, oldest first."""
        return list(self._active.values())

    def hazard(self, hazard_id: int) -> Hazard:
        """Any hazard this city created, expired or not: gossip can outlive a hazard."""
        try:
            return self._history[hazard_id]
        except KeyError:
            raise KeyError(f"no hazard with id {hazard_id}") from None

    def advance(self, now: float) -> tuple[list[Hazard], list[Hazard]]:
        """Move time to `now`; return (appeared, expired) since the previous call.

        A hazard that both appears and expires within the step is in both lists.
        """
        if not math.isfinite(now) or now < self._now:
            raise ValueError(f"advance({now!r}) would move time back from {self._now}")
        cfg = self.config
        appeared: list[Hazard] = []
        while self._next_arrival <= now:
            t = self._next_arrival
            x, y = self._rng.uniform(0.0, cfg.size_m, size=2)
            kind = KINDS[int(self._rng.integers(len(KINDS)))]
            life = float(self._rng.exponential(cfg.hazard_lifetime_s))
            hazard = Hazard(self._next_id, kind, float(x), float(y), t, t + life)
            self._next_id += 1
            self._active[hazard.id] = self._history[hazard.id] = hazard
            appeared.append(hazard)
            self._next_arrival = t + self._gap()
        expired = [h for h in self._active.values() if h.expires_at <= now]
        expired.sort(key=lambda h: (h.expires_at, h.id))
        for h in expired:
            del self._active[h.id]
        self._now = float(now)
        return appeared, expired


class Taxis:
    """Taxis under the random-waypoint model: drive straight to a uniform waypoint, repeat."""

    def __init__(self, n: int, config: CityConfig, rng: np.random.Generator) -> None:
        if n < 0:
            raise ValueError(f"number of taxis must be non-negative, got {n}")
        self.config = config
        self._rng = rng
        self._pos = rng.uniform(0.0, config.size_m, size=(n, 2))
        self._way = rng.uniform(0.0, config.size_m, size=(n, 2))

    def __len__(self) -> int:
        return len(self._pos)

    @property
    def positions(self) -> np.ndarray:
        """(n, 2) read-only view; copy it to keep a snapshot."""
        view = self._pos.view()
        view.flags.writeable = False
        return view

    @property
    def waypoints(self) -> np.ndarray:
        view = self._way.view()
        view.flags.writeable = False
        return view

    def place(self, index: int, x: float, y: float) -> None:
        """Teleport one taxi (scenarios and tests pin a taxi to a spot)."""
        self._pos[index] = (x, y)

    def move(self, dt: float) -> None:
        """Drive every taxi for `dt` seconds, chaining waypoints when one is reached early."""
        if not dt >= 0:
            raise ValueError(f"dt must be non-negative, got {dt!r}")
        budget = np.full(len(self._pos), self.config.speed_mps * dt)
        moving = np.flatnonzero(budget > 0)
        while moving.size:
            delta = self._way[moving] - self._pos[moving]
            dist = np.hypot(delta[:, 0], delta[:, 1])
            arrive = dist <= budget[moving]
            short = moving[~arrive]
            frac = budget[short] / dist[~arrive]
            self._pos[short] += delta[~arrive] * frac[:, None]
            budget[short] = 0.0
            done = moving[arrive]
            self._pos[done] = self._way[done]
            budget[done] -= dist[arrive]
            self._way[done] = self._rng.uniform(0.0, self.config.size_m, size=(done.size, 2))
            moving = done[budget[done] > 0]
        np.clip(self._pos, 0.0, self.config.size_m, out=self._pos)

    def within(self, x: float, y: float, radius: float) -> np.ndarray:
        """Sorted indices of taxis at distance <= radius from (x, y)."""
        d2 = (self._pos[:, 0] - x) ** 2 + (self._pos[:, 1] - y) ** 2
        return np.flatnonzero(d2 <= radius * radius)

    def within_many(self, points: np.ndarray, radius: float) -> list[np.ndarray]:
        """`within` for each row of `points`, with identical results.

        With many taxis and many points a KD-tree finds candidates (slightly widened
        radius), which are then filtered by the same test as `within`.
        """
        points = np.asarray(points, dtype=float).reshape(-1, 2)
        n = len(self._pos)
        if n < _KDTREE_MIN_TAXIS or len(points) < _KDTREE_MIN_POINTS:
            return [self.within(px, py, radius) for px, py in points]
        found = KDTree(self._pos).query_radius(points, r=radius * (1 + 1e-9) + 1e-9)
        out = []
        for (px, py), idx in zip(points, found, strict=True):
            idx = np.sort(idx.astype(np.intp))
            cand = self._pos[idx]
            d2 = (cand[:, 0] - px) ** 2 + (cand[:, 1] - py) ** 2
            out.append(idx[d2 <= radius * radius])
        return out


@dataclass(frozen=True, eq=False)
class Observation:
    """One sensor reading; hazard_id and kind are None for a spurious reading.

    hazard_id and kind are ground truth for scoring; the taxi itself sees only features.
    """

    taxi: int
    hazard_id: int | None
    kind: str | None
    x: float
    y: float
    features: np.ndarray = field(repr=False)
    time: float


def sense(city: City, taxis: Taxis, dt: float, rng: np.random.Generator) -> list[Observation]:
    """The readings of one step of length `dt`, at the city's current time.

    A taxi within sensing range of an active hazard detects it with probability
    1 - exp(-dt / DETECTION_TIME_S), i.e. detection is a Poisson event with a one-second
    mean while in range, so the step size does not change the detection rate. A real
    reading is located at the hazard. Each taxi also makes Poisson(false_reading_rate * dt)
    spurious readings at its own location. Real readings come first (hazards by id,
    taxis by index), then spurious ones by taxi index.
    """
    if not dt >= 0:
        raise ValueError(f"dt must be non-negative, got {dt!r}")
    cfg = city.config
    hazards = city.active
    p_detect = -math.expm1(-dt / DETECTION_TIME_S)
    near = taxis.within_many(np.array([(h.x, h.y) for h in hazards]), cfg.sensing_range_m)
    out: list[Observation] = []
    for hazard, idx in zip(hazards, near, strict=True):
        seen = idx[rng.random(idx.size) < p_detect]
        if not seen.size:
            continue
        kind = KINDS.index(hazard.kind)
        feats = sample_features(cfg, rng, np.full(seen.size, kind))
        for taxi, f in zip(seen, feats, strict=True):
            out.append(
                Observation(int(taxi), hazard.id, hazard.kind, hazard.x, hazard.y, f, city.now)
            )
    counts = rng.poisson(cfg.false_reading_rate * dt, size=len(taxis))
    ghosts = np.repeat(np.arange(len(taxis)), counts)
    feats = sample_features(cfg, rng, np.full(ghosts.size, -1))
    pos = taxis.positions
    for taxi, f in zip(ghosts, feats, strict=True):
        x, y = pos[taxi]
        out.append(Observation(int(taxi), None, None, float(x), float(y), f, city.now))
    return out
