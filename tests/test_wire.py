"""Tests for swarm.wire: exact round-trips, and a decoder that only ever says MalformedMessage."""

from __future__ import annotations

import json
import math
import pickle
import struct
import tracemalloc
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from swarm import wire
from swarm.wire import (
    MAX_MESSAGE_BYTES,
    VERSION,
    Envelope,
    MalformedMessage,
    WireError,
    decode,
    encode,
    envelope_to_dict,
    register_kind,
    to_jsonable,
)

# --------------------------------------------------------------------------- helpers


def same(a: Any, b: Any) -> bool:
    """Exact equality: same types, floats bit for bit (NaN payloads, -0.0), arrays by
    dtype (byte order included), shape and raw bytes."""
    if isinstance(a, np.ndarray):
        return (
            type(b) is np.ndarray
            and a.dtype == b.dtype
            and a.dtype.str == b.dtype.str
            and a.shape == b.shape
            and a.tobytes() == b.tobytes()
        )
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def arrays_in(body: Any) -> list[np.ndarray]:
    if isinstance(body, np.ndarray):
        return [body]
    if isinstance(body, list):
        return [arr for item in body for arr in arrays_in(item)]
    if isinstance(body, dict):
        return [arr for item in body.values() for arr in arrays_in(item)]
    return []


def raw(*items: Any) -> bytes:
    """Hand-built wire bytes, bypassing encode()'s checks."""
    return msgpack.packb(list(items), use_bin_type=True)


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def array_ext(code: int, shape: tuple[int, ...], data: bytes, ndim: int | None = None) -> bytes:
    """A hand-built array of dtype `code` (an index into wire.DTYPES)."""
    ndim = len(shape) if ndim is None else ndim
    payload = bytes([code, ndim]) + b"".join(varint(d) for d in shape)
    return raw(VERSION, 1, "a", 0, 0, 0, [msgpack.ExtType(wire.NDARRAY_EXT, payload + data)])


def dtype_code(name: str) -> int:
    return wire.DTYPES.index(np.dtype(name))


def reason_of(data: Any, **kwargs: Any) -> str:
    with pytest.raises(MalformedMessage) as info:
        decode(data, **kwargs)
    assert info.value.reason in wire.REASONS
    return info.value.reason


GOOD = Envelope("metrics", "agent-7", 42, 1.25, 3, [[12345678901, 2, b"x" * 64]])

# --------------------------------------------------------------------------- strategies

wire_dtypes = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="?"),
    hnp.unsigned_integer_dtypes(endianness="?"),
    hnp.floating_dtypes(endianness="?"),
    hnp.complex_number_dtypes(endianness="?"),
)
wire_arrays = hnp.arrays(
    dtype=wire_dtypes,
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.binary(max_size=12),
)
bodies = st.recursive(
    scalars | wire_arrays,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=10,
)
envelopes = st.builds(
    Envelope,
    kind=st.sampled_from(["metrics", "event", "control", "test-plugin-kind"]),
    src=st.text(min_size=1, max_size=wire.MAX_SRC_CHARS)
    | st.integers(min_value=0, max_value=wire.MAX_SRC_INDEX),
    seq=st.integers(min_value=0, max_value=2**64 - 1),
    time=st.floats(min_value=0.0, max_value=wire.MAX_TIME, exclude_max=True)
    | st.integers(min_value=0, max_value=10**9),
    hops=st.integers(min_value=0, max_value=wire.MAX_HOPS),
    body=bodies,
)

# --------------------------------------------------------------------------- round trips


register_kind("test-plugin-kind")  # a kind without a code: it travels by name


@given(envelopes)
def test_round_trip_is_exact(env: Envelope) -> None:
    out = decode(encode(env))
    assert type(out) is Envelope
    assert (out.kind, out.src, out.seq, out.hops) == (env.kind, env.src, env.seq, env.hops)
    # Time travels in whole microseconds.
    assert type(out.time) is float and out.time == round(env.time * 1_000_000) / 1_000_000
    assert same(env.body, out.body)
    for arr in arrays_in(out.body):
        assert arr.flags.writeable and arr.flags.owndata and arr.flags.c_contiguous


def test_round_trip_small_envelope() -> None:
    assert decode(encode(GOOD)) == GOOD
    assert decode(bytearray(encode(GOOD))) == GOOD
    assert decode(memoryview(encode(GOOD))) == GOOD


