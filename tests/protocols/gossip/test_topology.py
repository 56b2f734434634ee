"""Tests for swarm.protocols.gossip.topology: structure, determinism, sampling, scenario errors."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from swarm.protocols.gossip.topology import TOPOLOGIES, Topology, TopologyError, build_topology

# ------------------------------------------------------------------------------- helpers


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def assert_simple_symmetric(topo: Topology) -> None:
    """CSR well-formed, no self-loops, no duplicate edges, every edge present both ways."""
    assert topo.indptr is not None and topo.indices is not None
    n = topo.n
    indptr, indices = topo.indptr, topo.indices
    assert indptr.dtype == np.int64 and indices.dtype == np.int32
    assert indptr.shape == (n + 1,) and indptr[0] == 0 and indptr[-1] == indices.size
    assert np.all(np.diff(indptr) >= 0)
    assert indices.size == 0 or (indices.min() >= 0 and indices.max() < n)
    src = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    dst = indices.astype(np.int64)
    assert not np.any(src == dst), "self-loop"
    forward = src * n + dst
    assert np.unique(forward).size == forward.size, "duplicate edge"
    assert np.array_equal(np.sort(forward), np.sort(dst * n + src)), "not symmetric"


def components(topo: Topology) -> int:
    """Connected components computed independently of Topology.is_connected."""
    assert topo.indptr is not None and topo.indices is not None
    graph = csr_matrix(
        (np.ones(topo.indices.size), topo.indices, topo.indptr), shape=(topo.n, topo.n)
    )
    return int(connected_components(graph, directed=False)[0])


def islands(seed: int, per_region: int = 250, regions: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Regions far apart from each other (islands), each a blob of random positions."""
    g = rng(seed)
    reg = np.repeat(np.arange(regions), per_region)
    centres = np.array([[1000.0 * r, 300.0 * (r % 2)] for r in range(regions)])
    pos = centres[reg] + g.uniform(-100.0, 100.0, size=(reg.size, 2))
    return pos, reg


def same_csr(a: Topology, b: Topology) -> bool:
    assert a.indptr is not None and b.indptr is not None
    assert a.indices is not None and b.indices is not None
    return np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)


# ------------------------------------------------------------------------- structure


def test_every_listed_topology_builds_a_connected_graph() -> None:
    rng = np.random.default_rng(0)
    positions = rng.normal(size=(64, 2))
    regions = np.arange(64) % 4
    for name in TOPOLOGIES:
        topology = build_topology(
            name, 64, np.random.default_rng(1), positions=positions, regions=regions
        )
        assert topology.name == name and topology.n == 64
        assert topology.is_connected()


@pytest.mark.parametrize(
    ("name", "n", "kwargs", "degree"),
    [
        ("ring", 100, {}, 2),
        ("torus", 100, {}, 4),
        ("torus", 9, {}, 4),
        ("torus", 1008, {}, 4),
        ("hypercube", 2, {}, 1),
        ("hypercube", 256, {}, 8),
        ("regular", 1000, {"degree": 1}, 1),
        ("regular", 1000, {"degree": 2}, 2),
        ("regular", 999, {"degree": 4}, 4),
        ("regular", 1000, {"degree": 3}, 3),
        ("regular", 500, {"degree": 8}, 8),
        ("regular", 20, {"degree": 15}, 15),  # dense: built as a complement
        ("regular", 12, {"degree": 11}, 11),
    ],
)
def test_exact_degrees(name: str, n: int, kwargs: dict[str, Any], degree: int) -> None:
    topo = build_topology(name, n, rng(1), **kwargs)
    assert_simple_symmetric(topo)
    assert topo.name == name and topo.n == n
    assert topo.min_degree == topo.max_degree == degree
    assert all(topo.degree(i) == degree for i in range(n))
    assert topo.edges == n * degree // 2
    if name != "regular" or degree >= 3:
        assert topo.is_connected() and components(topo) == 1


