"""Peer topologies for gossip: who may talk to whom.

A topology is built once per run from the scenario's ``[network]`` section, deterministically
from a ``numpy.random.Generator`` derived from the scenario seed, so two runs of the same
scenario gossip over the same graph. Fleets reach 100,000 agents, so graphs are stored in
CSR form (``indptr`` int64 of length n+1, ``indices`` int32, each row sorted) and built with
vectorised numpy: memory is O(edges), never an n x n matrix. ``complete`` is implicit.

All graphs except ``complete`` are simple (no self-loops, no duplicate edges) and undirected
(the CSR is symmetric). ``Topology.sample`` is the gossip hot path and avoids allocations for
the common single-peer case.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["TOPOLOGIES", "Topology", "TopologyError", "build_topology", "from_edges"]

TOPOLOGIES: tuple[str, ...] = (
    "complete",
    "ring",
    "torus",
    "hypercube",
    "regular",
    "small-world",
    "geo",
)

# A random d-regular graph with d >= 3 is connected with high probability; a few fresh
# attempts make a disconnected draw practically impossible to hit twice in a row.
_REGULAR_CONNECT_ATTEMPTS = 10
# Pairings whose repair by edge switches stalls (only plausible for tiny, dense graphs) are
# redrawn from scratch this many times before giving up.
_REGULAR_PAIRING_ATTEMPTS = 200
_SWITCH_TRIES_PER_BAD_EDGE = 2000
# geo: regions up to this size get their kNN by batched brute force instead of a KDTree each.
_BRUTE_FORCE_REGION = 64


class TopologyError(ValueError):
    """A topology cannot be built (or sampled) as asked.

    Messages name what was asked, why it is impossible and what would work, because they are
    shown to whoever wrote the scenario file.
    """


class Topology:
    """An undirected peer graph over agents ``0..n-1``.

    ``indptr``/``indices`` are the (read-only) symmetric CSR arrays, or ``None`` for
    ``complete``, whose neighbour sets are implicit (everyone but yourself).
    """

    __slots__ = (
        "_connected",
        "_indptr_list",
        "indices",
        "indptr",
        "max_degree",
        "min_degree",
        "n",
        "name",
    )

    def __init__(
        self,
        name: str,
        n: int,
        indptr: np.ndarray | None = None,
        indices: np.ndarray | None = None,
    ) -> None:
        self.name: str = name
        self.n: int = int(n)
        self._connected: bool | None = None
        if indptr is None or indices is None:
            if indptr is not None or indices is not None:
                raise ValueError("indptr and indices must both be given, or neither (complete)")
            self.indptr: np.ndarray | None = None
            self.indices: np.ndarray | None = None
            # A Python list keeps the hot path free of numpy scalar arithmetic.
            self._indptr_list: list[int] | None = None
            self.min_degree: int = self.n - 1
            self.max_degree: int = self.n - 1
            self._connected = True
            return
        indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        indices = np.ascontiguousarray(indices, dtype=np.int32)
        if indptr.shape != (self.n + 1,) or indptr[0] != 0 or indptr[-1] != indices.size:
            raise ValueError("malformed CSR arrays")
        indptr.setflags(write=False)
        indices.setflags(write=False)
        self.indptr = indptr
        self.indices = indices
        self._indptr_list = indptr.tolist()
        degrees = np.diff(indptr)
        self.min_degree = int(degrees.min())
        self.max_degree = int(degrees.max())

    def __repr__(self) -> str:
        return f"Topology({self.name!r}, n={self.n}, edges={self.edges})"

    @property
    def edges(self) -> int:
        """Number of undirected edges."""
        if self.indices is None:
            return self.n * (self.n - 1) // 2
        return int(self.indices.size) // 2

    def _check_agent(self, i: int) -> None:
        if not 0 <= i < self.n:
            raise IndexError(f"agent {i} out of range for a topology of {self.n} agents")

    def degree(self, i: int) -> int:
        """How many peers agent ``i`` can gossip with."""
        self._check_agent(i)
        if self._indptr_list is None:
            return self.n - 1
        return self._indptr_list[i + 1] - self._indptr_list[i]

    def neighbors(self, i: int) -> np.ndarray:
        """Agent ``i``'s peers, ascending (a read-only view for CSR graphs)."""
        self._check_agent(i)
        if self.indices is None:
            everyone = np.arange(self.n - 1, dtype=np.int64)
            everyone[i:] += 1
            return everyone
        assert self._indptr_list is not None
        return self.indices[self._indptr_list[i] : self._indptr_list[i + 1]]

    def sample(self, i: int, rng: np.random.Generator, k: int = 1) -> list[int]:
        """``k`` distinct peers of agent ``i``, uniformly at random from ``rng``.

        Called once per agent per round, so the k == 1 paths draw a single integer and index
        directly instead of materialising neighbour arrays.
        """
        n = self.n
        if not 0 <= i < n:
            raise IndexError(f"agent {i} out of range for a topology of {n} agents")
        ptr = self._indptr_list
        if ptr is None:  # complete: everyone but i, without building an n-sized array
            if k == 1:
                # random() * m costs a third of integers(m); the bias is below 2**-40.
                j = int(rng.random() * (n - 1))
                return [j + (j >= i)]
            self._check_k(i, k, n - 1)
            return [j + (j >= i) for j in _distinct(rng, n - 1, k)]
        lo = ptr[i]
        deg = ptr[i + 1] - lo
        indices = self.indices
        assert indices is not None
        if k == 1 and deg > 0:
            return [int(indices[lo + int(rng.random() * deg)])]
        self._check_k(i, k, deg)
        return [int(indices[lo + j]) for j in _distinct(rng, deg, k)]

    def _check_k(self, i: int, k: int, deg: int) -> None:
        if not 1 <= k <= deg:
            raise TopologyError(
                f"cannot sample {k} distinct peers of agent {i} in topology '{self.name}': "
                f"it has {deg} neighbours, so k must be between 1 and {deg}"
            )

    def is_connected(self) -> bool:
        """Whether gossip from any agent can reach every other agent (cached)."""
        if self._connected is None:
            self._connected = _component_labels(self.n, self.indptr, self.indices)[0] == 1
        return self._connected

    def describe(self) -> dict[str, Any]:
        """A summary for logs and run reports."""
        return {
            "name": self.name,
            "n": self.n,
            "edges": self.edges,
            "min_degree": self.min_degree,
            "max_degree": self.max_degree,
            "connected": self.is_connected(),
        }


