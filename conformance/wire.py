"""Length-prefixed JSON frames carrying numpy arrays: the worker protocol's encoding.

A frame is a 4-byte big-endian unsigned length followed by that many bytes of UTF-8 JSON.
numpy arrays travel as ``{"__ndarray__": [dtype_name, shape, base64_of_C_contiguous_bytes]}``
(bytes little-endian), numpy scalars as plain JSON numbers/booleans. NaN and infinities use
Python's JSON extensions (``NaN``, ``Infinity``), which both ends accept.

No pickle: a worker may run numpy 1.x while the parent runs numpy 2.x. This module imports only
the standard library and numpy, and keeps to syntax that Python 3.9 accepts, because worker
interpreters have nothing else.
"""

from __future__ import annotations

import base64
import json
import struct
import sys

import numpy as np

__all__ = ["encode", "decode", "write_frame", "read_frame", "HEADER", "MAX_FRAME"]

#: the frame header: payload length, 4-byte big-endian unsigned
HEADER = struct.Struct(">I")
#: the largest payload a frame can carry
MAX_FRAME = 2**32 - 1

_ARRAY_KEY = "__ndarray__"
# numpy's builtin fixed-size kinds: bool, signed/unsigned integers, floats, complex.
# Anything else (object, strings, void, ml_dtypes' bfloat16, datetimes) is refused.
_KINDS = frozenset("biufc")
_LITTLE = sys.byteorder == "little"


def _encode_array(a: np.ndarray) -> dict:
    dt = a.dtype
    if dt.kind not in _KINDS:
        raise TypeError(f"wire cannot encode arrays of dtype {dt!s} (kind {dt.kind!r})")
    if dt.byteorder == ">" or (dt.byteorder == "=" and not _LITTLE):
        a = a.astype(dt.newbyteorder("<"))
    data = a.tobytes(order="C")
    return {_ARRAY_KEY: [dt.name, list(a.shape), base64.b64encode(data).decode("ascii")]}


def _default(o):
    if isinstance(o, np.ndarray):
        return _encode_array(o)
    if isinstance(o, np.generic):
        # np.float32(1.0) -> 1.0, np.int64 -> int, np.bool_ -> bool
        if o.dtype.kind not in _KINDS:
            raise TypeError(f"wire cannot encode numpy scalars of dtype {o.dtype!s}")
        return o.item()
    raise TypeError(f"wire cannot encode objects of type {type(o).__name__}")


def _decode_array(spec) -> np.ndarray:
    name, shape, b64 = spec
    dtype = np.dtype(name)
    if dtype.kind not in _KINDS:
        raise ValueError(f"wire refuses arrays of dtype {name!r}")
    shape = tuple(int(s) for s in shape)
    raw = base64.b64decode(b64)
    if not raw:
        return np.zeros(shape, dtype=dtype)  # empty (or zero-size) array
    # bytearray: the result owns writable memory (torch.from_numpy warns on read-only arrays)
    a = np.frombuffer(bytearray(raw), dtype=dtype.newbyteorder("<")).reshape(shape)
    if not _LITTLE and dtype.itemsize > 1:
        a = a.astype(dtype)
    return a


def _object_hook(d: dict):
    spec = d.get(_ARRAY_KEY)
    if spec is not None and len(d) == 1:
        return _decode_array(spec)
    return d


_encoder = json.JSONEncoder(default=_default, ensure_ascii=False, allow_nan=True,
                            separators=(",", ":"))
_decoder = json.JSONDecoder(object_hook=_object_hook)


def encode(obj) -> bytes:
    """``obj`` as UTF-8 JSON bytes (no length header). TypeError for what JSON cannot hold."""
    return _encoder.encode(obj).encode("utf-8")


def decode(data) -> object:
    """The object of UTF-8 JSON ``data`` (bytes, bytearray, memoryview or str)."""
    if isinstance(data, memoryview):
        data = data.tobytes()
    if isinstance(data, (bytes, bytearray)):
        data = data.decode("utf-8")
    return _decoder.decode(data)


def frame(obj) -> bytes:
    """``obj`` encoded with its length header: the bytes of one frame."""
    payload = encode(obj)
    if len(payload) > MAX_FRAME:
        raise ValueError(f"frame of {len(payload)} bytes exceeds the 4 GiB limit")
    return HEADER.pack(len(payload)) + payload


def write_frame(fileobj, obj) -> None:
    """Write one frame to a binary file object and flush it.

    The object is fully encoded before anything is written, so an encoding error leaves the
    stream intact.
    """
    fileobj.write(frame(obj))
    fileobj.flush()


def _read_exact(fileobj, n: int, what: str) -> bytes:
    chunks = []
    got = 0
    while got < n:
        chunk = fileobj.read(n - got)
        if not chunk:
            if got == 0 and what == "header":
                raise EOFError("end of stream")
            raise EOFError(f"stream ended inside a frame {what} ({got} of {n} bytes)")
        chunks.append(chunk)
        got += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_frame(fileobj):
    """Read one frame from a binary file object and return its decoded object.

    Raises EOFError at a clean end of stream (and, with a different message, when the stream
    ends inside a frame).
    """
    (n,) = HEADER.unpack(_read_exact(fileobj, HEADER.size, "header"))
    if n == 0:
        raise ValueError("empty frame")
    return decode(_read_exact(fileobj, n, "payload"))