def test_complete_is_implicit() -> None:
    topo = build_topology("complete", 50, rng())
    assert topo.indptr is None and topo.indices is None
    assert topo.min_degree == topo.max_degree == topo.degree(7) == 49
    assert topo.neighbors(7).tolist() == [j for j in range(50) if j != 7]
    assert topo.is_connected()
    assert topo.describe() == {
        "name": "complete",
        "n": 50,
        "edges": 50 * 49 // 2,
        "min_degree": 49,
        "max_degree": 49,
        "connected": True,
    }


def test_complete_sampling_never_materialises_the_fleet() -> None:
    """n = 10**9 would need gigabytes if any n-sized array were built."""
    topo = build_topology("complete", 10**9, rng())
    g = rng(3)
    for i in (0, 5, 10**9 - 1):
        (j,) = topo.sample(i, g, 1)
        assert 0 <= j < 10**9 and j != i
        many = topo.sample(i, g, 5)
        assert len(set(many)) == 5 and i not in many


def test_ring_neighbours() -> None:
    topo = build_topology("ring", 10, rng())
    assert topo.neighbors(0).tolist() == [1, 9]
    assert topo.neighbors(5).tolist() == [4, 6]


def test_torus_neighbours() -> None:
    topo = build_topology("torus", 12, rng())  # 3 x 4
    assert topo.neighbors(0).tolist() == [1, 3, 4, 8]
    assert topo.neighbors(5).tolist() == [1, 4, 6, 9]


def test_hypercube_neighbours() -> None:
    topo = build_topology("hypercube", 64, rng())
    for i in (0, 13, 63):
        assert topo.neighbors(i).tolist() == sorted(i ^ (1 << b) for b in range(6))


def test_neighbors_are_read_only() -> None:
    topo = build_topology("ring", 10, rng())
    with pytest.raises(ValueError):
        topo.neighbors(0)[0] = 5


def test_describe() -> None:
    topo = build_topology("torus", 16, rng())
    assert topo.describe() == {
        "name": "torus",
        "n": 16,
        "edges": 32,
        "min_degree": 4,
        "max_degree": 4,
        "connected": True,
    }


def test_regular_degree_two_may_be_disconnected_but_is_exact() -> None:
    for seed in range(5):
        topo = build_topology("regular", 60, rng(seed), degree=2)
        assert topo.min_degree == topo.max_degree == 2
        assert topo.is_connected() == (components(topo) == 1)


def test_regular_is_roughly_uniform_over_edges() -> None:
    """Every pair should be an edge equally often (3/7 of draws for 3-regular on 8 nodes)."""
    n, d, draws = 8, 3, 600
    g = rng(11)
    hits = np.zeros((n, n))
    for _ in range(draws):
        topo = build_topology("regular", n, g, degree=d)
        for i in range(n):
            hits[i, topo.neighbors(i)] += 1
    freq = hits[np.triu_indices(n, 1)] / draws
    assert np.all(np.abs(freq - d / (n - 1)) < 0.1)


def test_small_world_without_rewiring_is_the_ring_lattice() -> None:
    topo = build_topology("small-world", 30, rng(), degree=6, rewire=0.0)
    assert_simple_symmetric(topo)
    assert topo.min_degree == topo.max_degree == 6
    assert topo.neighbors(0).tolist() == [1, 2, 3, 27, 28, 29]


