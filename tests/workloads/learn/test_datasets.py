"""Tests for swarm.workloads.learn.datasets: splits, scaling, determinism, telematics, sharding."""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarm.workloads.learn.datasets import (
    DATASETS,
    TELEMATICS_FEATURES,
    TELEMATICS_KINDS,
    load,
    shard,
    shard_label_counts,
    telematics,
)

SIZES = {  # samples, features, classes
    "digits": (1797, 64, 10),
    "wine": (178, 13, 3),
    "breast_cancer": (569, 30, 2),
    "telematics": (4000, 12, 4),
}


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- load


@pytest.mark.parametrize("name", DATASETS)
def test_load_shapes_and_classes(name):
    n, n_features, n_classes = SIZES[name]
    ds = load(name)
    assert ds.name == name
    assert ds.n_features == n_features
    assert ds.X_train.shape == (ds.y_train.size, n_features)
    assert ds.X_test.shape == (ds.y_test.size, n_features)
    assert ds.y_train.size + ds.y_test.size == n
    assert ds.y_test.size == pytest.approx(0.25 * n, abs=1)
    assert ds.classes.tolist() == list(range(n_classes))
    assert ds.n_classes == n_classes
    assert ds.X_train.dtype == np.float64
    assert set(np.unique(ds.y_train)) == set(ds.classes.tolist())  # stratified


@pytest.mark.parametrize("name", DATASETS)
def test_standardized_on_train_split(name):
    ds = load(name, seed=4)
    assert np.abs(ds.X_train.mean(axis=0)).max() < 1e-9
    std = ds.X_train.std(axis=0)
    varying = std > 0  # constant pixels of digits stay at 0
    assert np.allclose(std[varying], 1.0)
    assert np.isfinite(ds.X_test).all()
    assert not np.allclose(ds.X_test.mean(axis=0), 0.0, atol=1e-9)


def test_load_is_deterministic_per_seed():
    a, b, c = load("wine", seed=7), load("wine", seed=7), load("wine", seed=8)
    for field in ("X_train", "y_train", "X_test", "y_test"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.y_train, c.y_train) or not np.array_equal(a.X_train, c.X_train)
    assert a.X_train.shape == c.X_train.shape


def test_loaded_arrays_cannot_be_corrupted(digits):
    with pytest.raises(ValueError):
        digits.X_train[0, 0] = 99.0
    with pytest.raises(ValueError):
        digits.y_train[0] = 3
    again = load("digits")
    assert np.array_equal(again.X_train, digits.X_train)
    assert again.X_train is not digits.X_train


def test_unknown_dataset():
    msg = "unknown dataset 'x'; choose one of digits, wine, breast_cancer, telematics"
    with pytest.raises(ValueError, match=re.escape(msg)):
        load("x")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seed": -1}, "seed must be an int >= 0"),
        ({"seed": 1.5}, "seed must be an int >= 0"),
        ({"test_fraction": 0.0}, r"test_fraction must be in \(0, 1\)"),
        ({"test_fraction": 1.0}, r"test_fraction must be in \(0, 1\)"),
    ],
)
def test_load_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load("wine", **kwargs)


def test_telematics_labels_and_anomaly_share():
    X, y = telematics(rng(3))
    assert X.shape == (4000, len(TELEMATICS_FEATURES))
    assert set(np.unique(y).tolist()) == set(range(len(TELEMATICS_KINDS)))
    assert np.mean(y != 0) == pytest.approx(0.10)
    assert all(np.mean(y == k) > 0.02 for k in (1, 2, 3))
    normal = X[y == 0]
    assert 40 < normal[:, 0].mean() < 90  # km/h
    assert np.abs(normal[:, 1].mean()) < 0.1  # acceleration centred on zero
    battery_and_tyres = X[:, 6:11]
    assert ((battery_and_tyres == 0).any(axis=1) == (y == 2)).all()  # only faults read 0
    assert X[y == 1, 1].mean() < -3  # harsh braking decelerates
    assert X[y == 3, 5].mean() > normal[:, 5].mean() + 8  # overheating
    assert np.array_equal(telematics(rng(3))[0], X)