def test_float_nan_payloads_survive() -> None:
    quiet_payload = struct.unpack("<d", b"\x01\x00\x00\x00\x00\x00\xf8\x7f")[0]
    neg_nan = struct.unpack("<d", b"\x00\x00\x00\x00\x00\x00\xf8\xff")[0]
    arr = np.array([0x7FF0000000000001, 0xFFF8000000000123], dtype="<u8").view("<f8")
    body = [quiet_payload, neg_nan, -0.0, math.inf, arr, arr.astype(">f8")]
    assert same(body, decode(encode(GOOD._replace(body=body))).body)


@pytest.mark.parametrize(
    "arr",
    [
        np.array(2.5, ">f8"),  # 0-d
        np.zeros((0,), "<f8"),
        np.zeros((3, 0, 2), ">i4"),
        np.zeros((1,) * 31 + (2,), "|u1"),  # 32 dims, the maximum
        np.arange(24, dtype="<i8").reshape(4, 6)[:, ::2],  # non-contiguous view
        np.asfortranarray(np.arange(6, dtype=">f4").reshape(2, 3)),
        np.array([True, False]),
        np.array([1 + 2j, np.nan - 1j], dtype=">c16"),
        np.array([1.0, -2.0], dtype=">f2"),
    ],
    ids=["0d", "empty", "empty-3d", "32d", "strided", "fortran", "bool", "complex-be", "f2-be"],
)
def test_array_edge_cases(arr: np.ndarray) -> None:
    out = decode(encode(GOOD._replace(body={"a": arr}))).body["a"]
    assert same(np.array(arr, order="C"), out)
    assert out.flags.writeable and out.flags.owndata
    out[...] = 0  # writable for real


def test_numpy_scalars_become_python_scalars() -> None:
    body = [np.float32(1.5), np.int64(-7), np.uint64(2**64 - 1), np.bool_(True), np.float64(3)]
    out = decode(encode(GOOD._replace(body=body))).body
    assert same(out, [1.5, -7, 2**64 - 1, True, 3.0])


def test_numpy_header_fields_are_accepted() -> None:
    env = Envelope("event", "n1", np.uint32(5), np.float32(0.5), np.int16(2), None)
    assert decode(encode(env)) == Envelope("event", "n1", 5, 0.5, 2, None)
    env = Envelope("event", np.int64(7), 5, 1, 2, None)
    assert decode(encode(env)) == Envelope("event", 7, 5, 1.0, 2, None)


def test_register_kind_is_idempotent() -> None:
    name = register_kind("test-wire-kind")
    assert register_kind("test-wire-kind") == name == "test-wire-kind"
    env = GOOD._replace(kind=name)
    assert decode(encode(env)) == env
    with pytest.raises(TypeError):
        register_kind("")


def test_a_kind_code_is_one_byte_and_decodes_to_the_name() -> None:
    name = register_kind("test-coded-kind", 120)
    assert register_kind(name, 120) == register_kind(name) == name  # the same again: fine
    payload = encode(GOOD._replace(kind=name))
    assert payload[2] == 120  # a positive fixint: the whole kind costs one byte
    assert decode(payload).kind == name
    assert wire.kind_codes()[name] == 120


@pytest.mark.parametrize(
    ("name", "code", "match"),
    [
        ("test-clash-kind", 1, "code 1 of 'test-clash-kind' is taken by 'metrics'"),
        ("metrics", 99, "'metrics' is registered with code 1, not code 99"),
        ("test-plugin-kind", 121, "'test-plugin-kind' is registered with no code"),
        ("test-bad-code", 0, "not an int in 1..65535"),
        ("test-bad-code", 65536, "not an int in 1..65535"),
        ("test-bad-code", True, "not an int in 1..65535"),
        ("test-bad-code", "7", "not an int in 1..65535"),
    ],
)
def test_kind_codes_never_clash(name: str, code: object, match: str) -> None:
    with pytest.raises(WireError, match=match):
        register_kind(name, code)  # type: ignore[arg-type]
    assert "test-bad-code" not in wire.KNOWN_KINDS and "test-clash-kind" not in wire.KNOWN_KINDS


def test_every_built_in_kind_has_the_code_docs_wire_md_gives_it() -> None:
    """The registry in docs/wire.md is the one place codes are handed out: each table row
    of "Kinds and their bodies" names a kind and its code, and the code agrees."""
    import re
    from pathlib import Path

    from swarm import seal, workloads
    from swarm.protocols.detection import swim

    workloads.kinds()  # registers every workload's kinds with their codes
    assert seal.SEALED == "sealed"
    assert swim.CODES["ping"] == 60
    doc = (Path(__file__).parents[1] / "docs" / "wire.md").read_text()
    table = re.search(r"## Kinds and their bodies\n(.*?)\n## ", doc, re.S)
    assert table is not None
    rows = re.findall(r"^\| `([a-z-]+)` \| (\d+) \|", table.group(1), re.M)
    documented = {kind: int(code) for kind, code in rows}
    built_in = {k: c for k, c in wire.kind_codes().items() if not k.startswith("test-")}
    assert documented == built_in