@pytest.mark.parametrize("rewire", [0.1, 0.5, 1.0])
def test_small_world_rewiring(rewire: float) -> None:
    n, degree = 500, 6
    lattice = build_topology("small-world", n, rng(), degree=degree, rewire=0.0)
    topo = build_topology("small-world", n, rng(4), degree=degree, rewire=rewire)
    assert_simple_symmetric(topo)
    assert topo.edges == n * degree // 2  # rewiring moves edges, never drops them
    assert topo.min_degree >= degree // 2  # each node keeps the edges it rewired
    assert not same_csr(topo, lattice)
    kept = sum(
        len(set(topo.neighbors(i).tolist()) & set(lattice.neighbors(i).tolist())) for i in range(n)
    )
    kept_fraction = kept / (2 * topo.edges)
    assert abs(kept_fraction - (1 - rewire)) < 0.1 + 0.05 * rewire


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("ring", {}),
        ("torus", {}),
        ("hypercube", {}),
        ("regular", {"degree": 5}),
        ("small-world", {"degree": 4, "rewire": 0.3}),
        ("geo", {"degree": 5}),
    ],
)
def test_same_seed_same_graph(name: str, kwargs: dict[str, Any]) -> None:
    n = 1024
    if name == "geo":
        kwargs = {
            **kwargs,
            "positions": rng(9).uniform(0, 500, (n, 2)),
            "regions": np.arange(n) % 3,
        }
    a = build_topology(name, n, rng(42), **kwargs)
    b = build_topology(name, n, rng(42), **kwargs)
    assert_simple_symmetric(a)
    assert same_csr(a, b)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("regular", {"degree": 5}), ("small-world", {"degree": 4, "rewire": 0.3})],
)
def test_different_seed_different_graph(name: str, kwargs: dict[str, Any]) -> None:
    a = build_topology(name, 1000, rng(1), **kwargs)
    b = build_topology(name, 1000, rng(2), **kwargs)
    assert not same_csr(a, b)


# -------------------------------------------------------------------------- sampling


@pytest.mark.parametrize(
    ("name", "n", "kwargs"),
    [
        ("complete", 30, {}),
        ("ring", 30, {}),
        ("torus", 30, {}),
        ("hypercube", 32, {}),
        ("regular", 30, {"degree": 6}),
        ("small-world", 30, {"degree": 6}),
    ],
)
def test_sample_returns_distinct_neighbours(name: str, n: int, kwargs: dict[str, Any]) -> None:
    topo = build_topology(name, n, rng(5), **kwargs)
    g = rng(6)
    for i in range(n):
        nbrs = set(topo.neighbors(i).tolist())
        deg = topo.degree(i)
        assert len(nbrs) == deg
        for k in range(1, deg + 1):
            picked = topo.sample(i, g, k)
            assert len(picked) == k == len(set(picked))
            assert set(picked) <= nbrs
            assert all(type(j) is int for j in picked)
        with pytest.raises(TopologyError, match="distinct peers"):
            topo.sample(i, g, deg + 1)
        with pytest.raises(TopologyError):
            topo.sample(i, g, 0)


def test_sample_rejects_unknown_agent() -> None:
    topo = build_topology("ring", 10, rng())
    with pytest.raises(IndexError):
        topo.sample(10, rng(), 1)
    with pytest.raises(IndexError):
        topo.sample(-1, rng(), 1)


def test_sample_is_deterministic() -> None:
    topo = build_topology("regular", 200, rng(), degree=8)
    a = [topo.sample(i, rng(7), 3) for i in range(200)]
    g1, g2 = rng(7), rng(7)
    assert [topo.sample(i, g1, 3) for i in range(200)] == [
        topo.sample(i, g2, 3) for i in range(200)
    ]
    assert len(a) == 200


def chi_square(counts: np.ndarray) -> float:
    expected = counts.sum() / counts.size
    return float(((counts - expected) ** 2 / expected).sum())