def test_telematics_dataset_follows_the_seed():
    a, b, c = load("telematics", seed=1), load("telematics", seed=1), load("telematics", seed=2)
    assert np.array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.X_train, c.X_train)
    share = (np.sum(a.y_train != 0) + np.sum(a.y_test != 0)) / 4000
    assert share == pytest.approx(0.10)


# --------------------------------------------------------------------------- shard


def assert_disjoint(shards):
    everything = np.concatenate(shards)
    assert np.unique(everything).size == everything.size


def test_iid_shards_are_disjoint_even_and_cover(digits):
    shards = shard(digits.y_train, 10, rng())
    assert len(shards) == 10
    sizes = [s.size for s in shards]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    assert_disjoint(shards)
    assert np.array_equal(np.sort(np.concatenate(shards)), np.arange(digits.y_train.size))


def test_iid_shard_size(digits):
    shards = shard(digits.y_train, 7, rng(), shard_size=100)
    assert [s.size for s in shards] == [100] * 7
    assert_disjoint(shards)
    assert [s.size for s in shard(digits.y_train, 7, rng(), shard_size=0)] == [193] * 3 + [192] * 4


def test_iid_one_sample_each():
    shards = shard(np.array([0, 1, 1, 0, 2]), 5, rng())
    assert sorted(int(s[0]) for s in shards) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("n_agents", "per_agent"), [(10, 2), (100, 2), (7, 3), (1000, 1), (1, 10)])
def test_non_iid_classes_per_agent(digits, n_agents, per_agent):
    y = digits.y_train
    shards = shard(y, n_agents, rng(), iid=False, classes_per_agent=per_agent)
    counts = shard_label_counts(y, shards)
    assert counts.shape == (n_agents, 10)
    assert ((counts > 0).sum(axis=1) <= per_agent).all()
    assert (counts.sum(axis=1) >= 1).all()
    assert_disjoint(shards)
    assert np.concatenate(shards).size == y.size  # everything is dealt out


def test_non_iid_is_actually_skewed(digits):
    counts = shard_label_counts(
        digits.y_train, shard(digits.y_train, 10, rng(), iid=False, classes_per_agent=2)
    )
    assert ((counts > 0).sum(axis=1) == 2).all()
    iid = shard_label_counts(digits.y_train, shard(digits.y_train, 10, rng()))
    assert ((iid > 0).sum(axis=1) == 10).all()


def test_non_iid_more_agents_than_a_class_has_samples():
    wine = load("wine")  # classes of 44, 53 and 36 training samples
    shards = shard(wine.y_train, 120, rng(), iid=False, classes_per_agent=2)
    counts = shard_label_counts(wine.y_train, shards)
    assert (counts.sum(axis=1) >= 1).all()
    assert ((counts > 0).sum(axis=1) <= 2).all()
    assert_disjoint(shards)


def test_non_iid_shard_size(digits):
    shards = shard(digits.y_train, 10, rng(), iid=False, classes_per_agent=2, shard_size=130)
    counts = shard_label_counts(digits.y_train, shards)
    assert counts.sum(axis=1).tolist() == [130] * 10
    assert ((counts > 0).sum(axis=1) <= 2).all()
    assert all(np.unique(s).size == s.size for s in shards)


@pytest.mark.parametrize("iid", [True, False])
def test_shard_is_deterministic(digits, iid):
    a = shard(digits.y_train, 13, rng(5), iid=iid)
    b = shard(digits.y_train, 13, rng(5), iid=iid)
    c = shard(digits.y_train, 13, rng(6), iid=iid)
    assert all(np.array_equal(x, z) for x, z in zip(a, b, strict=True))
    assert not all(np.array_equal(x, z) for x, z in zip(a, c, strict=True))