# --------------------------------------------------------------------------- hostile input


@given(st.binary(max_size=300))
def test_garbage_never_escapes(data: bytes) -> None:
    try:
        assert type(decode(data)) is Envelope
    except MalformedMessage as exc:
        assert exc.reason in wire.REASONS


@given(envelopes, st.data())
def test_mutated_encodings_never_escape(env: Envelope, data: st.DataObject) -> None:
    buf = bytearray(encode(env))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        op = data.draw(st.sampled_from(["set", "insert", "delete"]))
        if op == "set":
            buf[pos] = data.draw(st.integers(0, 255))
        elif op == "insert":
            buf.insert(pos, data.draw(st.integers(0, 255)))
        elif len(buf) > 1:
            del buf[pos]
    try:
        decode(bytes(buf))
    except MalformedMessage as exc:
        assert exc.reason in wire.REASONS


@given(envelopes)
def test_every_strict_prefix_is_not_msgpack(env: Envelope) -> None:
    data = encode(env)
    for end in range(len(data)):
        assert reason_of(data[:end]) == "not-msgpack"


def test_trailing_bytes_rejected() -> None:
    assert reason_of(encode(GOOD) + b"\xc0") == "not-msgpack"


def test_not_bytes_rejected() -> None:
    assert reason_of("not bytes") in {"not-msgpack", "field"}
    assert reason_of(None) in {"not-msgpack", "field"}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (raw(1, "metrics", "a", 0, 0.0, 0, None), "version"),  # the version before
        (raw(3, 1, "a", 0, 0, 0, None), "version"),
        (raw(True, 1, "a", 0, 0, 0, None), "version"),
        (raw("2", 1, "a", 0, 0, 0, None), "version"),
        (raw(VERSION, "no-such-kind", "a", 0, 0, 0, None), "kind"),
        (raw(VERSION, 999, "a", 0, 0, 0, None), "kind"),
        (raw(VERSION, 6, "a", 0, 0, 0, None), "kind"),  # a gap in the code table
        (raw(VERSION, -1, "a", 0, 0, 0, None), "kind"),
        (raw(VERSION, ["metrics"], "a", 0, 0, 0, None), "kind"),
        (raw(VERSION, 1, "a", True, 0, 0, None), "field"),
        (raw(VERSION, 1, "a", -1, 0, 0, None), "field"),
        (raw(VERSION, 1, "a", 1.0, 0, 0, None), "field"),
        (raw(VERSION, 1, "a", 0, 0, -1, None), "field"),
        (raw(VERSION, 1, "a", 0, 0, 65536, None), "field"),
        (raw(VERSION, 1, "a", 0, 0, False, None), "field"),
        (raw(VERSION, 1, "a", 0, 0.5, 0, None), "field"),  # time: whole microseconds
        (raw(VERSION, 1, "a", 0, math.nan, 0, None), "field"),
        (raw(VERSION, 1, "a", 0, -1, 0, None), "field"),
        (raw(VERSION, 1, "a", 0, True, 0, None), "field"),
        (raw(VERSION, 1, "", 0, 0, 0, None), "field"),
        (raw(VERSION, 1, "a" * 257, 0, 0, 0, None), "field"),
        (raw(VERSION, 1, b"a", 0, 0, 0, None), "field"),
        (raw(VERSION, 1, -1, 0, 0, 0, None), "field"),
        (raw(VERSION, 1, 2**32, 0, 0, 0, None), "field"),
        (raw(VERSION, 1, 1.5, 0, 0, 0, None), "field"),
        (raw(VERSION, 1, True, 0, 0, 0, None), "field"),
        (raw(VERSION, 1, "a", 0, 0, 0), "shape"),
        (raw(VERSION, 1, "a", 0, 0, 0, None, None), "shape"),
        (msgpack.packb({"version": 2, "kind": 1}), "shape"),
        (msgpack.packb(7), "shape"),
        (raw(VERSION, 1, "a", 0, 0, 0, msgpack.ExtType(5, b"x")), "not-msgpack"),
        (raw(VERSION, 1, "a", 0, 0, 0, {1: 2}), "not-msgpack"),
        (b"\x97\x02\x01\xa1\xff\x00\x00\x00\xc0", "not-msgpack"),  # invalid utf-8
        (b"", "not-msgpack"),
    ],
)
def test_crafted_rejections(data: bytes, reason: str) -> None:
    assert reason_of(data) == reason


