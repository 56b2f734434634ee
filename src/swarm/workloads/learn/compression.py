"""Compression of model updates for the wire, and the checks on updates from peers.

Updates are flat float vectors. float32 ("none") is the baseline; "fp16" halves its array
bytes, "int8" quarters them with one affine code per vector, and "topk" sends only the k
largest entries, keeping everything unsent in a per-sender residual (error feedback:
Stich et al. 2018, Karimireddy et al. 2019) so it is delayed, never lost.

Peers may be broken or hostile: `decompress` and `check_update` take any object at all and
either return a finite float64 vector of the agreed size or raise `UpdateRejected`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import numpy as np

__all__ = [
    "MODES",
    "Compressor",
    "UpdateRejected",
    "array_bytes",
    "check_update",
    "decompress",
    "expected_factor",
]

MODES: Final = ("none", "fp16", "int8", "topk")
_WIDE: Final = 65536  # from this size on, topk indices no longer fit in uint16
_LEVELS: Final = 255  # int8 codes are uint8: 256 levels, 255 steps
_KEYS: Final = {
    "none": frozenset({"mode", "values"}),
    "fp16": frozenset({"mode", "values"}),
    "int8": frozenset({"mode", "codes", "scale", "zero_point"}),
    "topk": frozenset({"mode", "indices", "values"}),
}


class UpdateRejected(ValueError):
    """An update from a peer is malformed; the one-line message says what was wrong."""


# --------------------------------------------------------------------------- helpers


def _name(value: Any) -> str:
    return type(value).__name__


def _check_size(size: Any) -> int:
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"size must be an int >= 1, got {size!r}")
    return int(size)


def _check_args(mode: Any, size: Any, topk_ratio: Any) -> int:
    """Validate constructor-style arguments (sender bugs, hence ValueError); return size."""
    if type(mode) is not str or mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    size = _check_size(size)
    ratio_ok = isinstance(topk_ratio, int | float) and not isinstance(topk_ratio, bool)
    if not (ratio_ok and 0 < topk_ratio <= 1):
        raise ValueError(f"topk_ratio must be in (0, 1], got {topk_ratio!r}")
    return size


def _topk_k(size: int, topk_ratio: float) -> int:
    return max(1, round(topk_ratio * size))


def _topk_dtypes(size: int) -> tuple[np.dtype[Any], np.dtype[Any]]:
    """(indices, values) dtypes: uint16 + float16 cost 4 bytes per kept entry, as much as
    one float32 value; past 65535 indices need uint32, so values may as well be float32."""
    if size < _WIDE:
        return np.dtype(np.uint16), np.dtype(np.float16)
    return np.dtype(np.uint32), np.dtype(np.float32)


def _narrow(x: np.ndarray, dtype: Any) -> np.ndarray:
    """Cast to a narrower float, clipping to its largest finite value instead of inf
    (an inf would only get the whole update rejected by every receiver)."""
    top = float(np.finfo(dtype).max)
    return np.clip(x, -top, top).astype(dtype)


# --------------------------------------------------------------------------- sender


class Compressor:
    """Compresses one agent's successive updates; one per sender, since top-k keeps the
    unsent remainder (``residual``) and adds it to the next update."""

    def __init__(self, mode: str, size: int, topk_ratio: float = 0.1) -> None:
        self.size = _check_args(mode, size, topk_ratio)
        self.mode = mode
        self.topk_ratio = float(topk_ratio)
        self.k = _topk_k(self.size, self.topk_ratio)
        self._residual = np.zeros(self.size)

    @property
    def residual(self) -> np.ndarray:
        """A copy of what top-k has not sent yet (always zeros for the other modes)."""
        return self._residual.copy()

    def compress(self, vector: np.ndarray) -> dict[str, Any]:
        """Encode ``vector`` as a msgpack-friendly mapping with a "mode" key.

        A malformed or non-finite vector is a bug in the sender: ValueError.
        """
        x = self._input(vector)
        if self.mode == "none":
            return {"mode": "none", "values": _narrow(x, np.float32)}
        if self.mode == "fp16":
            return {"mode": "fp16", "values": _narrow(x, np.float16)}
        if self.mode == "int8":
            return _int8(x)
        acc = x + self._residual
        # A stable sort, not argpartition: ties must go to the lowest index on every
        # numpy version, or two runs of one seed could send different entries.
        indices = np.sort(np.argsort(-np.abs(acc), kind="stable")[: self.k])
        index_dtype, value_dtype = _topk_dtypes(self.size)
        values = _narrow(acc[indices], value_dtype)
        acc[indices] -= values.astype(np.float64)  # rounding and clipping stay behind too
        self._residual = acc
        return {"mode": "topk", "indices": indices.astype(index_dtype), "values": values}

    def _input(self, vector: Any) -> np.ndarray:
        if not isinstance(vector, np.ndarray) or vector.ndim != 1 or vector.dtype.kind != "f":
            raise ValueError(f"vector must be a 1-D float ndarray, got {vector!r:.60}")
        if vector.shape[0] != self.size:
            raise ValueError(f"vector has {vector.shape[0]} values, expected {self.size}")
        if vector.dtype == np.float64:
            x = vector  # read, never written: every mode builds new arrays from it
        else:
            with np.errstate(over="ignore"):  # a huge longdouble becomes inf, refused below
                x = vector.astype(np.float64)
        if not np.isfinite(x).all():
            raise ValueError("vector holds NaN or inf")
        return x


def _int8(x: np.ndarray) -> dict[str, Any]:
    """Asymmetric affine code over [min, max]: value = zero_point + scale * code, so the
    error is at most scale / 2. A constant vector gets scale 1 and all-zero codes."""
    lo, hi = float(x.min()), float(x.max())
    span = hi - lo  # Python floats: overflow gives inf, not a warning
    if not math.isfinite(span):
        raise ValueError("int8 cannot encode values spanning more than the float64 range")
    scale = span / _LEVELS
    if scale == 0.0:  # constant (or a span too small to divide): code 0 is the value
        scale = 1.0
    levels = x - lo
    levels /= scale
    np.rint(levels, out=levels)
    # [0, 255] by construction but for rounding at the ends; clipped in place (np.clip's
    # wrapper costs more than the arithmetic on a few hundred values).
    np.maximum(levels, 0, out=levels)
    np.minimum(levels, _LEVELS, out=levels)
    codes = levels.astype(np.uint8)
    return {"mode": "int8", "codes": codes, "scale": scale, "zero_point": lo}


# --------------------------------------------------------------------------- receiver


def check_update(vector: Any, size: int) -> np.ndarray:
    """Return an uncompressed update from a peer as a fresh float64 array, or raise
    `UpdateRejected`: it must be a 1-D real numeric ndarray of ``size`` finite values."""
    size = _check_size(size)
    if type(vector) is not np.ndarray:
        raise UpdateRejected(f"update must be an ndarray, got {_name(vector)}")
    if vector.ndim != 1:
        raise UpdateRejected(f"update must be 1-D, got {vector.ndim}-D")
    if vector.dtype.kind not in "iuf":
        raise UpdateRejected(f"update dtype {vector.dtype.name} is not a real number type")
    if vector.shape[0] != size:
        raise UpdateRejected(f"update has {vector.shape[0]} values, expected {size}")
    with np.errstate(all="ignore"):
        out = vector.astype(np.float64)
    if not np.isfinite(out).all():
        raise UpdateRejected("update holds NaN or inf")
    return out


def decompress(payload: Any, size: int) -> np.ndarray:
    """Decode a peer's payload into a finite float64 vector of length ``size`` (dense,
    zeros outside the indices for top-k), or raise `UpdateRejected` saying why.

    Every message of a learning fleet comes through here, so each mode takes the fewest
    numpy passes that still check everything: float16/float32 values widen to float64
    without overflow, and int8 values lie between the ends of their code range, so
    checking those two ends stands for every value.
    """
    size = _check_size(size)
    if type(payload) is not dict and not isinstance(payload, Mapping):
        raise UpdateRejected(f"payload is not a mapping ({_name(payload)})")
    mode = payload.get("mode")
    if type(mode) is not str:
        raise UpdateRejected(f"payload 'mode' must be a str, got {_name(mode)}")
    keys = _KEYS.get(mode)
    if keys is None:
        raise UpdateRejected(f"unknown compression {mode[:40]!r}")
    if len(payload) != len(keys) or not keys.issuperset(payload):
        for key in payload:
            if key not in keys:
                shown = repr(key[:40]) if isinstance(key, str | bytes) else _name(key)
                raise UpdateRejected(f"{mode} payload has unexpected key {shown}")
    if mode == "none" or mode == "fp16":
        values = _array(payload, mode, "values", np.float32 if mode == "none" else np.float16)
        _check_length(values, size)
        dense = values.astype(np.float64)
        if not np.isfinite(dense).all():
            raise UpdateRejected("update holds NaN or inf")
        return dense
    if mode == "int8":
        codes = _array(payload, mode, "codes", np.uint8)
        scale = _number(payload, "scale")
        zero_point = _number(payload, "zero_point")
        if scale <= 0:
            raise UpdateRejected(f"int8 scale {scale!r} is not > 0")
        _check_length(codes, size)
        if not math.isfinite(zero_point + _LEVELS * scale):  # the top of the code range
            raise UpdateRejected("update holds NaN or inf")
        dense = codes * scale  # float64: a uint8 array times a float
        dense += zero_point
        return dense
    return check_update(_topk_dense(payload, size), size)


def _check_length(values: np.ndarray, size: int) -> None:
    if values.shape[0] != size:
        raise UpdateRejected(f"update has {values.shape[0]} values, expected {size}")


def _array(payload: Mapping[Any, Any], mode: str, key: str, dtype: Any) -> np.ndarray:
    """A required 1-D array field of exactly ``dtype`` (either byte order)."""
    if key not in payload:
        raise UpdateRejected(f"{mode} payload has no {key!r}")
    value = payload[key]
    want = np.dtype(dtype)
    if type(value) is not np.ndarray:
        raise UpdateRejected(f"{mode} {key} must be an ndarray, got {_name(value)}")
    if value.ndim != 1:
        raise UpdateRejected(f"{mode} {key} must be 1-D, got {value.ndim}-D")
    if value.dtype.kind != want.kind or value.dtype.itemsize != want.itemsize:
        raise UpdateRejected(f"{mode} {key} must be {want.name}, got {value.dtype.name}")
    return value


def _number(payload: Mapping[Any, Any], key: str) -> float:
    """A required finite int or float field of an int8 payload."""
    if key not in payload:
        raise UpdateRejected(f"int8 payload has no {key!r}")
    value = payload[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UpdateRejected(f"int8 {key} must be a number, got {_name(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float64
        number = math.inf
    if not math.isfinite(number):
        raise UpdateRejected(f"int8 {key} is not finite")
    return number


def _topk_dense(payload: Mapping[Any, Any], size: int) -> np.ndarray:
    index_dtype, value_dtype = _topk_dtypes(size)
    indices = _array(payload, "topk", "indices", index_dtype)
    values = _array(payload, "topk", "values", value_dtype)
    if indices.shape != values.shape:
        raise UpdateRejected(f"topk has {indices.size} indices but {values.size} values")
    if indices.size > size:
        raise UpdateRejected(f"topk sends {indices.size} entries for {size} values")
    dense = np.zeros(size)
    if indices.size:
        top = int(indices.max())
        if top >= size:
            raise UpdateRejected(f"topk index {top} out of range for {size} values")
        if np.unique(indices).size != indices.size:
            raise UpdateRejected("topk indices repeat")
        dense[indices.astype(np.intp)] = values
    return dense


# --------------------------------------------------------------------------- accounting


def array_bytes(payload: Mapping[Any, Any]) -> int:
    """Bytes of numpy array data in a payload: what compression actually shrinks."""
    return sum(value.nbytes for value in payload.values() if isinstance(value, np.ndarray))


def expected_factor(mode: str, size: int, topk_ratio: float = 0.1) -> float:
    """How many times fewer array bytes ``mode`` sends than "none": 1, 2, 4, and for
    top-k size/k below 65536 values (4 bytes per kept entry), size/(2k) from there on
    (uint32 index + float32 value, 8 bytes per kept entry)."""
    size = _check_args(mode, size, topk_ratio)
    if mode != "topk":
        return {"none": 1.0, "fp16": 2.0, "int8": 4.0}[mode]
    k = _topk_k(size, topk_ratio)
    return size / k if size < _WIDE else size / (2 * k)
