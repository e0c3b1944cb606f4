"""Tensor values from case files, and rounding to each dtype.

A value is a nested list, a scalar, or a generator mapping (see ``Generator`` in ``spec``).
Everything is produced as float64 numpy first, then rounded to the cell's dtype with
``round_to``: the rounded numbers are what every framework *and* the oracle receive.

Standard library and numpy only: backends and workers import this module too.
"""

from __future__ import annotations

import numpy as np

FLOAT_DTYPES = ("float64", "float32", "float16", "bfloat16")

#: numpy dtype used to *carry* each float dtype between processes (numpy has no bfloat16:
#: bfloat16 values travel as float32 numbers that are exactly representable in bfloat16).
CARRIER = {"float64": np.float64, "float32": np.float32, "float16": np.float16, "bfloat16": np.float32}


def _round_bfloat16(x: np.ndarray) -> np.ndarray:
    """Round float64 values to the nearest bfloat16 (round half to even), returned as float32.

    bfloat16 is the top 16 bits of an IEEE float32. Rounding float64 -> float32 -> bfloat16 is a
    double rounding; it can differ from direct rounding only on exact float32 ties, which the
    frameworks' own float32 -> bfloat16 casts share, so this matches what they compute.
    """
    f32 = np.asarray(x, dtype=np.float64).astype(np.float32)
    bits = f32.view(np.uint32).astype(np.uint64)
    # uint64 constants: numpy 1 treats a 0-d array as a scalar, and uint64 with a Python int
    # promotes to float64, which has no shifts
    u16, one = np.uint64(16), np.uint64(1)
    lsb = (bits >> u16) & one
    rounded = ((bits + np.uint64(0x7FFF) + lsb) >> u16) << u16
    nan = np.isnan(f32)
    out = (rounded & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.float32)
    return np.where(nan, np.float32(np.nan), out)


def round_to(x, dtype: str) -> np.ndarray:
    """Return ``x`` rounded to ``dtype``'s precision and range, as a float64 array.

    float16 overflow gives +-inf, as a cast in any framework does.
    """
    a = np.asarray(x, dtype=np.float64)
    if dtype == "float64":
        return a.copy()
    if dtype == "bfloat16":
        return _round_bfloat16(a).astype(np.float64)
    with np.errstate(over="ignore"):
        return a.astype(CARRIER[dtype]).astype(np.float64)


def to_carrier(x, dtype: str) -> np.ndarray:
    """The array a worker receives for a ``dtype`` cell (values already rounded)."""
    return round_to(x, dtype).astype(CARRIER[dtype])


def finfo(dtype: str) -> dict:
    """eps / max / smallest normal of a float dtype (bfloat16 included)."""
    if dtype == "bfloat16":
        return {"eps": 2.0**-7, "max": float(np.float32(3.3895313892515355e38)), "tiny": 2.0**-126}
    fi = np.finfo(CARRIER[dtype])
    return {"eps": float(fi.eps), "max": float(fi.max), "tiny": float(fi.tiny)}


def generate(spec: dict, shape_hint=None) -> np.ndarray:
    """Materialise a generator mapping into a float64 (or int64) array.

    ``{random: normal, shape, seed, mean=0, std=1}``, ``{random: uniform, shape, seed, low=-1,
    high=1}``, ``{random: randint, shape, seed, low, high}`` (int64, high exclusive),
    ``{fill: v, shape}``, ``{arange: [start, stop], shape}``; each may add ``scale: s`` and
    ``put: [[i, j, ..., value], ...]``: after scaling, element ``[i, j, ...]`` is set to
    ``value`` (NaN/inf placed exactly, unscaled; ``[[value]]`` for a 0-d tensor). A ``dtype``
    key is not used here (the runner rounds to it, ``param_dtype``).
    ``shape_hint`` stands in for a missing ``shape`` (a layer knows its weight's shape).
    Keys have been validated by ``spec``; this function trusts them.
    """
    shape = tuple(spec.get("shape") or shape_hint or ())
    if "random" in spec:
        rng = np.random.default_rng(spec.get("seed", 0))
        kind = spec["random"]
        if kind == "normal":
            a = rng.normal(spec.get("mean", 0.0), spec.get("std", 1.0), size=shape)
        elif kind == "uniform":
            a = rng.uniform(spec.get("low", -1.0), spec.get("high", 1.0), size=shape)
        elif kind == "randint":
            return rng.integers(int(spec["low"]), int(spec["high"]), size=shape, dtype=np.int64)
        else:  # pragma: no cover - spec validation rejects it first
            raise ValueError(f"unknown random kind {kind!r}")
    elif "fill" in spec:
        a = np.full(shape, float(spec["fill"]), dtype=np.float64)
    elif "arange" in spec:
        start, stop = spec["arange"]
        a = np.arange(start, stop, dtype=np.float64)
        if shape:
            a = a.reshape(shape)
    else:  # pragma: no cover
        raise ValueError(f"not a generator: {sorted(spec)}")
    a = np.array(a * float(spec.get("scale", 1.0)), dtype=np.float64)  # an array even when 0-d
    for entry in spec.get("put") or ():
        *index, value = entry
        if len(index) != a.ndim:
            raise ValueError(f"put {entry!r}: {len(index)} indices for a tensor of shape {list(a.shape)}")
        a[tuple(int(i) for i in index)] = float(value)  # IndexError when out of range
    return a