def test_accepted_extremes() -> None:
    env = decode(raw(VERSION, "control", "s" * 256, 2**64 - 1, 0, 65535, None))
    assert env == Envelope("control", "s" * 256, 2**64 - 1, 0.0, 65535, None)
    env = decode(raw(VERSION, 3, 2**32 - 1, 0, 2**64 - 1, 0, None))
    assert env == Envelope("control", 2**32 - 1, 0, (2**64 - 1) / 1e6, 0, None)


def test_oversize_checked_before_unpacking() -> None:
    data = encode(GOOD)
    assert decode(data, max_bytes=len(data)) == GOOD
    assert reason_of(data, max_bytes=len(data) - 1) == "oversize"
    assert reason_of(b"\xc1" * (MAX_MESSAGE_BYTES + 1)) == "oversize"  # would be garbage
    assert reason_of(memoryview(b"\x00" * 10), max_bytes=9) == "oversize"


_F8 = np.array([1.0, 2.0]).tobytes()
F8 = dtype_code("<f8")


@pytest.mark.parametrize(
    "data",
    [
        array_ext(len(wire.DTYPES), (2,), _F8),  # a dtype code past the table
        array_ext(255, (2,), _F8),
        array_ext(F8, (3,), _F8),  # shape wants 24 bytes, 16 given
        array_ext(F8, (1,), _F8),  # 8 bytes too many
        array_ext(F8, (0, 5), _F8),  # empty shape with data
        array_ext(F8, (2,), b"", ndim=3),  # shape truncated
        array_ext(dtype_code("|u1"), (1,) * 33, b"\x01"),  # too many dims
        array_ext(F8, (2**32 - 1, 2**32 - 1), b""),  # size overflow
        array_ext(F8, (2**35,), b""),  # a dimension past 2**32
        raw(VERSION, 1, "a", 0, 0, 0, msgpack.ExtType(wire.NDARRAY_EXT, b"")),
        raw(VERSION, 1, "a", 0, 0, 0, msgpack.ExtType(wire.NDARRAY_EXT, bytes([F8]))),
        raw(VERSION, 1, "a", 0, 0, 0, msgpack.ExtType(wire.NDARRAY_EXT, bytes([F8, 1]))),
        raw(VERSION, 1, "a", 0, 0, 0, msgpack.ExtType(wire.NDARRAY_EXT, b"\x0b\x01" + b"\xff" * 9)),
    ],
)
def test_bad_array_payloads(data: bytes) -> None:
    assert reason_of(data) == "ndarray"


def test_an_array_of_the_old_format_is_a_version_drop() -> None:
    old = b"\x03<f8\x01\x02\x00\x00\x00" + _F8  # wire version 1: dtype string, u32 dims
    data = raw(VERSION, 1, "a", 0, 0, 0, [msgpack.ExtType(wire.OLD_NDARRAY_EXT, old)])
    with pytest.raises(MalformedMessage, match="version 1") as info:
        decode(data)
    assert info.value.reason == "version"


def test_the_array_header_is_a_few_bytes() -> None:
    body = np.zeros(650, np.float32)
    size = len(encode(GOOD._replace(body=body))) - len(encode(GOOD._replace(body=None))) + 1
    assert size - body.nbytes == 4 + 1 + 1 + 2  # ext16 header, dtype code, ndim, varint 650
    big = np.zeros((300, 200), np.float64)
    out = decode(encode(GOOD._replace(body=big))).body
    assert same(big, out)


def test_zero_size_array_with_huge_dims() -> None:
    data = array_ext(F8, (0, 2**32 - 1, 2**32 - 1), b"")
    try:
        out = decode(data).body[0]
    except MalformedMessage as exc:
        assert exc.reason == "ndarray"
    else:
        assert out.size == 0


_HEAD = b"\x97\x02\x01\xa1a\x00\x00\x00"  # version 2, metrics, "a", seq 0, t 0, hops 0