@pytest.mark.parametrize(
    ("args", "kwargs", "msg"),
    [
        ((0,), {}, "n_agents must be >= 1, got 0"),
        ((1348,), {}, "1348 agents need at least 1348 samples; digits has 1347 for training"),
        (
            (10,),
            {"shard_size": 500},
            "shard_size 500 x 10 agents needs 5000 samples; digits has 1347 for training",
        ),
        ((10,), {"shard_size": -1}, "shard_size must be >= 0 (0 = split evenly), got -1"),
        (
            (10,),
            {"iid": False, "classes_per_agent": 0},
            "classes_per_agent must be between 1 and 10 (the classes in digits), got 0",
        ),
        (
            (10,),
            {"iid": False, "classes_per_agent": 11},
            "classes_per_agent must be between 1 and 10 (the classes in digits), got 11",
        ),
    ],
)
def test_shard_errors(digits, args, kwargs, msg):
    with pytest.raises(ValueError, match=re.escape(msg)) as info:
        shard(digits.y_train, *args, rng(), dataset="digits", **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("iid", [True, False])
def test_overlapping_shards_let_a_fleet_outgrow_its_data(digits, iid):
    """3,000 agents of 8 samples on 1,347: each shard is 8 distinct samples of its own,
    drawn from the seed; non-IID shards keep to classes_per_agent classes."""
    shards = shard(digits.y_train, 3000, rng(3), iid=iid, shard_size=8, overlap=True)
    again = shard(digits.y_train, 3000, rng(3), iid=iid, shard_size=8, overlap=True)
    assert len(shards) == 3000
    assert all(np.array_equal(a, b) for a, b in zip(shards, again, strict=True))
    assert all(s.size == 8 and np.unique(s).size == 8 for s in shards)
    assert all(s.min() >= 0 and s.max() < digits.y_train.size for s in shards)
    used = np.unique(np.concatenate(shards))
    assert used.size > 0.95 * digits.y_train.size  # the fleet sees nearly all the data
    counts = shard_label_counts(digits.y_train, shards)
    if iid:
        assert (counts > 0).sum(axis=1).mean() > 4  # a random sample of 8 spans many digits
    else:
        assert ((counts > 0).sum(axis=1) <= 2).all()


@pytest.mark.parametrize(
    ("kwargs", "msg"),
    [
        ({}, "overlapping shards need a shard_size"),
        ({"shard_size": 2000}, "shard_size 2000 is larger than the data; digits has 1347"),
        ({"shard_size": 400, "iid": False, "classes_per_agent": 1}, "is larger than the"),
        ({"shard_size": 4, "iid": False, "classes_per_agent": 0}, "between 1 and 10, got 0"),
    ],
)
def test_overlapping_shard_errors(digits, kwargs, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        shard(digits.y_train, 5, rng(), dataset="digits", overlap=True, **kwargs)


def test_shard_error_without_dataset_name():
    with pytest.raises(ValueError, match=re.escape("needs 6 samples; there are 5")):
        shard(np.arange(5), 2, rng(), shard_size=3)


def test_shard_wants_a_generator():
    with pytest.raises(TypeError, match="numpy Generator"):
        shard(np.arange(5), 2, 0)


def test_shard_label_counts():
    y = np.array([0, 0, 1, 2, 2, 2])
    counts = shard_label_counts(y, [np.array([0, 3]), np.array([1, 2, 4, 5])])
    assert counts.tolist() == [[1, 0, 1], [1, 1, 2]]
    wide = shard_label_counts(y, [np.array([2])], classes=np.arange(4))
    assert wide.tolist() == [[0, 1, 0, 0]]
    with pytest.raises(ValueError, match="outside"):
        shard_label_counts(y, [np.array([3])], classes=np.array([0, 1]))


@given(labels=st.lists(st.integers(0, 5), min_size=1, max_size=80), data=st.data())
def test_non_iid_invariants(labels, data):
    y = np.array(labels)
    n_classes = np.unique(y).size
    n_agents = data.draw(st.integers(1, y.size), label="n_agents")
    per_agent = data.draw(st.integers(1, n_classes), label="classes_per_agent")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    shards = shard(y, n_agents, rng(seed), iid=False, classes_per_agent=per_agent)
    counts = shard_label_counts(y, shards)
    assert (counts.sum(axis=1) >= 1).all()
    assert ((counts > 0).sum(axis=1) <= per_agent).all()
    assert_disjoint(shards)
    if n_agents * per_agent >= n_classes:
        assert np.concatenate(shards).size == y.size
