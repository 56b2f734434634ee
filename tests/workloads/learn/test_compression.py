"""Tests for swarm.workloads.learn.compression: round-trip error bounds, error feedback, exact byte
factors, and a receiver that only ever says UpdateRejected."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from swarm import wire
from swarm.workloads.learn.compression import (
    MODES,
    Compressor,
    UpdateRejected,
    array_bytes,
    check_update,
    decompress,
    expected_factor,
)

SIZE = 650
FP16_EPS = 2.0**-11  # unit roundoff of float16 (10 explicit mantissa bits)
FP16_TINY = 2.0**-25  # half the smallest float16 subnormal


def vectors(size: int | st.SearchStrategy[int] = SIZE, bound: float = 1e4) -> Any:
    return hnp.arrays(
        np.float64,
        size,
        elements=st.floats(-bound, bound, allow_nan=False, allow_infinity=False),
    )


def sized_vectors(bound: float = 1e4) -> Any:
    return st.integers(1, 300).flatmap(lambda n: vectors(n, bound))


def fp16_close(decoded: np.ndarray, original: np.ndarray) -> bool:
    return bool(np.all(np.abs(decoded - original) <= np.abs(original) * FP16_EPS + FP16_TINY))


def payload_for(mode: str, size: int = SIZE, seed: int = 0) -> dict[str, Any]:
    vector = np.random.default_rng(seed).normal(size=size)
    return Compressor(mode, size).compress(vector)


# --------------------------------------------------------------------------- round trips


@given(sized_vectors())
def test_none_is_exact_to_float32(v: np.ndarray) -> None:
    out = decompress(Compressor("none", v.size).compress(v), v.size)
    assert out.dtype == np.float64 and out.shape == v.shape
    np.testing.assert_array_equal(out, v.astype(np.float32).astype(np.float64))


@given(sized_vectors())
def test_fp16_within_half_precision(v: np.ndarray) -> None:
    payload = Compressor("fp16", v.size).compress(v)
    assert payload["values"].dtype == np.float16
    assert fp16_close(decompress(payload, v.size), v)


def test_fp16_clips_instead_of_overflowing() -> None:
    v = np.array([1e6, -1e6, 65519.0, 3.0])
    out = decompress(Compressor("fp16", 4).compress(v), 4)
    np.testing.assert_array_equal(out, [65504.0, -65504.0, 65504.0, 3.0])


def test_none_clips_to_float32_range() -> None:
    out = decompress(Compressor("none", 2).compress(np.array([1e300, -1e300])), 2)
    assert np.isfinite(out).all() and out[0] == np.finfo(np.float32).max


@given(sized_vectors())
def test_int8_error_is_at_most_half_a_step(v: np.ndarray) -> None:
    payload = Compressor("int8", v.size).compress(v)
    assert payload["codes"].dtype == np.uint8
    scale = payload["scale"]
    assert isinstance(scale, float) and scale > 0
    err = np.abs(decompress(payload, v.size) - v).max()
    assert err <= scale / 2 * (1 + 1e-9) + 1e-12 * np.abs(v).max() + 1e-300


@pytest.mark.parametrize("value", [0.0, -3.5, 1e4, 5e-324])
def test_int8_constant_vector(value: float) -> None:
    v = np.full(10, value)
    payload = Compressor("int8", 10).compress(v)
    assert payload["scale"] == 1.0
    np.testing.assert_array_equal(decompress(payload, 10), v)


@given(sized_vectors(), st.floats(0.01, 1.0))
def test_topk_sends_k_largest(v: np.ndarray, ratio: float) -> None:
    comp = Compressor("topk", v.size, ratio)
    k = max(1, round(ratio * v.size))
    assert comp.k == k
    payload = comp.compress(v)
    indices = payload["indices"].astype(np.intp)
    assert indices.size == k and np.unique(indices).size == k
    assert payload["indices"].dtype == np.uint16 and payload["values"].dtype == np.float16
    out = decompress(payload, v.size)
    assert np.count_nonzero(out) <= k
    assert fp16_close(out[indices], v[indices])
    unsent = np.delete(np.abs(v), indices)
    assert unsent.size == 0 or unsent.max() <= np.abs(v[indices]).min()
    # The residual holds exactly what was not sent.
    atol = 1e-12 * max(1.0, float(np.abs(v).max()))
    np.testing.assert_allclose(comp.residual + out, v, rtol=0, atol=atol)


def test_topk_ties_go_to_the_lowest_index() -> None:
    v = np.array([1.0, -2.0, 2.0, 0.5, -2.0, 2.0])
    payload = Compressor("topk", 6, 0.5).compress(v)
    np.testing.assert_array_equal(payload["indices"], [1, 2, 4])


@given(vectors(64), st.integers(1, 12), st.sampled_from([0.05, 0.1, 0.5, 1.0]))
def test_error_feedback_loses_nothing(v: np.ndarray, rounds: int, ratio: float) -> None:
    comp = Compressor("topk", v.size, ratio)
    total = np.zeros(v.size)
    for _ in range(rounds):
        total += decompress(comp.compress(v), v.size)
    atol = 1e-9 * rounds * max(1.0, float(np.abs(v).max()))
    np.testing.assert_allclose(total + comp.residual, rounds * v, rtol=0, atol=atol)


def test_error_feedback_eventually_sends_small_entries() -> None:
    v = np.array([4.0, 1.0, 1.0, 1.0])
    comp = Compressor("topk", 4, 0.25)
    sent = np.zeros(4)
    for _ in range(20):
        sent += decompress(comp.compress(v), 4)
    assert np.all(sent[1:] > 0)


def test_compression_is_deterministic() -> None:
    v = np.random.default_rng(7).normal(size=SIZE)
    for mode in MODES:
        a, b = Compressor(mode, SIZE), Compressor(mode, SIZE)
        for _ in range(3):
            pa, pb = a.compress(v), b.compress(v)
            assert pa.keys() == pb.keys()
            for key in pa:
                np.testing.assert_array_equal(pa[key], pb[key])


# --------------------------------------------------------------------------- byte factors


@pytest.mark.parametrize(("size", "ratio"), [(650, 0.1), (650, 0.01), (1000, 0.33), (65535, 0.2)])
@pytest.mark.parametrize("mode", MODES)
def test_byte_factor_is_exact(mode: str, size: int, ratio: float) -> None:
    v = np.random.default_rng(1).normal(size=size)
    base = array_bytes(Compressor("none", size).compress(v))
    assert base == 4 * size
    got = array_bytes(Compressor(mode, size, ratio).compress(v))
    assert base / got == expected_factor(mode, size, ratio)


def test_expected_factors_for_650_values() -> None:
    assert [expected_factor(mode, 650, 0.1) for mode in MODES] == [1.0, 2.0, 4.0, 10.0]


def test_wide_topk_uses_32_bit_entries() -> None:
    size = 70_000
    v = np.random.default_rng(2).normal(size=size)
    payload = Compressor("topk", size, 0.01).compress(v)
    assert payload["indices"].dtype == np.uint32 and payload["values"].dtype == np.float32
    assert 4 * size / array_bytes(payload) == expected_factor("topk", size, 0.01) == 50.0
    out = decompress(payload, size)
    idx = payload["indices"].astype(np.intp)
    np.testing.assert_array_equal(out[idx], v[idx].astype(np.float32))


# --------------------------------------------------------------------------- wire


@pytest.mark.parametrize("mode", MODES)
def test_payloads_survive_the_wire(mode: str) -> None:
    payload = payload_for(mode, seed=3)
    raw = wire.pack("event", "agent-1", 5, 1.5, 0, payload)
    body = wire.decode(raw).body
    assert body.keys() == payload.keys()
    assert array_bytes(body) == array_bytes(payload)
    np.testing.assert_array_equal(decompress(body, SIZE), decompress(payload, SIZE))


# --------------------------------------------------------------------------- sender errors


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("gzip", 10), "mode"),
        ((None, 10), "mode"),
        (("none", 0), "size"),
        (("none", True), "size"),
        (("none", 2.0), "size"),
        (("topk", 10, 0.0), "topk_ratio"),
        (("topk", 10, 1.5), "topk_ratio"),
        (("topk", 10, float("nan")), "topk_ratio"),
    ],
)
def test_bad_compressor_arguments(args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Compressor(*args)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "vector",
    [
        np.zeros(3),
        np.zeros((2, 5)),
        np.arange(10),
        [0.0] * 10,
        np.array([np.nan] + [0.0] * 9),
        np.array([np.inf] + [0.0] * 9),
    ],
    ids=["short", "2d", "int", "list", "nan", "inf"],
)
def test_bad_sender_vectors(mode: str, vector: Any) -> None:
    with pytest.raises(ValueError) as info:
        Compressor(mode, 10).compress(vector)
    assert not isinstance(info.value, UpdateRejected)


def test_int8_refuses_a_span_beyond_float64() -> None:
    with pytest.raises(ValueError, match="span"):
        Compressor("int8", 2).compress(np.array([-1e308, 1e308]))


# --------------------------------------------------------------------------- rejections


def rejected(payload: Any, match: str, size: int = SIZE) -> None:
    with pytest.raises(UpdateRejected, match=match):
        decompress(payload, size)


def test_check_update_accepts_numeric_vectors() -> None:
    for dtype in (np.float16, np.float32, np.float64, np.int32, np.uint8, ">f8"):
        out = check_update(np.ones(4, dtype=dtype), 4)
        assert out.dtype == np.float64
        np.testing.assert_array_equal(out, np.ones(4))


def test_check_update_returns_a_copy() -> None:
    v = np.ones(4)
    out = check_update(v, 4)
    out[0] = 5.0
    assert v[0] == 1.0


@pytest.mark.parametrize(
    ("vector", "match"),
    [
        (np.ones(3), "update has 3 values, expected 650"),
        (np.full(SIZE, np.nan), "NaN or inf"),
        (np.full(SIZE, -np.inf), "NaN or inf"),
        (np.array(["a"] * SIZE), "dtype"),
        (np.array([b"a"] * SIZE), "dtype"),
        (np.array([1.0] * SIZE, dtype=object), "dtype"),
        (np.ones(SIZE, dtype=bool), "dtype"),
        (np.ones(SIZE, dtype=complex), "dtype"),
        (np.ones((SIZE, 1)), "1-D"),
        (np.float64(1.0), "ndarray"),
        (np.ma.masked_array(np.ones(SIZE)), "ndarray"),
        ([1.0] * SIZE, "ndarray"),
        (None, "ndarray"),
        ("x" * SIZE, "ndarray"),
    ],
)
def test_check_update_rejections(vector: Any, match: str) -> None:
    with pytest.raises(UpdateRejected, match=match):
        check_update(vector, SIZE)


@pytest.mark.skipif(
    np.finfo(np.longdouble).max <= np.finfo(np.float64).max,
    reason="longdouble is float64 on this platform",
)
def test_check_update_rejects_longdouble_beyond_float64() -> None:
    with pytest.raises(UpdateRejected, match="NaN or inf"):
        check_update(np.full(SIZE, np.finfo(np.longdouble).max), SIZE)


def test_not_a_mapping() -> None:
    for payload in (None, [], "none", b"", 3, np.zeros(SIZE)):
        rejected(payload, "payload is not a mapping")


def test_mode_problems() -> None:
    rejected({}, "'mode' must be a str")
    rejected({"mode": np.array([1, 2])}, "'mode' must be a str")
    rejected({"mode": "foo"}, "unknown compression 'foo'")
    rejected({"mode": b"none", "values": np.zeros(SIZE, np.float32)}, "'mode' must be a str")


@pytest.mark.parametrize("mode", MODES)
def test_missing_and_unexpected_keys(mode: str) -> None:
    payload = payload_for(mode)
    for key in set(payload) - {"mode"}:
        rejected({k: v for k, v in payload.items() if k != key}, f"has no '{key}'")
    rejected({**payload, "extra": 1}, "unexpected key 'extra'")
    rejected({**payload, 7: 1}, "unexpected key int")


@pytest.mark.parametrize("mode", MODES)
def test_wrong_arrays(mode: str) -> None:
    payload = payload_for(mode)
    key = "codes" if mode == "int8" else "values"
    good = payload[key]
    rejected({**payload, key: good.astype(np.float64)}, "must be")
    rejected({**payload, key: good.tolist()}, "must be an ndarray, got list")
    rejected({**payload, key: good.reshape(-1, 1)}, "must be 1-D")
    rejected({**payload, key: good.astype(object)}, "must be")
    rejected({**payload, key: good.astype("U3")}, "must be")
    rejected({**payload, key: good.astype(good.dtype.newbyteorder())[:3]}, "values|indices")


def test_wrong_length() -> None:
    for mode in ("none", "fp16", "int8"):
        rejected(payload_for(mode, 3), "update has 3 values, expected 650")


def test_non_finite_values() -> None:
    for dtype, mode in ((np.float32, "none"), (np.float16, "fp16")):
        for bad in (np.nan, np.inf, -np.inf):
            values = np.zeros(SIZE, dtype)
            values[7] = bad
            rejected({"mode": mode, "values": values}, "NaN or inf")
    payload = payload_for("topk")
    values = payload["values"].copy()
    values[0] = np.nan
    rejected({**payload, "values": values}, "NaN or inf")


@pytest.mark.parametrize(
    ("scale", "match"),
    [
        (float("nan"), "scale is not finite"),
        (float("inf"), "scale is not finite"),
        (10**400, "scale is not finite"),
        (0.0, "scale 0.0 is not > 0"),
        (0, "scale 0.0 is not > 0"),
        (-1.0, "not > 0"),
        (True, "must be a number"),
        ("1.0", "must be a number"),
        (None, "must be a number"),
        (np.ones(1), "must be a number"),
    ],
)
def test_int8_bad_scale(scale: Any, match: str) -> None:
    rejected({**payload_for("int8"), "scale": scale}, match)


def test_int8_bad_zero_point_and_overflow() -> None:
    payload = payload_for("int8")
    rejected({**payload, "zero_point": -(10**400)}, "zero_point is not finite")
    rejected({**payload, "zero_point": float("-inf")}, "zero_point is not finite")
    rejected({**payload, "zero_point": [0.0]}, "must be a number")
    # Finite scale and zero point whose reconstruction overflows float64.
    rejected({**payload, "scale": 1e307, "zero_point": 1e308}, "NaN or inf")
    ok = decompress({**payload, "scale": 2, "zero_point": -3}, SIZE)
    np.testing.assert_array_equal(ok, payload["codes"] * 2.0 - 3)


@given(
    codes=hnp.arrays(np.uint8, SIZE),
    scale=st.floats(min_value=1e-300, max_value=1e300),
    zero_point=st.floats(min_value=-1e300, max_value=1e300),
)
def test_int8_decoding_is_the_affine_formula_to_the_bit(
    codes: np.ndarray, scale: float, zero_point: float
) -> None:
    """Checking the code range at its ends stands for checking every value: whatever
    is accepted equals zero_point + code * scale exactly, finite; the rest is refused."""
    payload = {"mode": "int8", "codes": codes, "scale": scale, "zero_point": zero_point}
    with np.errstate(over="ignore"):
        expected = zero_point + codes.astype(np.float64) * scale
    if np.isfinite(expected).all() and np.isfinite(zero_point + 255 * scale):
        got = decompress(payload, SIZE)
        assert got.dtype == np.float64 and got.tobytes() == expected.tobytes()
    else:
        rejected(payload, "NaN or inf")


def test_topk_bad_indices() -> None:
    payload = payload_for("topk")
    indices = payload["indices"]
    out_of_range = indices.copy()
    out_of_range[-1] = 700
    rejected({**payload, "indices": out_of_range}, "topk index 700 out of range for 650 values")
    rejected({**payload, "indices": indices.astype(np.int64)}, "must be uint16, got int64")
    repeated = indices.copy()
    repeated[1] = repeated[0]
    rejected({**payload, "indices": repeated}, "repeat")
    rejected({**payload, "indices": indices[:-1]}, "65 values")
    many = np.zeros(SIZE + 1, np.uint16)
    rejected({"mode": "topk", "indices": many, "values": many.astype(np.float16)}, "entries")
    wide = Compressor("topk", 70_000, 0.001).compress(np.ones(70_000))
    rejected(wide, "must be uint16, got uint32")
    # An empty top-k is a zero update, not an error.
    empty = np.zeros(0, np.uint16)
    out = decompress({"mode": "topk", "indices": empty, "values": empty.astype(np.float16)}, 5)
    np.testing.assert_array_equal(out, np.zeros(5))


def test_byteswapped_arrays_are_accepted() -> None:
    for mode in MODES:
        payload = payload_for(mode)
        swapped = {
            k: v.astype(v.dtype.newbyteorder()) if isinstance(v, np.ndarray) else v
            for k, v in payload.items()
        }
        np.testing.assert_array_equal(decompress(swapped, SIZE), decompress(payload, SIZE))


def test_bad_size_argument_is_a_programming_error() -> None:
    with pytest.raises(ValueError) as info:
        decompress(payload_for("none"), 0)
    assert not isinstance(info.value, UpdateRejected)


# --------------------------------------------------------------------------- fuzzing

FUZZ_SIZE = 6

arrays = hnp.arrays(
    st.sampled_from([np.uint8, np.uint16, np.uint32, np.float16, np.float32])
    | hnp.scalar_dtypes()
    | hnp.byte_string_dtypes()
    | hnp.unicode_string_dtypes(),
    st.sampled_from([(FUZZ_SIZE,), (FUZZ_SIZE - 1,)])
    | hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=8),
)
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8)
    | arrays
)
garbage = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(max_size=6) | st.integers() | st.binary(max_size=4), inner, max_size=4
        )
    ),
    max_leaves=12,
)
field_names = st.sampled_from(["values", "codes", "scale", "zero_point", "indices"])
near_valid = st.builds(
    lambda mode, fields: {"mode": mode, **fields},
    st.sampled_from(MODES),
    st.dictionaries(field_names | st.text(max_size=4), leaves | garbage, max_size=5),
)


def survives(payload: Any) -> None:
    try:
        out = decompress(payload, FUZZ_SIZE)
    except UpdateRejected:
        return
    assert out.dtype == np.float64 and out.shape == (FUZZ_SIZE,)
    assert np.isfinite(out).all()


@given(garbage)
def test_garbage_is_rejected_cleanly(payload: Any) -> None:
    survives(payload)


@given(near_valid)
def test_near_valid_payloads_are_rejected_cleanly(payload: dict[str, Any]) -> None:
    survives(payload)


@given(garbage)
def test_check_update_on_garbage(vector: Any) -> None:
    try:
        out = check_update(vector, FUZZ_SIZE)
    except UpdateRejected:
        return
    assert out.dtype == np.float64 and out.shape == (FUZZ_SIZE,) and np.isfinite(out).all()


@given(st.sampled_from(MODES), st.integers(1, 40), st.data())
def test_tampered_payloads_are_rejected_cleanly(mode: str, size: int, data: Any) -> None:
    """Replace one field of a genuine payload with something arbitrary."""
    payload = Compressor(mode, size).compress(np.linspace(-1.0, 1.0, size))
    key = data.draw(st.sampled_from(sorted(payload)))
    payload[key] = data.draw(leaves | garbage)
    try:
        out = decompress(payload, size)
    except UpdateRejected:
        return
    assert out.shape == (size,) and np.isfinite(out).all()
