"""The one msgpack envelope every swarm message travels in.

On the wire a message is the msgpack array ``[VERSION, kind, src, seq, time, hops, body]``,
lean enough that a typical header costs at most 16 bytes: ``kind`` is the small integer
code its owner declared (`register_kind`; a kind without one travels by name), ``src`` an
agent's index (other senders, such as the observer, by name), ``time`` whole microseconds.
Bodies are plain msgpack data (None, bool, int, float, str, bytes, lists, str-keyed maps)
plus numpy arrays, carried as ext type ``NDARRAY_EXT`` with a header of a few bytes
(a dtype code, the rank, varint dimensions) and raw C-order bytes, so they round-trip bit
for bit. `Envelope` always holds the kind's name and the time in seconds.

`encode` is for our own senders: a failure is a programming error (`WireError`).
`decode` faces untrusted bytes: whatever arrives, it returns an `Envelope` or raises
`MalformedMessage` with a stable ``reason`` code, never anything else.

msgpack's own timestamp ext (-1) never reaches our ext hook; `decode` turns it into a
plain float so a body only ever holds the types above. Any other ext code is rejected.

Both run on the hot path (tens of thousands of messages per second), hence the
``type(x) is int`` checks, the per-thread reused `msgpack.Packer` and the absence of
per-call option objects.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any, Final, NamedTuple

import msgpack
import numpy as np
from msgpack import ExtType, Timestamp

__all__ = [
    "FLEET_CODES",
    "FLEET_KINDS",
    "KNOWN_KINDS",
    "MAX_KIND_CODE",
    "MAX_MESSAGE_BYTES",
    "MAX_NDIM",
    "NDARRAY_EXT",
    "REASONS",
    "VERSION",
    "Envelope",
    "MalformedMessage",
    "WireError",
    "decode",
    "encode",
    "envelope_to_dict",
    "kind_codes",
    "pack",
    "register_kind",
    "to_jsonable",
]

VERSION: Final = 2
MAX_MESSAGE_BYTES: Final = 1 << 20
NDARRAY_EXT: Final = 2
OLD_NDARRAY_EXT: Final = 1  # version 1's arrays: refused with a "version" reason
MAX_NDIM: Final = 32
MAX_SRC_CHARS: Final = 256
MAX_SRC_INDEX: Final = (1 << 32) - 1
MAX_HOPS: Final = 65535
MICROS: Final = 1_000_000  # time travels in whole microseconds

_SEQ_LIMIT: Final = 1 << 64
_INF: Final = math.inf

REASONS: Final = frozenset(
    {"oversize", "not-msgpack", "shape", "version", "kind", "field", "ndarray"}
)


class WireError(ValueError):
    """A message could not be encoded or decoded."""


class MalformedMessage(WireError):
    """Untrusted bytes were rejected; ``reason`` is a short stable code from `REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        # Both parts stay in ``args`` so the exception pickles and compares cleanly.
        super().__init__(reason, message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


class Envelope(NamedTuple):
    """One message: who sent it (``src``: an agent's index, or a name; ``seq``), when
    (simulated seconds, to the microsecond), how far it travelled (``hops``) and what it
    says (``kind``, always the name, and ``body``)."""

    kind: str
    src: int | str
    seq: int
    time: float
    hops: int
    body: Any


# --------------------------------------------------------------------------- kinds

KNOWN_KINDS: set[str] = set()

# Kind codes: one byte on the wire where a name took up to 15. Each module that owns a
# kind declares its code when it registers it (workloads in their `WorkloadSpec`); the
# wire itself knows only the fleet's own codes. Codes are never reused or renumbered, and
# docs/wire.md keeps the registry of those taken. A kind registered without a code (a
# plugin's, say) travels by name.
FLEET_KINDS: Final = ("metrics", "event", "control", "bundle")
FLEET_CODES: Final = {"metrics": 1, "event": 2, "control": 3, "bundle": 4}
MAX_KIND_CODE: Final = 65535  # 1..127 take one byte; 128..65535 two or three

_on_wire: dict[str, int | str] = {}  # kind name -> what travels: its code, or the name
_names: dict[int, str] = {}  # kind code -> name, for decoding


def register_kind(name: str, code: int | None = None) -> str:
    """Declare a message kind, with its wire code when it has one; modules call this at
    import time. Registering the same name again is harmless as long as it does not ask
    for a different code: a name or code that clashes is a `WireError`."""
    if type(name) is not str or not name:
        raise TypeError(f"kind must be a non-empty str, got {name!r}")
    if code is not None and (type(code) is not int or not 1 <= code <= MAX_KIND_CODE):
        raise WireError(f"kind {name!r}: code {code!r} is not an int in 1..{MAX_KIND_CODE}")
    current = _on_wire.get(name)
    if current is not None:
        if code is not None and current != code:
            was = f"code {current}" if type(current) is int else "no code"
            raise WireError(f"kind {name!r} is registered with {was}, not code {code}")
        return name
    if code is not None:
        owner = _names.get(code)
        if owner is not None:
            raise WireError(f"kind code {code} of {name!r} is taken by {owner!r}")
        _names[code] = name
    _on_wire[name] = name if code is None else code
    KNOWN_KINDS.add(name)
    return name


def kind_codes() -> dict[str, int]:
    """The codes registered so far, by kind name (what docs/wire.md lists)."""
    return {name: code for code, name in sorted(_names.items())}


for _kind in FLEET_KINDS:
    register_kind(_kind, FLEET_CODES[_kind])


# --------------------------------------------------------------------------- ndarrays
#
# Ext payload: u8 dtype code (`DTYPES`), u8 ndim, ndim unsigned LEB128 varints (the
# shape), then the raw C-order data. Dtypes come from a fixed table, never parsed, so
# hostile dtype strings ("O", "V8", structured or subarray specs) cannot get through.


# The wire's dtypes in code order, spelled out so the codes never depend on the platform
# (numpy's "l" is 4 bytes on Windows). Long doubles are left out: their width and format
# differ between machines, so they could not round-trip bit for bit.
DTYPE_NAMES: Final = (
    "|b1", "|i1", "|u1",
    "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f2", "<f4", "<f8", "<c8", "<c16",
    ">i2", ">u2", ">i4", ">u4", ">i8", ">u8", ">f2", ">f4", ">f8", ">c8", ">c16",
)  # fmt: skip
DTYPES: Final = tuple(np.dtype(name) for name in DTYPE_NAMES)
_DTYPE_CODE: Final[dict[np.dtype[Any], bytes]] = {dt: bytes([i]) for i, dt in enumerate(DTYPES)}
_tuple_new: Final = tuple.__new__
MAX_DIM: Final = (1 << 32) - 1


def _varints(shape: tuple[int, ...]) -> bytes:
    out = bytearray()
    for dim in shape:
        if dim > MAX_DIM:
            raise TypeError(f"ndarray shape {shape} has a dimension >= 2**32")
        while dim >= 0x80:
            out.append((dim & 0x7F) | 0x80)
            dim >>= 7
        out.append(dim)
    return bytes(out)


def _array_to_ext(arr: np.ndarray) -> ExtType:
    code = _DTYPE_CODE.get(arr.dtype)
    if code is None:
        raise TypeError(f"ndarray dtype {arr.dtype} is not a numeric wire dtype")
    ndim = arr.ndim
    if ndim > MAX_NDIM:
        raise TypeError(f"ndarray has {ndim} dimensions, the wire allows {MAX_NDIM}")
    shape = arr.shape
    # One byte per dimension below 128: the common vectors of a few hundred values take 2.
    dims = bytes(shape) if all(d < 0x80 for d in shape) else _varints(shape)
    # tobytes() yields C order whatever the layout, so non-contiguous views need no
    # separate ascontiguousarray copy. tuple.__new__ skips ExtType's Python-level
    # argument checks (~0.4 us); both fields are known good here.
    data = b"".join((code, bytes((ndim,)), dims, arr.tobytes()))
    return _tuple_new(ExtType, (NDARRAY_EXT, data))


def _default(obj: Any) -> Any:
    """msgpack fallback for what it cannot pack natively: numpy arrays and scalars."""
    if isinstance(obj, np.ndarray):
        if isinstance(obj, np.ma.MaskedArray):
            raise TypeError("masked arrays are not supported (the mask would be lost)")
        return _array_to_ext(obj)
    if isinstance(obj, np.bool_ | np.integer | np.floating):
        # float64 subclasses float and never gets here; longdouble.item() stays a numpy
        # scalar, which msgpack then refuses, as it should (it would lose precision).
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__} on the wire")


def _bad_array(message: str) -> MalformedMessage:
    return MalformedMessage("ndarray", message)


def _ext_hook(code: int, data: bytes) -> np.ndarray:
    """Rebuild an array from untrusted ext bytes, checking every length before use."""
    if code != NDARRAY_EXT:
        if code == OLD_NDARRAY_EXT:
            raise MalformedMessage(
                "version", f"an array in the format of wire version 1; this is version {VERSION}"
            )
        raise MalformedMessage("not-msgpack", f"unknown ext type {code}")
    size = len(data)
    if size < 2:
        raise _bad_array("ext payload too short")
    if data[0] >= len(DTYPES):
        raise _bad_array(f"dtype code {data[0]} not allowed")
    dtype = DTYPES[data[0]]
    ndim = data[1]
    if ndim > MAX_NDIM:
        raise _bad_array(f"ndim {ndim} > {MAX_NDIM}")
    shape: list[int] = []
    offset = 2
    for _ in range(ndim):
        dim = shift = 0
        while True:
            if offset >= size:
                raise _bad_array("ext payload truncated inside shape")
            byte = data[offset]
            offset += 1
            dim |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift > 28:
                raise _bad_array("a dimension's varint runs past 2**32")
        if dim > MAX_DIM:
            raise _bad_array(f"dimension {dim} >= 2**32")
        shape.append(dim)
    count = math.prod(shape)
    if count * dtype.itemsize != size - offset:
        raise _bad_array(
            f"shape {tuple(shape)} of {dtype.str} needs {count * dtype.itemsize} bytes, "
            f"got {size - offset}"
        )
    try:
        if count == 0:
            return np.empty(shape, dtype)
        # reshape the read-only view first so the copy owns its (writable) memory.
        return np.frombuffer(data, dtype, count, offset).reshape(shape).copy()
    except (ValueError, MemoryError) as exc:
        raise _bad_array(f"cannot build array: {exc}") from None


# --------------------------------------------------------------------------- fields


def _brief(value: Any) -> str:
    """A short, safe description of an untrusted value: repr() of hostile data could be
    huge or nest past the recursion limit."""
    if value is None or type(value) in (bool, int, float):
        return repr(value)
    if type(value) in (str, bytes):
        return repr(value[:40]) + ("..." if len(value) > 40 else "")
    return f"<{type(value).__name__}>"


def _field_problem(src: Any, seq: Any, time: Any, hops: Any) -> str | None:
    """Explain the first bad header field (slow path, only reached on failure); `time`
    is in microseconds, as on the wire."""
    if type(src) is int:
        if not 0 <= src <= MAX_SRC_INDEX:
            return f"src index {src} not in [0, 2**32)"
    elif type(src) is not str:
        return f"src must be an int (an agent's index) or a str, got {type(src).__name__}"
    elif not 0 < len(src) <= MAX_SRC_CHARS:
        return f"src length {len(src)} not in [1, {MAX_SRC_CHARS}]"
    if type(seq) is not int:
        return f"seq must be int, got {type(seq).__name__}"
    if not 0 <= seq < _SEQ_LIMIT:
        return f"seq {seq} not in [0, 2**64)"
    if type(time) is not int:
        return f"time must be whole microseconds (int), got {type(time).__name__}"
    if not 0 <= time < _SEQ_LIMIT:
        return f"time {time} us not in [0, 2**64)"
    if type(hops) is not int:
        return f"hops must be int, got {type(hops).__name__}"
    if not 0 <= hops <= MAX_HOPS:
        return f"hops {hops} not in [0, {MAX_HOPS}]"
    return None


MAX_TIME: Final = 1e12  # seconds (31,700 years): far beyond any run, and exact in microseconds


def _micros(time: Any) -> int | str:
    """Seconds (int or float, finite, >= 0) as whole microseconds, or what is wrong."""
    if (type(time) is float or type(time) is int) and 0 <= time < MAX_TIME:
        return round(time * MICROS)
    return f"time must be seconds in [0, {MAX_TIME:g}), got {_brief(time)}"


def _plain_scalar(value: Any) -> Any:
    """Sender convenience: numpy/str-subclass header values become exact builtins."""
    if isinstance(value, bool | np.bool_):
        return value  # never an int here; left for _field_problem to reject
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    return value


# --------------------------------------------------------------------------- encode


class _PackerSlot(threading.local):
    """A Packer per thread: reusing one saves a buffer allocation per message, but the
    `_default` callback runs Python code, so threads must not share it."""

    def __init__(self) -> None:
        self.packer = msgpack.Packer(default=_default, use_bin_type=True, autoreset=True)


_packer_slot = _PackerSlot()


def encode(env: Envelope, max_bytes: int = MAX_MESSAGE_BYTES) -> bytes:
    """Serialise an envelope; raises `WireError` on a sender bug (unknown kind, bad
    header field, unencodable body, result over ``max_bytes``)."""
    return pack(*env, max_bytes=max_bytes)


def pack(
    kind: str,
    src: int | str,
    seq: int,
    time: float,
    hops: int,
    body: Any,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> bytes:
    """`encode` from the fields, sparing hot paths the Envelope tuple. `src` is an
    agent's index or a sender's name; `time` is in seconds (sent as microseconds)."""
    try:
        code = _on_wire.get(kind)
    except TypeError:  # unhashable
        code = None
    if code is None:
        raise WireError(f"unknown message kind {_brief(kind)} (register_kind it first)")
    micros = round(time * MICROS) if type(time) is float and 0.0 <= time < MAX_TIME else None
    # Inlined header check (a helper call costs ~0.1 us); _field_problem explains failures.
    if not (
        micros is not None
        and (
            (type(src) is int and 0 <= src <= MAX_SRC_INDEX)
            or (type(src) is str and 0 < len(src) <= MAX_SRC_CHARS)
        )
        and type(seq) is int
        and 0 <= seq < _SEQ_LIMIT
        and type(hops) is int
        and 0 <= hops <= MAX_HOPS
    ):
        src, seq, time, hops = map(_plain_scalar, (src, seq, time, hops))
        converted = _micros(time)
        if isinstance(converted, str):
            problem: str | None = converted
        else:
            micros = converted
            problem = _field_problem(src, seq, micros, hops)
        if problem is not None:
            raise WireError(f"bad envelope header for kind {kind!r}: {problem}")
    try:
        out: bytes = _packer_slot.packer.pack([VERSION, code, src, seq, micros, hops, body])
    except Exception as exc:
        raise WireError(f"unencodable body for kind {kind!r}: {exc}") from exc
    if len(out) > max_bytes:
        raise WireError(
            f"encoded {kind!r} message from {src!r} is {len(out)} bytes, "
            f"over the {max_bytes}-byte limit"
        )
    return out


# --------------------------------------------------------------------------- decode

_unpackb: Final[Callable[..., Any]] = msgpack.unpackb


def decode(data: bytes | bytearray | memoryview, max_bytes: int = MAX_MESSAGE_BYTES) -> Envelope:
    """Parse untrusted bytes into an `Envelope`; raises only `MalformedMessage`."""
    if type(data) is bytes or isinstance(data, bytes | bytearray):
        size = len(data)
    elif isinstance(data, memoryview):
        size = data.nbytes
        if size <= max_bytes:
            data = data.tobytes()  # any layout or item format -> plain bytes
    else:
        raise MalformedMessage("not-msgpack", f"expected bytes, got {type(data).__name__}")
    if size > max_bytes:
        raise MalformedMessage("oversize", f"{size} bytes > limit {max_bytes}")
    try:
        # unpackb's default max_{str,bin,array,map,ext}_len are len(data) (<= max_bytes,
        # checked above): tighter than limits from max_bytes, and free, where passing
        # the five keywords costs ~0.5 us a call. So a hostile length prefix fails before
        # allocating. Trailing bytes raise ExtraData; nesting is bounded by msgpack's
        # stack (StackError). timestamp=1: msgpack's own ext -1, which never reaches
        # ext_hook, becomes a plain float, so bodies only ever hold documented types.
        obj = _unpackb(data, ext_hook=_ext_hook, timestamp=1)
    except MalformedMessage:
        raise
    except Exception as exc:  # anything at all from unpacking means "not our msgpack"
        text = str(exc)[:120] or "unpack failed"
        raise MalformedMessage("not-msgpack", f"{type(exc).__name__}: {text}") from None
    if type(obj) is not list or len(obj) != 7:
        what = f"{len(obj)}-element array" if type(obj) is list else type(obj).__name__
        raise MalformedMessage("shape", f"expected a 7-element array, got {what}")
    version, kind, src, seq, time, hops, body = obj
    if type(version) is not int or version != VERSION:
        raise MalformedMessage(
            "version", f"unsupported version {_brief(version)}; this is version {VERSION}"
        )
    if type(kind) is int:
        name = _names.get(kind)
        if name is None:
            raise MalformedMessage("kind", f"unknown kind code {kind}")
        kind = name
    elif type(kind) is not str or kind not in KNOWN_KINDS:
        raise MalformedMessage("kind", f"unknown kind {_brief(kind)}")
    if not (
        (
            (type(src) is int and 0 <= src <= MAX_SRC_INDEX)
            or (type(src) is str and 0 < len(src) <= MAX_SRC_CHARS)
        )
        and type(seq) is int
        and 0 <= seq < _SEQ_LIMIT
        and type(time) is int
        and 0 <= time < _SEQ_LIMIT
        and type(hops) is int
        and 0 <= hops <= MAX_HOPS
    ):
        raise MalformedMessage("field", _field_problem(src, seq, time, hops) or "bad field")
    return _tuple_new(Envelope, (kind, src, seq, time / MICROS, hops, body))


# --------------------------------------------------------------------------- JSON view

_JSON_MAX_DEPTH: Final = 200  # below json.dumps' own recursion ceiling


def _json_float(value: float) -> float | str:
    if value != value:
        return "nan"
    if value in (_INF, -_INF):
        return "inf" if value > 0 else "-inf"
    return value


def to_jsonable(obj: Any, _depth: int = 0) -> Any:
    """Turn a decoded body into data `json.dumps` accepts (for ``swarm decode``).

    bytes -> {"bytes_hex": ...}; arrays -> {"ndarray": {"dtype", "shape", "data"}};
    non-finite floats -> "nan"/"inf"/"-inf"; complex -> [real, imag]; bytes map keys ->
    "bytes_hex:..."; nesting beyond a fixed depth is cut with {"truncated": ...}.
    """
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return _json_float(float(obj))
    if _depth >= _JSON_MAX_DEPTH:
        return {"truncated": f"nesting deeper than {_JSON_MAX_DEPTH}"}
    depth = _depth + 1
    if isinstance(obj, Envelope):
        return envelope_to_dict(obj)
    if isinstance(obj, list | tuple):
        return [to_jsonable(item, depth) for item in obj]
    if isinstance(obj, dict):
        return {_json_key(key): to_jsonable(value, depth) for key, value in obj.items()}
    if isinstance(obj, bytes | bytearray | memoryview):
        return {"bytes_hex": bytes(obj).hex()}
    if isinstance(obj, np.ndarray):
        return {
            "ndarray": {
                "dtype": obj.dtype.str,
                "shape": list(obj.shape),
                "data": to_jsonable(obj.tolist(), depth),
            }
        }
    if isinstance(obj, complex):
        return [_json_float(obj.real), _json_float(obj.imag)]
    if isinstance(obj, np.generic):
        item = obj.item()
        if isinstance(item, np.generic):  # longdouble/clongdouble have no exact builtin
            item = complex(item) if np.iscomplexobj(item) else float(item)
        return to_jsonable(item, depth)
    if isinstance(obj, Timestamp):
        return {"timestamp_ns": obj.to_unix_nano()}
    return {"repr": repr(obj)}


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bytes | bytearray):
        return "bytes_hex:" + bytes(key).hex()
    return repr(key)


def envelope_to_dict(env: Envelope) -> dict[str, Any]:
    """A JSON-ready dict of a whole envelope, header fields included."""
    return {
        "version": VERSION,
        "kind": env.kind,
        "src": env.src,
        "seq": env.seq,
        "time": to_jsonable(env.time),
        "hops": env.hops,
        "body": to_jsonable(env.body),
    }