def test_sample_uniform_on_complete() -> None:
    n, agent, draws = 20, 7, 19_000
    topo = build_topology("complete", n, rng())
    g = rng(8)
    for k in (1, 3):
        counts = np.zeros(n)
        for _ in range(draws // k):
            for j in topo.sample(agent, g, k):
                counts[j] += 1
        assert counts[agent] == 0
        # 18 degrees of freedom: mean 18, sd 6; the bound is ~7 sd.
        assert chi_square(np.delete(counts, agent)) < 60


def test_sample_uniform_on_regular() -> None:
    topo = build_topology("regular", 100, rng(), degree=6)
    nbrs = topo.neighbors(0).tolist()
    g = rng(9)
    for k in (1, 2, 4):
        counts = dict.fromkeys(nbrs, 0)
        for _ in range(12_000 // k):
            for j in topo.sample(0, g, k):
                counts[j] += 1
        # 5 degrees of freedom: mean 5, sd ~3.2.
        assert chi_square(np.array(list(counts.values()), dtype=float)) < 30


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("name", "n", "kwargs", "fragments"),
    [
        ("hypercube", 1000, {}, ["'hypercube'", "power-of-two", "1000", "512", "1024"]),
        ("torus", 1009, {}, ["'torus'", "rows x cols", "1009", "prime", "1008", "1010"]),
        ("torus", 8, {}, ["'torus'", "3 x 3", "try 9"]),
        ("torus", 1006, {}, ["1006", "2 x 503"]),
        ("regular", 999, {"degree": 3}, ["'regular'", "even", "degree 3 with 999 agents"]),
        ("regular", 10, {"degree": 10}, ["'regular'", "degree < agents", "try degree <= 9"]),
        ("small-world", 100, {"degree": 3}, ["'small-world'", "even", "degree 3", "2 or 4"]),
        ("small-world", 6, {"degree": 6}, ["'small-world'", "degree < agents", "degree <= 4"]),
        ("ring", 2, {}, ["'ring'", "at least 3", "got 2"]),
        ("ring", 1, {}, ["at least 2 agents", "got 1"]),
        ("complete", 1, {}, ["at least 2 agents", "got 1"]),
        ("geo", 0, {}, ["at least 2 agents", "got 0"]),
        ("geo", 10, {}, ["'geo'", "positions", "regions", "not given"]),
        ("geo", 10, {"regions": np.zeros(10, int)}, ["positions not given"]),
        ("ring", 10, {"degree": 0}, ["network.degree", "got 0"]),
        ("ring", 10, {"degree": 2.5}, ["network.degree", "2.5"]),
        ("ring", 10, {"degree": True}, ["network.degree"]),
        ("regular", 10, {"degree": "4"}, ["network.degree", "'4'"]),
        ("small-world", 10, {"rewire": 1.5}, ["network.rewire", "1.5"]),
        ("small-world", 10, {"rewire": -0.1}, ["network.rewire", "-0.1"]),
        ("small-world", 10, {"rewire": float("nan")}, ["network.rewire", "nan"]),
    ],
)
def test_errors(name: str, n: int, kwargs: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(TopologyError) as info:
        build_topology(name, n, rng(), **kwargs)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_unknown_name_lists_allowed_names() -> None:
    with pytest.raises(TopologyError, match="unknown topology 'star'") as info:
        build_topology("star", 10, rng())
    for name in TOPOLOGIES:
        assert name in str(info.value)


def test_topology_error_is_a_value_error() -> None:
    assert issubclass(TopologyError, ValueError)


@pytest.mark.parametrize(
    ("positions", "regions", "fragment"),
    [
        (np.zeros((9, 2)), np.zeros(10, int), "positions of shape (9, 2) for 10 agents"),
        (np.zeros((10, 3)), np.zeros(10, int), "positions of shape (10, 3)"),
        (np.zeros((10, 2)), np.zeros(11, int), "regions of shape (11,)"),
        (np.zeros((10, 2)), np.zeros(10), "regions must be integers"),
        (np.full((10, 2), np.nan), np.zeros(10, int), "NaN"),
    ],
)
def test_geo_input_errors(positions: np.ndarray, regions: np.ndarray, fragment: str) -> None:
    with pytest.raises(TopologyError, match="'geo'") as info:
        build_topology("geo", 10, rng(), positions=positions, regions=regions)
    assert fragment in str(info.value)


def test_geo_degree_must_be_below_agents() -> None:
    with pytest.raises(TopologyError, match=r"degree 5 with 5 agents \(try degree <= 4\)"):
        build_topology(
            "geo", 5, rng(), degree=5, positions=np.zeros((5, 2)), regions=np.zeros(5, int)
        )


# ------------------------------------------------------------------------------- geo


def test_geo_islands() -> None:
    degree = 4
    pos, reg = islands(seed=3)
    n = reg.size
    topo = build_topology("geo", n, rng(), degree=degree, positions=pos, regions=reg)
    assert_simple_symmetric(topo)
    assert topo.is_connected() and components(topo) == 1
    assert topo.min_degree >= degree
    assert topo.max_degree > topo.min_degree
    same = sum(int(np.sum(reg[topo.neighbors(i)] == reg[i])) for i in range(n))
    assert same / (2 * topo.edges) > 0.99  # only the few island-joining links cross

    # Each agent links to its `degree` nearest agents of its own region.
    dist = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    dist[reg[:, None] != reg[None, :]] = np.inf
    np.fill_diagonal(dist, np.inf)
    nearest = np.argsort(dist, axis=1)[:, :degree]
    for i in range(n):
        assert set(nearest[i].tolist()) <= set(topo.neighbors(i).tolist())

    assert topo.describe()["connected"] is True
    assert topo.describe()["min_degree"] == topo.min_degree


def test_geo_joins_islands_by_their_closest_pair() -> None:
    pos, reg = islands(seed=5, per_region=60, regions=2)
    topo = build_topology("geo", reg.size, rng(), degree=3, positions=pos, regions=reg)
    crossing = {
        (min(i, j), max(i, j))
        for i in range(reg.size)
        for j in topo.neighbors(i).tolist()
        if reg[i] != reg[j]
    }
    dist = np.linalg.norm(pos[reg == 0][:, None, :] - pos[reg == 1][None, :, :], axis=-1)
    a, b = np.unravel_index(np.argmin(dist), dist.shape)
    closest = (int(np.flatnonzero(reg == 0)[a]), int(np.flatnonzero(reg == 1)[b]))
    assert crossing == {closest}


def test_geo_small_region_fills_up_from_nearest_outsiders() -> None:
    # Region 1 has two agents at the origin; the big region 0 lies along the x axis.
    pos = np.array([[0.0, 0.0], [0.0, 0.1]] + [[float(x), 0.0] for x in range(1, 21)])
    reg = np.array([1, 1] + [0] * 20)
    topo = build_topology("geo", 22, rng(), degree=4, positions=pos, regions=reg)
    assert_simple_symmetric(topo)
    assert set(topo.neighbors(0).tolist()) >= {1, 2, 3, 4}  # partner + 3 nearest outsiders
    assert set(topo.neighbors(1).tolist()) >= {0, 2, 3, 4}
    assert components(topo) == 1


@pytest.mark.parametrize("layout", ["duplicates", "collinear", "one-point"])
def test_geo_degenerate_positions_still_connected(layout: str) -> None:
    n = 40
    g = rng(12)
    if layout == "duplicates":
        pos = g.integers(0, 3, (n, 2)).astype(float)
    elif layout == "collinear":
        x = g.uniform(0, 100, n)
        pos = np.column_stack((x, 2 * x + 1))
    else:
        pos = np.zeros((n, 2))
    reg = np.arange(n) % 4
    topo = build_topology("geo", n, rng(), degree=2, positions=pos, regions=reg)
    assert_simple_symmetric(topo)
    assert topo.min_degree >= 2
    assert components(topo) == 1


def test_geo_many_small_regions() -> None:
    """Thousands of tiny islands (cities of 12 agents) are batched, then all joined."""
    g = rng(13)
    cities = g.uniform(0, 10_000, (2000, 2))
    reg = np.repeat(np.arange(2000), 12)
    pos = cities[reg] + g.normal(0, 0.5, (reg.size, 2))
    t0 = time.perf_counter()
    topo = build_topology("geo", reg.size, rng(), degree=4, positions=pos, regions=reg)
    assert time.perf_counter() - t0 < 5
    assert_simple_symmetric(topo)
    assert topo.min_degree >= 4
    assert components(topo) == 1


# ------------------------------------------------------------------------ properties


@st.composite
def topology_cases(draw: st.DrawFn) -> tuple[str, int, dict[str, Any]]:
    name = draw(st.sampled_from(TOPOLOGIES))
    kwargs: dict[str, Any] = {}
    if name == "complete":
        n = draw(st.integers(2, 40))
    elif name == "ring":
        n = draw(st.integers(3, 40))
    elif name == "torus":
        n = draw(st.integers(3, 7)) * draw(st.integers(3, 7))
    elif name == "hypercube":
        n = 1 << draw(st.integers(1, 6))
    elif name == "regular":
        n = draw(st.integers(2, 40))
        choices = [d for d in range(1, n) if n * d % 2 == 0]
        kwargs["degree"] = draw(st.sampled_from(choices))
    elif name == "small-world":
        n = draw(st.integers(3, 40))
        kwargs["degree"] = 2 * draw(st.integers(1, (n - 1) // 2))
        kwargs["rewire"] = draw(st.floats(0.0, 1.0))
    else:
        n = draw(st.integers(2, 40))
        kwargs["degree"] = draw(st.integers(1, n - 1))
        g = rng(draw(st.integers(0, 2**32 - 1)))
        layout = draw(st.sampled_from(["grid", "uniform", "line", "blobs"]))
        if layout == "grid":  # many duplicate positions
            pos = g.integers(0, 4, (n, 2)).astype(float)
        elif layout == "line":
            pos = np.column_stack((g.uniform(0, 10, n), np.zeros(n)))
        elif layout == "blobs":
            pos = g.normal(0, 1, (n, 2)) + 100.0 * g.integers(0, 3, (n, 1))
        else:
            pos = g.uniform(0, 100, (n, 2))
        kwargs["positions"] = pos
        kwargs["regions"] = g.integers(0, draw(st.integers(1, 5)), n)
    return name, n, kwargs


@given(case=topology_cases(), seed=st.integers(0, 2**32 - 1))
def test_property_graphs_are_simple_and_symmetric(
    case: tuple[str, int, dict[str, Any]], seed: int
) -> None:
    name, n, kwargs = case
    topo = build_topology(name, n, rng(seed), **kwargs)
    assert topo.n == n
    if name == "complete":
        assert topo.min_degree == topo.max_degree == n - 1
        return
    assert_simple_symmetric(topo)
    degree = kwargs.get("degree")
    if name == "regular":
        assert topo.min_degree == topo.max_degree == degree
        if degree >= 3:
            assert components(topo) == 1
    elif name == "small-world":
        assert topo.edges == n * degree // 2
    elif name == "geo":
        assert topo.min_degree >= degree
        assert components(topo) == 1
    assert topo.is_connected() == (components(topo) == 1)


# ------------------------------------------------------------------------------ slow


@pytest.mark.slow
def test_large_builds() -> None:
    n = 100_000
    t0 = time.perf_counter()
    regular = build_topology("regular", n, rng(1), degree=8)
    t_regular = time.perf_counter() - t0
    assert regular.min_degree == regular.max_degree == 8
    assert regular.indices is not None and regular.indices.size == n * 8
    assert components(regular) == 1

    g = rng(2)
    reg = g.integers(0, 8, n)
    pos = g.uniform(0, 2000, (n, 2)) + 3000.0 * reg[:, None]  # 8 islands
    t0 = time.perf_counter()
    geo = build_topology("geo", n, rng(3), degree=6, positions=pos, regions=reg)
    t_geo = time.perf_counter() - t0
    assert geo.min_degree >= 6
    assert components(geo) == 1
    assert_simple_symmetric(geo)

    print(f"\nn={n}: regular(degree=8) {t_regular:.2f}s, geo(degree=6, 8 islands) {t_geo:.2f}s")
    assert t_regular < 10 and t_geo < 10