@pytest.mark.parametrize(
    "announce",
    [
        b"\xc6\xff\xff\xff\xff",  # bin32 of 4 GiB
        b"\xdb\xff\xff\xff\xff",  # str32
        b"\xdd\xff\xff\xff\xff",  # array32 of 4G elements
        b"\xdf\xff\xff\xff\xff",  # map32
        b"\xc9\xff\xff\xff\xff\x01",  # ext32
    ],
)
def test_hostile_length_prefix_does_not_allocate(announce: bytes) -> None:
    tracemalloc.start()
    try:
        assert reason_of(_HEAD + announce + b"\x00" * 64) == "not-msgpack"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_deep_nesting_does_not_crash() -> None:
    deep = _HEAD + b"\x91" * 200_000 + b"\xc0"
    assert reason_of(deep) == "not-msgpack"
    # Nesting msgpack accepts must still convert to JSON without RecursionError.
    env = decode(_HEAD + b"\x91" * 1000 + b"\xc0")
    json.dumps(envelope_to_dict(env))


def test_msgpack_timestamp_ext_is_a_plain_float() -> None:
    stamp = msgpack.packb(msgpack.Timestamp(5, 500_000_000))
    env = decode(_HEAD + stamp)
    assert env.body == 5.5 and type(env.body) is float


def test_malformed_message_is_picklable() -> None:
    exc = pickle.loads(pickle.dumps(MalformedMessage("kind", "unknown kind 'x'")))
    assert exc.reason == "kind" and "unknown kind" in str(exc)
    assert isinstance(exc, WireError) and isinstance(exc, ValueError)


# --------------------------------------------------------------------------- encode errors


@pytest.mark.parametrize(
    ("env", "match"),
    [
        (GOOD._replace(kind="no-such-kind"), "unknown message kind"),
        (GOOD._replace(kind=["metrics"]), "unknown message kind"),
        (GOOD._replace(body=np.array([object()])), "dtype"),
        (GOOD._replace(body=np.array(["s"])), "dtype"),
        (GOOD._replace(body=np.array([1], "datetime64[s]")), "dtype"),
        # Its width and format differ between machines, so it would not round-trip.
        (GOOD._replace(body=np.array([1.0], np.longdouble)), "dtype"),
        (GOOD._replace(body=np.zeros((1,) * 33)), "dimensions"),
        (GOOD._replace(body=np.ma.masked_array([1.0], mask=[True])), "masked"),
        (GOOD._replace(body=[object()]), "unencodable"),
        (GOOD._replace(body=2**64), "unencodable"),
        (GOOD._replace(body=np.complex128(1j)), "unencodable"),
        (GOOD._replace(seq=True), "seq"),
        (GOOD._replace(seq=-1), "seq"),
        (GOOD._replace(time=math.nan), "time"),
        (GOOD._replace(hops=70000), "hops"),
        (GOOD._replace(src=""), "src"),
    ],
)
def test_encode_errors(env: Envelope, match: str) -> None:
    with pytest.raises(WireError, match=match):
        encode(env)


def test_encode_too_large_reports_size_and_limit() -> None:
    env = GOOD._replace(body=np.zeros(MAX_MESSAGE_BYTES // 8 + 1))
    with pytest.raises(WireError, match=rf"over the {MAX_MESSAGE_BYTES}-byte limit"):
        encode(env)
    with pytest.raises(WireError, match="over the 50-byte limit"):
        encode(GOOD, max_bytes=50)


def test_packer_recovers_after_error() -> None:
    with pytest.raises(WireError):
        encode(GOOD._replace(body=[1, 2, object()]))
    assert decode(encode(GOOD)) == GOOD


# --------------------------------------------------------------------------- JSON view


@given(envelopes)
def test_envelope_to_dict_is_json(env: Envelope) -> None:
    doc = envelope_to_dict(env)
    assert set(doc) == {"version", "kind", "src", "seq", "time", "hops", "body"}
    json.dumps(doc, allow_nan=False)


def test_to_jsonable_shapes() -> None:
    body = {
        "b": b"\x00\xff",
        "f": [math.nan, math.inf, -math.inf, 1.5],
        "a": np.array([[1.0, math.nan]], dtype=">f4"),
        "c": np.array([1 + 2j]),
        "s": np.float32(0.25),
        b"k": 1,
    }
    doc = to_jsonable(body)
    json.dumps(doc, allow_nan=False)
    assert doc["b"] == {"bytes_hex": "00ff"}
    assert doc["f"] == ["nan", "inf", "-inf", 1.5]
    assert doc["a"] == {"ndarray": {"dtype": ">f4", "shape": [1, 2], "data": [[1.0, "nan"]]}}
    assert doc["c"]["ndarray"]["data"] == [[1.0, 2.0]]
    assert doc["s"] == 0.25
    assert doc["bytes_hex:6b"] == 1
    assert to_jsonable(GOOD) == envelope_to_dict(GOOD)