def _distinct(rng: np.random.Generator, m: int, k: int) -> list[int]:
    """``k`` distinct uniform draws from ``range(m)``, in random order.

    One ``rng.integers`` call decoded in mixed radix m, m-1, ..., m-k+1 drives a virtual
    Fisher-Yates shuffle (swaps kept in a dict), so it costs about as much as a single draw
    and never allocates an m-sized array; ``rng.choice`` takes ~10 us per call.
    """
    span = math.perm(m, k)
    if span >= 1 << 63:  # too many outcomes for one int64 draw (huge k)
        return rng.choice(m, k, replace=False).tolist()
    r = int(rng.integers(span))
    picked: list[int] = []
    moved: dict[int, int] = {}
    for t in range(k):
        r, x = divmod(r, m - t)
        j = t + x
        picked.append(moved.get(j, j))
        moved[j] = moved.get(t, t)
    return picked


# --------------------------------------------------------------------------- public builder


def build_topology(
    name: str,
    n: int,
    rng: np.random.Generator,
    *,
    degree: int = 4,
    rewire: float = 0.1,
    positions: np.ndarray | None = None,
    regions: np.ndarray | None = None,
) -> Topology:
    """Build topology ``name`` over ``n`` agents, deterministically from ``rng``.

    ``degree`` and ``rewire`` come from the scenario's ``[network]`` section and are checked
    for every topology (a bad value is a scenario bug even where it is unused); ``positions``
    ((n, 2) km) and ``regions`` (n ints) are needed only by ``geo``.
    """
    if not isinstance(name, str) or name not in TOPOLOGIES:
        raise TopologyError(f"unknown topology {name!r}; allowed: {', '.join(TOPOLOGIES)}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TopologyError(f"topology '{name}' needs an integer agent count, got {n!r}")
    n = int(n)
    if n < 2:
        raise TopologyError(f"topology '{name}' needs at least 2 agents, got {n}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    degree = _check_degree(degree)
    rewire = _check_rewire(rewire)

    if name == "complete":
        return Topology(name, n)
    if name == "ring":
        return _ring(n)
    if name == "torus":
        return _torus(n)
    if name == "hypercube":
        return _hypercube(n)
    if name == "regular":
        return _regular(n, degree, rng)
    if name == "small-world":
        return _small_world(n, degree, rewire, rng)
    return _geo(n, degree, positions, regions)


def _check_degree(degree: object) -> int:
    if isinstance(degree, bool) or not isinstance(degree, int | np.integer) or degree < 1:
        raise TopologyError(f"network.degree must be an integer >= 1, got {degree!r}")
    return int(degree)


def _check_rewire(rewire: object) -> float:
    if (
        not isinstance(rewire, int | float | np.integer | np.floating)
        or isinstance(rewire, bool)
        or not 0.0 <= float(rewire) <= 1.0  # also rejects NaN
    ):
        raise TopologyError(f"network.rewire must be a probability between 0 and 1, got {rewire!r}")
    return float(rewire)


# ------------------------------------------------------------------------------ CSR helpers


def _csr_from_edges(n: int, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric CSR (rows sorted) from undirected edges; drops self-loops and duplicates."""
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    lo = np.minimum(u, v)
    hi = np.maximum(u, v)
    keep = lo != hi
    keys = _unique(lo[keep] * n + hi[keep])
    lo, hi = np.divmod(keys, n)
    src = np.concatenate((lo, hi))
    dst = np.concatenate((hi, lo))
    order = np.argsort(src * n + dst)
    indices = dst[order].astype(np.int32)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return indptr, indices


def _unique(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values; a plain sort beats numpy 2's hash-based np.unique here."""
    keys = np.sort(keys)
    if keys.size:
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    return keys


def from_edges(name: str, n: int, u: np.ndarray, v: np.ndarray) -> Topology:
    """The undirected graph over agents 0..n-1 with edges (u[i], v[i]); duplicates merge."""
    indptr, indices = _csr_from_edges(n, u, v)
    return Topology(name, n, indptr, indices)


def _component_labels(
    n: int, indptr: np.ndarray | None, indices: np.ndarray | None
) -> tuple[int, np.ndarray]:
    if indptr is None or indices is None:
        return 1, np.zeros(n, dtype=np.int32)
    data = np.ones(indices.size, dtype=np.int8)
    from scipy.sparse import csr_matrix  # imported here: scipy is slow to import
    from scipy.sparse.csgraph import connected_components

    graph = csr_matrix((data, indices, indptr), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    return int(count), labels


# ---------------------------------------------------------------------- regular structures


def _ring(n: int) -> Topology:
    if n < 3:
        raise TopologyError(f"topology 'ring' needs at least 3 agents, got {n}")
    i = np.arange(n, dtype=np.int64)
    return from_edges("ring", n, i, (i + 1) % n)


def _torus_shape(n: int) -> tuple[int, int]:
    """rows x cols = n with rows the largest divisor <= sqrt(n): the squarest grid."""
    rows = next(r for r in range(math.isqrt(n), 0, -1) if n % r == 0)
    return rows, n // rows


def _torus_ok(n: int) -> bool:
    return n >= 9 and _torus_shape(n)[0] >= 3


def _torus(n: int) -> Topology:
    rows, cols = _torus_shape(n)
    if rows < 3:
        why = "prime" if rows == 1 else f"best split {rows} x {cols}"
        if n < 9:
            why = "the smallest torus is 3 x 3 = 9"
        below = next((m for m in range(n - 1, 8, -1) if _torus_ok(m)), None)
        above = next(m for m in range(max(n + 1, 9), 2 * n + 10) if _torus_ok(m))
        hint = f"try {below} or {above}" if below is not None else f"try {above}"
        raise TopologyError(
            f"topology 'torus' needs an agent count that factors as rows x cols with both >= 3,"
            f" got {n} ({why}); {hint}"
        )
    i = np.arange(n, dtype=np.int64)
    r, c = np.divmod(i, cols)
    right = r * cols + (c + 1) % cols
    down = ((r + 1) % rows) * cols + c
    return from_edges("torus", n, np.concatenate((i, i)), np.concatenate((right, down)))


def _hypercube(n: int) -> Topology:
    d = n.bit_length() - 1
    if n != 1 << d:
        raise TopologyError(
            f"topology 'hypercube' needs a power-of-two agent count, got {n} "
            f"(try {1 << d} or {1 << (d + 1)})"
        )
    i = np.arange(n, dtype=np.int64)
    us, vs = [], []
    for b in range(d):
        low = i[(i >> b) & 1 == 0]
        us.append(low)
        vs.append(low | (1 << b))
    return from_edges("hypercube", n, np.concatenate(us), np.concatenate(vs))


# ------------------------------------------------------------------------- random regular


def _regular(n: int, degree: int, rng: np.random.Generator) -> Topology:
    """A random simple ``degree``-regular graph, connected when degree >= 3.

    Degree 1 (a perfect matching) and degree 2 (disjoint cycles) are usually disconnected;
    that is allowed, since such scenarios presumably want exactly that.
    """
    if not (degree < n and (n * degree) % 2 == 0):
        if degree >= n:
            hint = f"try degree <= {n - 1}"  # n * (n - 1) is always even
        else:
            hint = f"try {n - 1} or {n + 1} agents, or an even degree"
        raise TopologyError(
            f"topology 'regular' needs degree < agents and agents x degree even, "
            f"got degree {degree} with {n} agents ({hint})"
        )
    for _ in range(_REGULAR_CONNECT_ATTEMPTS):
        u, v = _random_regular_edges(n, degree, rng)
        topo = from_edges("regular", n, u, v)
        if degree < 3 or topo.is_connected():
            return topo
    raise TopologyError(  # pragma: no cover - probability ~0 for degree >= 3
        f"topology 'regular' could not draw a connected {degree}-regular graph on {n} agents "
        f"in {_REGULAR_CONNECT_ATTEMPTS} attempts; try another seed or degree"
    )


def _random_regular_edges(
    n: int, degree: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    # Dense graphs are drawn as the complement of a sparse one: repairs stall when almost
    # every pair is taken, and the complement of a uniform graph is uniform.
    if 2 * degree > n - 1:
        co = n - 1 - degree
        adj = np.ones((n, n), dtype=bool)  # n <= 2 * degree, so this is O(edges)
        np.fill_diagonal(adj, False)
        if co > 0:
            cu, cv = _random_regular_edges(n, co, rng)
            adj[cu, cv] = False
            adj[cv, cu] = False
        u, v = np.nonzero(np.triu(adj))
        return u.astype(np.int64), v.astype(np.int64)
    for _ in range(_REGULAR_PAIRING_ATTEMPTS):
        edges = _pair_and_repair(n, degree, rng)
        if edges is not None:
            return edges
    raise TopologyError(  # pragma: no cover - not observed for any n, degree
        f"topology 'regular' could not draw a simple {degree}-regular graph on {n} agents; "
        "try another degree"
    )


def _pair_and_repair(
    n: int, degree: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray] | None:
    """Configuration model, then random edge switches to remove loops and multi-edges.

    A random pairing of the n * degree stubs has only O(degree^2) bad edges on average, so
    the repair loop is short; each switch (a,b),(c,d) -> (a,c),(b,d) keeps degrees and is
    accepted only if both new edges are new and simple, so bad edges never multiply.
    Returns None if a repair stalls (the caller redraws).
    """
    stubs = rng.permutation(np.repeat(np.arange(n, dtype=np.int64), degree))
    u, v = stubs[0::2].copy(), stubs[1::2].copy()
    m = u.size
    keys = np.minimum(u, v) * n + np.maximum(u, v)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    dup = np.zeros(m, dtype=bool)
    dup[order[1:]] = sorted_keys[1:] == sorted_keys[:-1]
    bad = np.flatnonzero(dup | (u == v))
    if bad.size == 0:
        return u, v

    # Multiset of edge keys: a sorted base array plus a small dict of changes, so no
    # Python-level structure of size O(edges) is needed.
    first = np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1]))
    base_keys = sorted_keys[first]
    base_counts = np.diff(np.append(np.flatnonzero(first), m))
    delta: dict[int, int] = {}

    def count(key: int) -> int:
        pos = int(np.searchsorted(base_keys, key))
        base = int(base_counts[pos]) if pos < base_keys.size and base_keys[pos] == key else 0
        return base + delta.get(key, 0)

    def bump(key: int, by: int) -> None:
        delta[key] = delta.get(key, 0) + by

    def key_of(a: int, b: int) -> int:
        return a * n + b if a < b else b * n + a

    draws = _draw_stream(rng, 2 * m, max(64, 16 * bad.size))
    U, V = u.tolist(), v.tolist()
    for e1 in bad.tolist():
        tries = 0
        while True:
            a, b = U[e1], V[e1]
            k_ab = key_of(a, b)
            if a != b and count(k_ab) == 1:
                break  # fixed, possibly as a side effect of an earlier switch
            tries += 1
            if tries > _SWITCH_TRIES_PER_BAD_EDGE:
                return None
            r = next(draws)
            e2 = r >> 1
            if e2 == e1:
                continue
            c, d = (U[e2], V[e2]) if r & 1 else (V[e2], U[e2])
            if a == c or b == d:
                continue
            k_ac, k_bd, k_cd = key_of(a, c), key_of(b, d), key_of(c, d)
            if k_ac == k_bd:
                continue
            bump(k_ab, -1)
            bump(k_cd, -1)
            if count(k_ac) or count(k_bd):
                bump(k_ab, 1)
                bump(k_cd, 1)
                continue
            bump(k_ac, 1)
            bump(k_bd, 1)
            U[e1], V[e1] = a, c
            U[e2], V[e2] = b, d
    return np.asarray(U, dtype=np.int64), np.asarray(V, dtype=np.int64)


def _draw_stream(rng: np.random.Generator, high: int, batch: int) -> Iterator[int]:
    """Endless integers in [0, high), drawn in batches to amortise per-call overhead."""
    while True:
        yield from rng.integers(high, size=batch).tolist()


# ---------------------------------------------------------------------------- small world


def _small_world(n: int, degree: int, rewire: float, rng: np.random.Generator) -> Topology:
    """Watts–Strogatz: ring lattice of ``degree`` nearest neighbours, then rewiring.

    Edges are visited lattice-distance first (j = 1 for every node, then j = 2, ...) as in
    the original model; a rewired edge (i, i+j) becomes (i, w) with w uniform among the nodes
    that are neither i nor already its neighbours (skipped if i is linked to everyone).
    Not guaranteed connected for large ``rewire``.
    """
    if degree % 2 or not 2 <= degree < n:
        top = n - 1 if (n - 1) % 2 == 0 else n - 2  # largest even degree < n
        if top < 2:
            hint = "needs at least 3 agents"
        elif degree % 2 and degree < top:
            hint = f"try {degree - 1} or {degree + 1}" if degree > 1 else "try 2"
        else:
            hint = f"try degree <= {top}"
        raise TopologyError(
            f"topology 'small-world' needs an even network.degree with 2 <= degree < agents, "
            f"got degree {degree} with {n} agents ({hint})"
        )
    half = degree // 2
    u = np.tile(np.arange(n, dtype=np.int64), half)
    v = (u + np.repeat(np.arange(1, half + 1, dtype=np.int64), n)) % n
    flips = np.flatnonzero(rng.random(u.size) < rewire)
    if flips.size:
        v = _rewire(n, degree, u, v, flips, rng)
    return from_edges("small-world", n, u, v)


def _rewire(
    n: int,
    degree: int,
    u: np.ndarray,
    v: np.ndarray,
    flips: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    edge_set = set((np.minimum(u, v) * n + np.maximum(u, v)).tolist())
    deg = [degree] * n
    V = v.tolist()
    U = u.tolist()
    draws = _draw_stream(rng, n, max(64, int(flips.size * 1.25)))
    for e in flips.tolist():
        a, b = U[e], V[e]
        if deg[a] >= n - 1:
            continue
        while True:
            w = next(draws)
            if w != a and (a * n + w if a < w else w * n + a) not in edge_set:
                break
        edge_set.discard(a * n + b if a < b else b * n + a)
        edge_set.add(a * n + w if a < w else w * n + a)
        deg[b] -= 1
        deg[w] += 1
        V[e] = w
    return np.asarray(V, dtype=np.int64)


# -------------------------------------------------------------------------------------- geo


def _geo(n: int, degree: int, positions: np.ndarray | None, regions: np.ndarray | None) -> Topology:
    """k nearest neighbours within each region, symmetrised, islands joined by closest pairs.

    Agents in regions with at most ``degree`` other members link to all of them and fill up
    with the nearest agents elsewhere. Components (e.g. regions that are islands) are then
    joined by the Euclidean minimum spanning tree between components, which is what linking
    every component to its nearest other component, repeatedly, converges to.
    """
    pos, reg = _check_geo_inputs(n, degree, positions, regions)
    src_parts: list[np.ndarray] = []
    dst_parts: list[np.ndarray] = []

    _, inverse, sizes = np.unique(reg, return_inverse=True, return_counts=True)
    members_by_region = np.argsort(inverse, kind="stable")
    starts = np.concatenate(([0], np.cumsum(sizes)))

    # Regions with more than `degree` other members: plain kNN inside the region. Many small
    # regions are batched by size (brute force), since a KDTree per region costs ~0.3 ms.
    big = sizes > degree + 1
    for size in np.unique(sizes[big & (sizes <= _BRUTE_FORCE_REGION)]).tolist():
        rows = starts[np.flatnonzero(sizes == size)][:, None] + np.arange(size)
        src, dst = _knn_same_size(pos, members_by_region[rows], degree)
        src_parts.append(src)
        dst_parts.append(dst)
    for r in np.flatnonzero(big & (sizes > _BRUTE_FORCE_REGION)).tolist():
        members = members_by_region[starts[r] : starts[r + 1]]
        src, dst = _knn_within(pos[members], degree)
        src_parts.append(members[src])
        dst_parts.append(members[dst])

    # Small regions: everyone in the region, plus the nearest outsiders to reach `degree`.
    small_regions = np.flatnonzero(sizes <= degree + 1)
    if small_regions.size:
        small = np.isin(inverse, small_regions)
        agents = np.flatnonzero(small)
        # All ordered pairs within each small region, built by offsets into the sorted slices.
        agent_region = inverse[agents]
        region_size = sizes[agent_region]
        partner_start = np.repeat(starts[agent_region], region_size)
        offsets = np.arange(int(region_size.sum())) - np.repeat(
            np.cumsum(region_size) - region_size, region_size
        )
        partners = members_by_region[partner_start + offsets]
        owners = np.repeat(agents, region_size)
        src_parts.append(owners)
        dst_parts.append(partners)  # self-pairs are dropped when building the CSR

        need = degree - (region_size - 1)
        fill = need > 0
        if fill.any():
            askers = agents[fill]
            # degree + 1 nearest overall contain at most region_size own-region agents, so at
            # least `need` outsiders.
            from sklearn.neighbors import KDTree  # imported here: sklearn is slow to import

            _, ind = KDTree(pos).query(pos[askers], k=degree + 1)
            outside = reg[ind] != reg[askers][:, None]
            rank = np.cumsum(outside, axis=1)
            take = outside & (rank <= need[fill][:, None])
            src_parts.append(np.broadcast_to(askers[:, None], ind.shape)[take])
            dst_parts.append(ind[take])

    src = np.concatenate(src_parts)
    dst = np.concatenate(dst_parts)
    indptr, indices = _csr_from_edges(n, src, dst)
    count, labels = _component_labels(n, indptr, indices)
    if count > 1:
        ju, jv = _join_components(pos, labels, count)
        indptr, indices = _csr_from_edges(n, np.concatenate((src, ju)), np.concatenate((dst, jv)))
    topo = Topology("geo", n, indptr, indices)
    topo._connected = True
    return topo


def _check_geo_inputs(
    n: int, degree: int, positions: np.ndarray | None, regions: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    needs = (
        "topology 'geo' needs positions, an (agents, 2) array of km coordinates, and regions, "
        "one integer region id per agent"
    )
    if positions is None or regions is None:
        missing = " and ".join(
            w for w, x in (("positions", positions), ("regions", regions)) if x is None
        )
        raise TopologyError(f"{needs}; {missing} not given")
    try:
        pos = np.asarray(positions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TopologyError(f"{needs}; positions are not numeric ({exc})") from None
    if pos.shape != (n, 2):
        raise TopologyError(f"{needs}; got positions of shape {pos.shape} for {n} agents")
    if not np.isfinite(pos).all():
        raise TopologyError(f"{needs}; positions contain NaN or infinite values")
    reg = np.asarray(regions)
    if reg.shape != (n,):
        raise TopologyError(f"{needs}; got regions of shape {reg.shape} for {n} agents")
    if not np.issubdtype(reg.dtype, np.integer):
        raise TopologyError(f"{needs}; regions must be integers, got dtype {reg.dtype}")
    if degree >= n:
        raise TopologyError(
            f"topology 'geo' needs network.degree < agents, got degree {degree} with {n} "
            f"agents (try degree <= {n - 1})"
        )
    return pos, reg.astype(np.int64)


def _knn_within(pos: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Directed edges from each point to its k nearest others (local indices)."""
    from sklearn.neighbors import KDTree  # imported here: sklearn is slow to import

    m = pos.shape[0]
    _, ind = KDTree(pos).query(pos, k=k + 1)
    not_self = ind != np.arange(m)[:, None]
    # With duplicate positions a point may not be listed among its own neighbours; then
    # the farthest of the k + 1 is the one to drop.
    not_self[not_self.all(axis=1), -1] = False
    return np.repeat(np.arange(m), k), ind[not_self]


def _knn_same_size(pos: np.ndarray, members: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """kNN edges inside each row of ``members`` (regions of equal size), by brute force."""
    regions_count, size = members.shape
    chunk = max(1, (1 << 20) // (size * size))
    src_parts, dst_parts = [], []
    for lo in range(0, regions_count, chunk):
        block = members[lo : lo + chunk]
        p = pos[block]
        dist = ((p[:, :, None, :] - p[:, None, :, :]) ** 2).sum(axis=-1)
        dist[:, np.arange(size), np.arange(size)] = -1.0  # self sorts first, then is cut
        nearest = np.argsort(dist, axis=2, kind="stable")[:, :, 1 : k + 1]
        dst_parts.append(block[np.arange(block.shape[0])[:, None, None], nearest].ravel())
        src_parts.append(np.broadcast_to(block[:, :, None], nearest.shape).ravel())
    return np.concatenate(src_parts), np.concatenate(dst_parts)


def _join_components(
    pos: np.ndarray, labels: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cheapest links making the component graph connected (exact closest pairs).

    The shortest edge across any cut of a Euclidean point set is a Delaunay edge, so Kruskal
    over the Delaunay edges that cross components finds, repeatedly, each component's closest
    pair to another: O(n log n), no n x n distances.
    """
    u, v = _proximity_edges(pos)
    cross = labels[u] != labels[v]
    u, v = u[cross], v[cross]
    length = np.hypot(*(pos[u] - pos[v]).T)
    order = np.lexsort((v, u, length))
    parent = list(range(count))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    links_u: list[int] = []
    links_v: list[int] = []
    for e in order.tolist():
        a, b = int(u[e]), int(v[e])
        ra, rb = find(int(labels[a])), find(int(labels[b]))
        if ra != rb:
            parent[ra] = rb
            links_u.append(a)
            links_v.append(b)
            if len(links_u) == count - 1:
                break
    return np.asarray(links_u, dtype=np.int64), np.asarray(links_v, dtype=np.int64)


def _proximity_edges(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A connected graph over all points that contains a Euclidean minimum spanning tree."""
    from scipy.spatial import Delaunay, QhullError  # imported here: scipy is slow to import

    n = pos.shape[0]
    try:
        tri = Delaunay(pos)
    except (QhullError, ValueError):
        # Fewer than 3 points or all collinear: consecutive points along the line suffice.
        centred = pos - pos.mean(axis=0)
        axis = np.linalg.svd(centred, full_matrices=False)[2][0]
        order = np.argsort(centred @ axis, kind="stable")
        return order[:-1].astype(np.int64), order[1:].astype(np.int64)
    s = tri.simplices.astype(np.int64)
    u = np.concatenate((s[:, 0], s[:, 1], s[:, 2]))
    v = np.concatenate((s[:, 1], s[:, 2], s[:, 0]))
    if tri.coplanar.size:
        # Points left out of the triangulation (duplicates) attach to the vertex they sit on.
        u = np.concatenate((u, tri.coplanar[:, 0].astype(np.int64)))
        v = np.concatenate((v, tri.coplanar[:, 2].astype(np.int64)))
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    return np.divmod(_unique(lo * n + hi), n)