def param_dtype(value, cell_dtype: str) -> str:
    """The dtype of one injected gradient: its generator's ``dtype:`` if it sets one, else the
    cell's (parameters of mixed dtypes)."""
    return (value.get("dtype") if isinstance(value, dict) else None) or cell_dtype


def shape_of(value) -> tuple:
    """The shape of a case-file tensor value without generating it (a generator's ``shape``,
    an ``arange``'s length when it has none, a nested list's nesting)."""
    if isinstance(value, dict):  # as ``generate`` reads it: an arange without shape is 1-d
        if "arange" in value and not value.get("shape"):
            start, stop = value["arange"]
            return (len(np.arange(start, stop)),)
        return tuple(value.get("shape") or ())
    return np.shape(value)


def materialize(value, shape_hint=None, integer: bool = False) -> np.ndarray:
    """A case-file tensor value (list, scalar or generator mapping) as a numpy array.

    Floats come back as float64 (YAML ``.nan``/``.inf`` included); ``integer=True`` gives int64
    (class indices, embedding indices).
    """
    if isinstance(value, dict):
        a = generate(value, shape_hint)
    else:
        a = np.asarray(value, dtype=np.float64)
    if integer:
        return np.asarray(a).astype(np.int64)
    return np.asarray(a, dtype=np.float64)


# --- tensor-valued arguments ----------------------------------------------------------------
# A case may give an argument that the API takes as a Tensor (a bound, a clip norm) as
# ``{tensor: 0.4}``, ``{tensor: [2.0]}`` (shape [1]) or ``{tensor: 0.4, dtype: float64}``: one
# number, in a tensor of that dtype (the cell's dtype when none is given).

def is_tensor_arg(v) -> bool:
    return isinstance(v, dict) and "tensor" in v


def tensor_arg_problem(v) -> "str | None":
    """Why ``v`` is not a tensor argument the suite can pass (None when it is)."""
    extra = sorted(set(v) - {"tensor", "dtype"})
    if extra:
        return f"a tensor argument takes `tensor:` and `dtype:` only, not {extra}"
    if v.get("dtype") is not None and v["dtype"] not in FLOAT_DTYPES:
        return f"dtype {v['dtype']!r} is not one of {', '.join(FLOAT_DTYPES)}"
    value = v["tensor"]
    flat = np.asarray(value, dtype=object).reshape(-1) if isinstance(value, list) else [value]
    if len(flat) != 1 or isinstance(flat[0], (bool, list)) or not isinstance(flat[0], (int, float)):
        return f"`tensor:` holds one number (0-d, or a list of one: [2.0]), not {value!r}"
    return None


def tensor_arg_number(v, default_dtype: str) -> float:
    """The number a tensor argument holds, rounded to its dtype (``default_dtype`` when it gives
    none): what the framework reads from the tensor."""
    dtype = v.get("dtype") or default_dtype
    return float(round_to(np.asarray(v["tensor"], dtype=np.float64).reshape(-1)[0], dtype))


def with_tensor_dtypes(args: dict, default_dtype: str) -> dict:
    """``args`` with every tensor argument's dtype stated (the cell's where the case gave none)."""
    return {k: {"tensor": v["tensor"], "dtype": v.get("dtype") or default_dtype} if is_tensor_arg(v) else v
            for k, v in args.items()}


def plain_args(args: dict, default_dtype: "str | None" = None) -> dict:
    """``args`` with each tensor argument replaced by its number (rounded to its dtype, or to
    ``default_dtype``; unrounded when neither is known): for an API that takes numbers there."""
    out = {}
    for k, v in args.items():
        if is_tensor_arg(v):
            dtype = v.get("dtype") or default_dtype
            v = tensor_arg_number(v, dtype) if dtype else float(np.asarray(v["tensor"]).reshape(-1)[0])
        out[k] = v
    return out
