"""Float64 reference semantics of gradient clipping: one pure function per semantic.

Gradients are a list of float64 arrays; a ``None`` entry is a parameter without a gradient:
norms ignore it and it comes back as ``None``. Inputs are never modified: results are new
arrays. The defaults reproduce ``torch.nn.utils``; the keyword-only *variant knobs* reproduce
the other frameworks' documented or measured behaviour (``docs/ARCHITECTURE.md``):

* ``scope``      ``"global"``: one total norm for all tensors; ``"per_tensor"``: each tensor
  clipped by its own ``vector_norm`` (no total norm).
* ``nesting``    ``"nested"``: total norm = ``vector_norm`` of the per-tensor norms (torch);
  ``"flat"``: ``vector_norm`` of all elements concatenated. Equal for every p except 0.
* ``eps``        added to the norm in the coefficient ``max_norm / (norm + eps)``.
* ``threshold``  ``"clamp"``: ``g * min(1, coef)`` always (torch); ``"strict"``:
  ``g * coef`` only if ``norm > max_norm``; ``"non_strict"``: only if ``norm >= max_norm``;
  ``"max_div"``: ``g * max_norm / max(norm + eps, max_norm)`` (Paddle's and MindSpore's
  global-norm formula: NaN for an infinite max_norm, where ``clamp`` gives 1);
  ``"min_reciprocal"``: ``g * max_norm * min(1 / (norm + eps), 1 / max_norm)`` (TensorFlow's
  and Keras' ``clip_by_global_norm``: a negative max_norm gives 1, an infinite one NaN).
* ``accumulate`` ``"float64"``: exact norms; a dtype name (``"float32"``, ``"float16"``,
  ``"bfloat16"``): naive arithmetic in that dtype, every intermediate rounded with
  ``round_to``. (The registry's ``"input"`` is resolved to the cell's dtype by the caller.)
* ``power_sum``  ``"abs"``: p-norms of ``|x|`` (torch); ``"signed"``: ``(sum x**p) ** (1/p)``
  literally, without the absolute value, with IEEE ``pow`` (MindSpore's ``clip_by_norm``:
  ``clip_func._old_norm``), for every p except ``inf`` (``max|x|``) and 0.
* ``root``       ``"exact"``: the final root is ``** (1/p)``; ``"float32"``: ``** float32(1/p)``
  (MindSpore's ``ops.vector_norm`` rounds the exponent to float32 even for float64 input:
  a relative error of about ``|ln(sum |x|**p)| * 1e-8`` for p = 3).
* ``nonfinite``  what a NaN or +-inf total norm does: ``"propagate"`` (IEEE arithmetic
  carries on), ``"skip"`` (gradients unchanged), ``"skip_nan"`` (a NaN norm leaves the
  gradients unchanged, an infinite one is used: ``max_norm / inf = 0``, MindSpore's
  ``if clip_coef < 1`` tests), ``"raise"`` (``raises="RuntimeError"``), ``"nan"`` (global
  scope: every gradient NaN, TensorFlow's ``scale + (norm - norm)``).
* ``sum_dtype``  the dtype the power sums ``sum |x|**p`` accumulate in, naively (no scaling:
  a p-th power beyond the dtype's range overflows to inf, below it underflows to 0), the root
  taken in it and the norm then rounded to ``accumulate``. ``None``: the same as
  ``accumulate``, and for ``accumulate="float64"`` the exact scaled sum. torch: the input
  dtype for float32/float64, float32 for float16/bfloat16 (its "opmath" type).
* ``summation``  the order a power sum in a narrow dtype (``sum_dtype`` or ``accumulate``
  other than float64) is formed in: ``"exact"`` (the float64 sum rounded once: what a
  pairwise or blocked sum comes within rounding of), ``"sequential"`` (left to right, every
  partial sum rounded: Paddle's CPU ``p_norm``), ``"lanes8"`` (8 interleaved partial sums,
  then added in halves: torch's CPU float32 L2 ``vector_norm``), ``"l2_lanes8"`` (``lanes8``
  for p = 2, ``sequential`` for other p: torch's CPU kernels on one thread, a vectorised L2
  and a scalar loop for the rest). Measured at 1e3 to 4e6 elements:
  docs/matrix_evidence/accumulation.py.
* ``max_norm_dtype``  the dtype ``max_norm`` is held in before use (``None``: exact):
  MindSpore's ``clip_by_global_norm`` keeps ``clip_norm`` as a float32 tensor, so a float64
  ``clip_norm`` of 1e-311 becomes 0.
* ``divide``     ``"direct"``: ``coef = max_norm / (norm + eps)``; ``"reciprocal"``:
  ``max_norm * (1 / (norm + eps))`` with the reciprocal rounded to ``accumulate`` (torch's
  ``scalar / tensor``; in float16 a norm below 1.5e-5 has reciprocal inf); ``"product_first"``
  (``max_div`` only): ``(g * max_norm) / max(norm + eps, max_norm)``, the product rounded to
  ``accumulate`` first (TensorFlow's and Keras' ``clip_by_norm``: ``t * clip_norm`` overflows
  in float16 once it passes 65504, so [100] with clip_norm 1000 gives inf).
* ``zero_dim``   ``"keep"``; ``"one"``: 0-d gradients come back with shape ``[1]``.
* ``bound_dtype`` value clipping: the dtype the bounds are rounded to before use (``None``:
  exact; MindSpore: the input's, so 1e5 is inf in float16).
* ``max_nan``    ``"propagate"``: a NaN element makes the p = +-inf norm (``max``/``min`` of
  ``|x|``) NaN (torch); ``"compare"``: that max/min is a sequential compare-and-replace from
  the first element (``m = x[0]; m = x[i] if x[i] > m``): NaN comparisons are false, so a NaN
  in first place is the result and any later NaN is skipped (MindSpore's ``clip_by_norm``
  and ``vector_norm``, measured).

Every arithmetic step uses numpy float64 with IEEE semantics (x/0 = +-inf, 0/0 = NaN, no
Python exceptions). numpy and the standard library only.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...tensors import finfo, round_to

_THRESHOLDS = ("clamp", "strict", "non_strict", "max_div", "select", "min_reciprocal")
_NONFINITE = ("propagate", "skip", "skip_nan", "raise", "nan")


@dataclass
class OracleResult:
    """What a clipping call should leave behind.

    ``grads``: the gradients after the call (``None`` entries for parameters without one), or
    ``None`` when the call raises. ``total_norm``: the norm the API returns (``None`` if it
    returns none). ``raises``: the exception type name the API raises, or ``None``.
    """

    grads: Optional[list]
    total_norm: Optional[float]
    raises: Optional[str] = None


# --------------------------------------------------------------------------- helpers


def _round(x, accumulate: str):
    """``x`` rounded to the ``accumulate`` dtype (identity for ``"float64"``), float64 carrier."""
    return np.asarray(x, dtype=np.float64) if accumulate == "float64" else round_to(x, accumulate)


def _scalar(x, accumulate: str) -> float:
    return float(_round(np.float64(x), accumulate))


def _copy(grads: list) -> list:
    return [None if g is None else np.array(g, dtype=np.float64) for g in grads]


def _present(grads: list) -> list:
    return [np.asarray(g, dtype=np.float64) for g in grads if g is not None]


def _check(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


# --------------------------------------------------------------------------- norms

_SUMMATIONS = ("exact", "sequential", "lanes8", "l2_lanes8")
_NUMPY_DTYPES = {"float16": np.float16, "float32": np.float32, "float64": np.float64}


def _sum(terms, dtype: str, summation: str = "exact") -> np.ndarray:
    """The sum of ``terms`` (float64 values representable in ``dtype``) rounded to ``dtype``.

    ``"exact"``: the float64 sum, rounded once. ``"sequential"``: ``s = r(s + t)`` left to
    right. ``"lanes8"``: element ``i`` goes to partial sum ``i % 8`` (each sequential in
    ``dtype``) for the first ``8 * (n // 8)`` elements; the 8 partial sums are added in halves
    (``l[k] + l[k + 4]``, then ``+ 2``, then ``+ 1``), and the remaining ``n % 8`` elements
    are added to that one by one. ``r`` rounds to ``dtype`` (numpy's own float16/32/64
    arithmetic; bfloat16 has none, so only ``"exact"`` applies to it)."""
    terms = np.asarray(terms, dtype=np.float64).ravel()
    if summation == "exact" or terms.size == 0:
        return round_to(np.sum(terms), dtype)
    _check("summation", summation, _SUMMATIONS[:3])
    if dtype not in _NUMPY_DTYPES:
        raise ValueError(f"summation={summation!r} needs a numpy dtype, not {dtype}")
    t = terms.astype(_NUMPY_DTYPES[dtype])
    with np.errstate(over="ignore", invalid="ignore"):
        if summation == "sequential":
            return np.float64(np.cumsum(t, dtype=t.dtype)[-1])
        whole = t.size // 8 * 8
        lanes = np.cumsum(t[:whole].reshape(-1, 8), axis=0, dtype=t.dtype)[-1] if whole else np.zeros(8, t.dtype)
        while lanes.size > 1:
            half = lanes.size // 2
            lanes = (lanes[:half] + lanes[half:]).astype(t.dtype)
        total = lanes[0]
        for x in t[whole:]:
            total = t.dtype.type(total + x)
        return np.float64(total)



def _signed_power_norm(x, p: float, accumulate: str, exponent: str = "exact", summation: str = "exact",
                       sum_dtype: Optional[str] = None) -> float:
    """``(sum x**p) ** (1/p)`` with no absolute value (``power_sum="signed"``): IEEE ``pow``,
    so a negative sum or a negative element to a fractional power gives NaN, odd p lets signs
    cancel (p = 1 is the plain sum), and p = -inf gives 1 whenever the sum is finite
    (``s ** -0.0``). Every step rounded to ``accumulate`` (identity for ``"float64"``; the
    summation order is not emulated); with ``sum_dtype``, the powers, their sum and the root
    rounded to it instead and the result to ``accumulate`` (MindSpore's graph mode: float16
    sums formed in float32). ``exponent="float32"``: ``p`` and ``1/p`` are rounded to
    float32 first (MindSpore's ``ops.pow`` with a Python float exponent, even on float64)."""
    a = _round(np.asarray(x, dtype=np.float64).ravel(), accumulate)
    power, root = (float(np.float32(p)), float(np.float32(1.0 / p))) if exponent == "float32" else (p, 1.0 / p)
    inner = accumulate if sum_dtype is None else sum_dtype
    with np.errstate(over="ignore", divide="ignore", invalid="ignore", under="ignore"):
        s = np.sum(np.power(a, power)) if inner == "float64" else \
            _sum(_round(np.power(a, power), inner), inner, summation)
        return float(_round(_round(np.power(s, root), inner), accumulate))


def _root32_norm(x, p: float, accumulate: str, summation: str = "exact") -> float:
    """``(sum |x|**p) ** e`` with ``e = float32(1/p)`` (``root="float32"``), scaled by
    ``m = max|x|`` (``p > 0``) or ``min|x|`` (``p < 0``) as in ``vector_norm``:
    ``m ** (p * e) * (fsum (|x|/m)**p) ** e``."""
    e = float(np.float32(1.0 / p))
    a = _round(np.abs(np.asarray(x, dtype=np.float64)).ravel(), accumulate)
    if a.size == 0:
        return 0.0 if p > 0 else math.inf
    if np.isnan(a).any():
        return math.nan
    with np.errstate(over="ignore", divide="ignore", invalid="ignore", under="ignore"):
        if accumulate != "float64":
            s = _sum(_round(a**p, accumulate), accumulate, summation)
            return float(_round(s**e, accumulate))
        m = a.max() if p > 0 else a.min()
        if m == 0 or m == math.inf:
            return float(m)
        return float(m ** (p * e) * np.float64(math.fsum((a / m) ** p)) ** e)


def _naive_norm(x, p: float, accumulate: str, sum_dtype: str, root: str, summation: str = "exact") -> float:
    """``sum_dtype``: ``|x|**p`` and their sum rounded to ``sum_dtype`` (IEEE overflow and
    underflow, no scaling; the summation order is not emulated), the root ``** (1/p)`` (or
    ``** float32(1/p)`` with ``root="float32"``) taken in it, the result rounded to
    ``accumulate``. ``root="sum_float32"``: the sum is cast to float32 first and the root taken
    in float32 (MindSpore's ``clip_by_global_norm``: a float64 sum of squares of 1e40 is inf);
    ``root="sum_float32_ftz"``: the same with flush-to-zero, a sum subnormal in float32 is 0
    (MindSpore's graph mode: a float64 sum of squares of 1e-39 gives norm 0).
    ``root="l2_loss"``: each term ``|x|**p`` is halved in ``sum_dtype`` before the sum, and the root
    is taken of ``2 * sum`` (TensorFlow's ``global_norm``, ``sqrt(2 * sum(tf.nn.l2_loss(t)))``,
    whose kernel sums ``square(x) * 0.5``: a float16 square below 6e-8 halves to 0).
    Empty: 0 (p > 0) or inf (p < 0); a NaN: NaN."""
    a = _round(np.abs(np.asarray(x, dtype=np.float64)).ravel(), accumulate)
    if a.size == 0:
        return 0.0 if p > 0 else math.inf
    if np.isnan(a).any():
        return math.nan
    e = float(np.float32(1.0 / p)) if root == "float32" else 1.0 / p
    with np.errstate(over="ignore", divide="ignore", invalid="ignore", under="ignore"):
        terms = round_to(a**p, sum_dtype)
        if root == "l2_loss":  # sum(square(x) * 0.5), then sqrt(2 * sum)
            s = _sum(round_to(terms * 0.5, sum_dtype), sum_dtype, summation)
            return float(_round(round_to(round_to(2.0 * s, sum_dtype) ** e, sum_dtype), accumulate))
        s = _sum(terms, sum_dtype, summation)
        if root in ("sum_float32", "sum_float32_ftz"):  # the sum cast to float32, the root taken there
            s = round_to(s, "float32")
            if root == "sum_float32_ftz" and abs(s) < finfo("float32")["tiny"]:
                s = np.float64(0.0)
            return float(_round(round_to(s**e, "float32"), accumulate))
        return float(_round(round_to(s**e, sum_dtype), accumulate))


def vector_norm(x, p, *, accumulate: str = "float64", power_sum: str = "abs", root: str = "exact",
                sum_dtype: Optional[str] = None, max_nan: str = "propagate", exponent: str = "exact",
                summation: str = "exact") -> float:
    """p-norm of the flattened array ``x`` (``torch.linalg.vector_norm(x, p)``).

    ``p = inf``: ``max |x|``; ``p = -inf``: ``min |x|``; ``p = 0``: the number of elements
    with ``x != 0`` (NaN != 0, so a NaN counts as nonzero and gives a finite count);
    any other ``p``: ``(sum |x|**p) ** (1/p)`` (fractional and negative p included).
    Empty ``x``: 0.0 for ``p >= 0`` and ``p = inf``; ``+inf`` for any ``p < 0`` (``min`` over
    nothing; torch raises for ``+-inf`` on an empty tensor instead). For ``p != 0``, a NaN
    anywhere gives NaN.

    ``accumulate="float64"``: exact up to float64 rounding and free of spurious overflow and
    underflow: ``m * (fsum (|x|/m)**p) ** (1/p)`` with ``m = max|x|`` for ``p > 0`` and
    ``m = min|x|`` for ``p < 0`` (every scaled term is then <= 1), summed with ``math.fsum``.
    ``[2e200, 2e200]`` gives ``2e200 * sqrt(2)``; ``[1e-200] * 4`` gives ``2e-200``.

    ``accumulate=<dtype>``: naive accumulation in that dtype: ``a = r(|x|)``,
    ``s = r(sum r(a**p))``, result ``r(s ** (1/p))``, with ``r = round_to(., dtype)`` (overflow
    gives inf; the summation order is not emulated). ``p = +-inf``: ``max``/``min`` of ``a``;
    ``p = 0``: ``r(count)``.

    ``power_sum="signed"`` (p not inf, not 0): ``_signed_power_norm`` (no absolute value;
    ``exponent="float32"`` rounds its ``p`` and ``1/p`` to float32).
    ``root="float32"`` (finite p, not 0): ``(sum |x|**p) ** float32(1/p)`` (``_root32_norm``).
    ``root="sum_float32"`` (with ``sum_dtype``): the sum cast to float32 before the root;
    ``"sum_float32_ftz"``: the same, a subnormal float32 sum flushed to 0.
    ``root="l2_loss"`` (with ``sum_dtype``): halved terms, the root of twice their sum (``_naive_norm``).
    ``sum_dtype=<dtype>`` (finite p, not 0): ``r(rs(rs(sum rs(|x|**p)) ** (1/p)))`` with ``rs``
    rounding to ``sum_dtype`` and ``r`` to ``accumulate`` (``_naive_norm``): naive, so
    ``[2e200, 2e200]`` gives inf in float64.
    ``max_nan="compare"``: for p = +-inf, a NaN element counts only in first place (flattened
    order); later NaN elements are left out of the max/min.
    ``summation``: the order of a power sum formed in a dtype narrower than float64 (``_sum``).
    """
    _check("power_sum", power_sum, ("abs", "signed"))
    _check("summation", summation, _SUMMATIONS)
    _check("root", root, ("exact", "float32", "sum_float32", "sum_float32_ftz", "l2_loss"))
    if root in ("sum_float32", "sum_float32_ftz", "l2_loss") and sum_dtype is None:
        raise ValueError("root='sum_float32' needs sum_dtype (the dtype the sum is formed in)")
    _check("max_nan", max_nan, ("propagate", "compare"))
    _check("exponent", exponent, ("exact", "float32"))
    p = float(p)
    if summation == "l2_lanes8":
        summation = "lanes8" if p == 2 else "sequential"
    if max_nan == "compare" and p in (math.inf, -math.inf):
        a = np.asarray(x, dtype=np.float64).ravel()
        if a.size and not np.isnan(a[0]):  # a NaN first element stays the result (propagates)
            x = a[~np.isnan(a)]
    if sum_dtype is not None and p not in (0.0, math.inf, -math.inf) and power_sum == "abs":
        return _naive_norm(x, p, accumulate, sum_dtype, root, summation)
    if power_sum == "signed" and p not in (0.0, math.inf):
        return _signed_power_norm(x, p, accumulate, exponent, summation, sum_dtype)
    if root == "float32" and p not in (0.0, math.inf, -math.inf):
        return _root32_norm(x, p, accumulate, summation)
    a = np.abs(np.asarray(x, dtype=np.float64)).ravel()
    if accumulate != "float64":
        a = round_to(a, accumulate)
    if p == 0:
        return _scalar(np.count_nonzero(a != 0), accumulate)
    if a.size == 0:
        return 0.0 if p > 0 else math.inf
    if np.isnan(a).any():
        return math.nan
    if p == math.inf:
        return float(a.max())
    if p == -math.inf:
        return float(a.min())
    with np.errstate(over="ignore", divide="ignore", invalid="ignore", under="ignore"):
        if accumulate != "float64":
            s = _sum(round_to(a**p, accumulate), accumulate, summation)
            return float(round_to(s ** (1.0 / p), accumulate))
        m = a.max() if p > 0 else a.min()
        if m == 0 or m == math.inf:  # p > 0: all zero / some inf; p < 0: some zero / all inf
            return float(m)
        return float(m * np.float64(math.fsum((a / m) ** p)) ** (1.0 / p))


def total_norm(grads: list, norm_type: float = 2.0, *, nesting: str = "nested", accumulate: str = "float64",
               power_sum: str = "abs", root: str = "exact", sum_dtype: Optional[str] = None,
               max_nan: str = "propagate", exponent: str = "exact", summation: str = "exact") -> float:
    """The norm of several gradient tensors (``None`` entries ignored).

    ``nesting="nested"`` (torch): ``vector_norm([vector_norm(g, p) for g in grads], p)``, the
    norm of the per-tensor norms; for ``p = 0`` that is the number of tensors having any
    nonzero element. ``nesting="flat"``: ``vector_norm(concatenate(g.ravel() for g in grads),
    p)``; for ``p = 0`` the number of nonzero elements. Other p give the same value both ways
    (up to rounding). No gradients at all: 0.0. ``accumulate`` as in ``vector_norm``, applied
    to each norm (so nested per-tensor norms are rounded before the outer norm); ``power_sum``
    and ``root`` as in ``vector_norm``, applied to the per-tensor and the outer norm
    (``sum_dtype``, ``max_nan`` likewise). ``max_nan="outer_ignore"`` (nested, p = +-inf): each
    tensor's norm propagates NaN, and the max (min) over the tensors' norms skips NaN norms
    (NaN only when every one is): MindSpore's ``ops.clip_by_norm`` in graph mode
    (mindspore.jit), measured: [2, nan, -3] and [1, 0.5] have total inf-norm 1.0, [nan, 2]
    alone NaN.
    Answers for small gradients (``MEMO_BYTES`` in all) are remembered by value (the bytes,
    dtypes and shapes, and the knobs), not by object: a sweep asks for the same gradients' norm
    once per threshold.
    """
    gs = _present(grads)
    kw = (("nesting", nesting), ("accumulate", accumulate), ("power_sum", power_sum), ("root", root),
          ("sum_dtype", sum_dtype), ("max_nan", max_nan), ("exponent", exponent), ("summation", summation))
    if sum(g.nbytes for g in gs) > MEMO_BYTES:
        return _total_norm(gs, norm_type, **dict(kw))
    return _remembered_norm(tuple((g.dtype.str, g.shape, g.tobytes()) for g in gs), float(norm_type), kw)


#: ``total_norm`` remembers the answers for gradients of at most this many bytes in all (the
#: last ``MEMO_ENTRIES`` of them: at most 4 MB)
MEMO_BYTES = 1 << 16
MEMO_ENTRIES = 64


@functools.lru_cache(maxsize=MEMO_ENTRIES)
def _remembered_norm(frozen: tuple, norm_type: float, kw: tuple) -> float:
    """``_total_norm`` of the gradients ``frozen`` holds ((dtype, shape, bytes) each)."""
    return _total_norm([np.frombuffer(b, dtype=dt).reshape(shape) for dt, shape, b in frozen], norm_type, **dict(kw))


def _total_norm(gs: list, norm_type: float, *, nesting: str, accumulate: str, power_sum: str, root: str,
                sum_dtype: Optional[str], max_nan: str, exponent: str, summation: str) -> float:
    """``total_norm`` of the present gradients ``gs`` (float64 arrays)."""
    outer_ignore = max_nan == "outer_ignore"
    kw = dict(accumulate=accumulate, power_sum=power_sum, root=root, sum_dtype=sum_dtype,
              max_nan="propagate" if outer_ignore else max_nan, exponent=exponent, summation=summation)
    _check("nesting", nesting, ("nested", "flat"))
    if not gs:
        return 0.0
    if nesting == "flat":
        return vector_norm(np.concatenate([g.ravel() for g in gs]), norm_type, **kw)
    norms = np.array([vector_norm(g, norm_type, **kw) for g in gs])
    if outer_ignore and norm_type in (math.inf, -math.inf):
        kept = norms[~np.isnan(norms)]
        return float(kept.max() if norm_type > 0 else kept.min()) if kept.size else math.nan
    return vector_norm(norms, norm_type, **kw)


# --------------------------------------------------------------------------- norm clipping


def _scale(g, max_norm, norm, *, eps, threshold, accumulate, divide="direct", flush=None):
    """One tensor scaled for ``norm``: ``coef = r(max_norm / r(norm + eps))``, then
    ``clamp``: ``r(g * minimum(coef, 1))`` (``np.minimum`` so a NaN coef propagates, as
    ``torch.clamp``); ``strict``: ``r(g * coef)`` if ``norm > max_norm`` else ``g``;
    ``non_strict``: the same with ``>=``; ``max_div``: ``r(g * r(max_norm / maximum(r(norm +
    eps), max_norm)))`` (``clip_norm / max(global_norm, clip_norm)``: equal to ``clamp`` except
    that ``inf / inf`` (max_norm inf) and ``0 / 0`` (norm and max_norm 0) are NaN, and a NaN
    norm gives NaN); ``select``: per element ``m = r(max_norm * r(g / r(norm + eps)))``, then
    ``g`` where ``g * m >= 0 and m * m > g * g``, else ``m`` (MindSpore's ``nn.ClipByNorm`` CPU
    kernel: the same as ``clamp`` without epsilon for finite numbers, but ``0 * inf`` (an exactly
    zero element, max_norm inf) and ``inf / inf`` give NaN). ``r`` rounds to ``accumulate``.
    ``flush=<dtype>`` (``clamp``, ``strict``, ``non_strict``): a ``norm + eps`` that is subnormal
    in that dtype is 0 (flush-to-zero arithmetic), so ``coef`` is ``max_norm / 0``."""
    g = np.asarray(g, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if threshold == "min_reciprocal":  # TF/Keras clip_by_global_norm: max_norm * min(1/norm, 1/max_norm)
            inv = _round(1.0 / _round(np.float64(norm) + np.float64(eps), accumulate), accumulate)
            coef = _round(np.float64(max_norm) * np.minimum(inv, _round(1.0 / np.float64(max_norm), accumulate)),
                          accumulate)
            return _round(g * coef, accumulate)
        if threshold == "max_div":
            denom = np.maximum(_round(np.float64(norm) + np.float64(eps), accumulate), np.float64(max_norm))
            if divide == "product_first":  # (t * clip_norm) / max(norm, clip_norm): TF's order
                return _round(_round(g * np.float64(max_norm), accumulate) / denom, accumulate)
            return _round(g * _round(np.float64(max_norm) / denom, accumulate), accumulate)
        if threshold == "select":  # per element: the smaller of g and max_norm * (g / norm)
            mul = _round(np.float64(max_norm) * _round(g / _round(np.float64(norm) + np.float64(eps), accumulate),
                                                       accumulate), accumulate)
            keep = (g * mul >= 0) & (mul * mul > g * g)
            return _round(np.where(keep, g, mul), accumulate)
        denom = _round(np.float64(norm) + np.float64(eps), accumulate)
        if flush is not None and abs(denom) < finfo(flush)["tiny"]:
            denom = np.float64(0.0)
        if divide == "reciprocal":  # max_norm * (1 / denom), the reciprocal rounded first
            coef = _round(np.float64(max_norm) * _round(1.0 / denom, accumulate), accumulate)
        else:
            coef = _round(np.float64(max_norm) / denom, accumulate)
        if threshold == "clamp":
            return _round(g * np.minimum(coef, 1.0), accumulate)
        above = norm > max_norm if threshold == "strict" else norm >= max_norm
        return _round(g * coef, accumulate) if above else g.copy()


def clip_grads_with_norm(grads: list, max_norm: float, total_norm: float, *, eps: float = 1e-6,
                         threshold: str = "clamp", accumulate: str = "float64",
                         divide: str = "direct", flush: Optional[str] = None,
                         nonfinite: str = "propagate", max_norm_dtype: Optional[str] = None) -> OracleResult:
    """Scale every gradient by the coefficient for a given ``total_norm``
    (``torch.nn.utils.clip_grads_with_norm_``, which returns nothing: ``total_norm`` is None).

    ``coef = max_norm / (total_norm + eps)``; ``threshold="clamp"``: ``g * min(1, coef)``
    (torch); ``"strict"``: ``g * coef`` if ``total_norm > max_norm`` else ``g``;
    ``"non_strict"``: ``g * coef`` if ``total_norm >= max_norm`` else ``g``. Plain IEEE
    arithmetic: a negative ``max_norm`` flips signs, 0 zeroes, ``0 / 0`` (``eps = 0``, norm 0,
    max_norm 0) gives NaN, an infinite norm gives coef 0 (so ``inf * 0 = NaN``), a NaN norm a NaN
    coef under ``clamp`` (and no scaling under ``strict``/``non_strict``, as ``NaN > x`` is false).
    With ``accumulate=<dtype>`` ``norm + eps``, ``coef`` and the outputs are rounded to it.
    ``divide="reciprocal"``: ``coef = max_norm * r(1 / r(norm + eps))`` (torch's ``scalar /
    tensor``): in float16 a norm below 1/65504 has an infinite reciprocal, so max_norm 0 gives
    ``0 * inf = NaN``. ``flush``: as in ``clip_grad_norm``. ``nonfinite="nan"``: a NaN or
    infinite ``total_norm`` makes every gradient NaN (TensorFlow's ``clip_by_global_norm(...,
    use_norm=)``: ``scale + (use_norm - use_norm)``); ``"propagate"``: IEEE arithmetic as above.
    ``max_norm_dtype``: ``max_norm`` rounded to that dtype first (TensorFlow converts a Python
    ``clip_norm`` to the gradients' dtype: in float16 1e5 is inf).
    """
    _check("threshold", threshold, _THRESHOLDS)
    _check("divide", divide, ("direct", "reciprocal", "product_first"))
    _check("nonfinite", nonfinite, ("propagate", "nan"))
    if max_norm_dtype is not None:
        max_norm = float(round_to(max_norm, max_norm_dtype))
    if nonfinite == "nan" and not math.isfinite(float(_round(np.float64(total_norm), accumulate))):
        return OracleResult(grads=[None if g is None else np.full(np.shape(g), np.nan) for g in grads],
                            total_norm=None)
    out = [None if g is None else _scale(g, max_norm, total_norm, eps=eps, threshold=threshold,
                                         accumulate=accumulate, divide=divide, flush=flush) for g in grads]
    return OracleResult(grads=out, total_norm=None)


def get_total_norm(grads: list, norm_type: float = 2.0, error_if_nonfinite: bool = False, *,
                   nesting: str = "nested", accumulate: str = "float64",
                   nonfinite: str = "propagate", power_sum: str = "abs", root: str = "exact",
                   sum_dtype: Optional[str] = None, max_nan: str = "propagate",
                   rescale: Optional[float] = None, summation: str = "exact",
                   empty_max: float = 0.0) -> OracleResult:
    """``total_norm(grads, norm_type)`` with the gradients unchanged
    (``torch.nn.utils.get_total_norm``).

    A NaN or +-inf norm with ``nonfinite="raise"`` (or ``error_if_nonfinite=True``) gives
    ``OracleResult(grads=None, total_norm=norm, raises="RuntimeError")``; ``"propagate"`` and
    ``"skip"`` return the norm (there is nothing to skip).
    ``rescale=m``: the gradients are also scaled as ``clip_grads_with_norm(grads, m, norm)``
    (a composite reading the norm from a clip with ``max_norm=inf``: a finite norm leaves them
    alone, a NaN or infinite one makes them NaN, ``inf / inf``).
    ``empty_max``: the ``norm_type=inf`` norm of gradients holding no element at all (none, or
    only empty ones): 0.0, or ``-inf``, the max over nothing from an initializer of -inf
    (optax's ``tree_max``: ``optax.tree.norm(tree, ord=inf)``).
    """
    _check("nonfinite", nonfinite, _NONFINITE)
    norm = total_norm(grads, norm_type, nesting=nesting, accumulate=accumulate, power_sum=power_sum, root=root,
                      sum_dtype=sum_dtype, max_nan=max_nan, summation=summation)
    if float(norm_type) == math.inf and not any(g.size for g in _present(grads)):
        norm = float(empty_max)
    if (error_if_nonfinite or nonfinite == "raise") and not math.isfinite(norm):
        return OracleResult(grads=None, total_norm=norm, raises="RuntimeError")
    if rescale is not None:
        return OracleResult(grads=clip_grads_with_norm(grads, rescale, norm).grads, total_norm=norm)
    return OracleResult(grads=_copy(grads), total_norm=norm)


def clip_grad_norm(grads: list, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False, *,
                   scope: str = "global", nesting: str = "nested", eps: float = 1e-6,
                   threshold: str = "clamp", accumulate: str = "float64",
                   nonfinite: str = "propagate", power_sum: str = "abs", root: str = "exact",
                   sum_dtype: Optional[str] = None, max_nan: str = "propagate",
                   max_norm_dtype: Optional[str] = None, divide: str = "direct",
                   zero_dim: str = "keep", square_sum_floor: Optional[float] = None, rms: bool = False,
                   flush: Optional[str] = None, norm_types: Optional[list] = None,
                   exponent: str = "exact", summation: str = "exact", enabled: str = "always") -> OracleResult:
    """Clip gradients by norm (defaults: ``torch.nn.utils.clip_grad_norm_``).

    ``scope="global"``: ``norm = total_norm(grads, norm_type, nesting=nesting)``, then every
    gradient is scaled as in ``clip_grads_with_norm(grads, max_norm, norm)``; the result's
    ``total_norm`` is ``norm``. ``scope="per_tensor"``: each gradient ``g`` is scaled by its own
    ``vector_norm(g, norm_type)`` (``nesting`` does not apply); ``total_norm`` is None.

    Non-finite norm (NaN or +-inf; per tensor under ``per_tensor``): ``nonfinite="propagate"``
    computes as usual (IEEE); ``"skip"`` leaves the gradient(s) unchanged; ``"raise"`` (also
    ``error_if_nonfinite=True``) gives ``OracleResult(None, norm, "RuntimeError")`` (norm None
    under ``per_tensor``). No gradients at all: ``total_norm`` 0.0, nothing changed.
    ``accumulate=<dtype>``: norms, coefficient and outputs rounded to that dtype.
    ``power_sum``, ``root``, ``sum_dtype``, ``max_nan``: how every norm is formed (``vector_norm``).
    ``nonfinite="skip_nan"``: as ``"skip"`` for a NaN norm, as ``"propagate"`` for +-inf.
    ``max_norm_dtype``: ``max_norm`` is first rounded to that dtype. ``divide``: as in
    ``clip_grads_with_norm``. ``zero_dim="one"``: a 0-d gradient comes back with shape ``[1]``
    (a ``[1]``-shaped coefficient broadcast into it: Paddle's ``ClipGradByGlobalNorm`` and
    MindSpore's ``clip_by_global_norm`` called directly); ``"keep"``: its own shape.
    ``square_sum_floor=f`` (``per_tensor``, L2 only): each tensor's sum of squares ``s`` is
    replaced by ``f`` unless ``s > f`` (NaN included), so its norm is ``sqrt(f)`` at least and
    never NaN (MindSpore's ``nn.ClipByNorm`` CPU kernel, ``f = 1e-6``: a NaN norm is 1e-3).
    ``rms=True`` (``per_tensor``, L2 only): each tensor's norm is divided by the square root of
    its element count, so ``max_norm`` bounds its root mean square (optax's ``clip_by_block_rms``:
    ``g / max(1, rms(g) / threshold)``, which is ``clamp`` with ``eps=0``).
    ``flush=<dtype>``: flush-to-zero arithmetic in that dtype: a ``norm + eps`` subnormal there
    is 0, so the coefficient is ``max_norm / 0`` (MindSpore's float16 ``ops.clip_by_norm``: a
    norm of subnormal gradients plus 1e-6 is 0, the coefficient inf, nothing clipped).
    ``norm_types=[...]``: the only norm types the API accepts; any other raises ValueError
    (Paddle's ``clip_grad_norm_``: inf, 0, 1, 2). ``exponent``, ``summation``: as in ``vector_norm``.
    ``enabled="positive"``: the clip happens only when ``max_norm > 0``; otherwise the gradients
    are returned unchanged and no norm is computed (Keras optimizers' ``clipnorm`` /
    ``global_clipnorm``: ``if self.clipnorm and self.clipnorm > 0``); ``"always"``: no such test.
    """
    _check("zero_dim", zero_dim, ("keep", "one"))
    _check("enabled", enabled, ("always", "positive"))
    if enabled == "positive" and not max_norm > 0:
        return OracleResult(grads=_copy(grads), total_norm=None)
    if norm_types is not None and not any(float(norm_type) == float(t) for t in norm_types):
        return OracleResult(grads=None, total_norm=None, raises="ValueError")
    r = _clip_grad_norm(grads, max_norm, norm_type, error_if_nonfinite, scope=scope, nesting=nesting, eps=eps,
                        threshold=threshold, accumulate=accumulate, nonfinite=nonfinite, power_sum=power_sum,
                        root=root, sum_dtype=sum_dtype, max_nan=max_nan, max_norm_dtype=max_norm_dtype,
                        divide=divide, square_sum_floor=square_sum_floor, rms=rms, flush=flush, exponent=exponent,
                        summation=summation)
    if zero_dim == "one" and r.grads is not None:
        r.grads = [g if g is None or g.ndim else g.reshape(1) for g in r.grads]
    return r


def _clip_grad_norm(grads, max_norm, norm_type, error_if_nonfinite, *, scope, nesting, eps, threshold,
                    accumulate, nonfinite, power_sum, root, sum_dtype, max_nan, max_norm_dtype, divide,
                    square_sum_floor=None, flush=None, exponent="exact", summation="exact", rms=False):
    """``clip_grad_norm`` without the ``zero_dim`` reshaping."""
    if square_sum_floor is not None and (scope != "per_tensor" or norm_type != 2):
        raise ValueError("square_sum_floor is for per_tensor L2 clipping only")
    if rms and (scope != "per_tensor" or norm_type != 2):
        raise ValueError("rms is for per_tensor L2 clipping only")
    _check("scope", scope, ("global", "per_tensor"))
    _check("threshold", threshold, _THRESHOLDS)
    _check("nonfinite", nonfinite, _NONFINITE)
    if error_if_nonfinite:
        nonfinite = "raise"
    if max_norm_dtype is not None:
        max_norm = float(round_to(max_norm, max_norm_dtype))
    knobs = dict(eps=eps, threshold=threshold, accumulate=accumulate, divide=divide, flush=flush)
    nk = dict(accumulate=accumulate, power_sum=power_sum, root=root, sum_dtype=sum_dtype, max_nan=max_nan,
              exponent=exponent, summation=summation)

    def left_alone(n) -> bool:  # a non-finite norm that leaves the gradients unchanged
        return nonfinite == "skip" or (nonfinite == "skip_nan" and math.isnan(n))
    if scope == "per_tensor":
        out = []
        for g in grads:
            n = None if g is None else vector_norm(g, norm_type, **nk)
            if n is not None and square_sum_floor is not None:  # s = n * n floored (NaN: floor)
                s = _scalar(n * n, accumulate)
                n = _scalar(math.sqrt(s if s > square_sum_floor else square_sum_floor), accumulate)
            if n is not None and rms:  # the root mean square: the L2 norm over sqrt(element count)
                with np.errstate(divide="ignore", invalid="ignore"):
                    n = _scalar(np.float64(n) / np.sqrt(np.float64(np.asarray(g).size)), accumulate)
            if n is not None and not math.isfinite(n) and (nonfinite == "raise" or left_alone(n)):
                if nonfinite == "raise":
                    return OracleResult(grads=None, total_norm=None, raises="RuntimeError")
                out.append(np.array(g, dtype=np.float64))
            else:
                out.append(None if g is None else _scale(g, max_norm, n, **knobs))
        return OracleResult(grads=out, total_norm=None)
    norm = total_norm(grads, norm_type, nesting=nesting, **nk)
    if not _present(grads):
        return OracleResult(grads=_copy(grads), total_norm=norm)
    if not math.isfinite(norm):
        if nonfinite == "nan":  # TF's `scale + (norm - norm)`: every gradient NaN
            return OracleResult(grads=[None if g is None else np.full(np.shape(g), np.nan) for g in grads],
                                total_norm=norm)
        if nonfinite == "raise":
            return OracleResult(grads=None, total_norm=norm, raises="RuntimeError")
        if left_alone(norm):
            return OracleResult(grads=_copy(grads), total_norm=norm)
    clipped = clip_grads_with_norm(grads, max_norm, norm, **knobs)
    return OracleResult(grads=clipped.grads, total_norm=norm)


# --------------------------------------------------------------------------- value clipping


def clip_grad_value(grads: list, clip_value: Optional[float] = None, *, min: Optional[float] = None,
                    max: Optional[float] = None, order: str = "max_last",
                    nan: str = "propagate", bound_dtype: Optional[str] = None,
                    empty_range: str = "clamp", unbounded: str = "TypeError",
                    enabled: str = "always", flush: Optional[str] = None) -> OracleResult:
    """Clamp every gradient element into ``[lo, hi]`` (``torch.nn.utils.clip_grad_value_``).

    Bounds: ``lo, hi = -clip_value, clip_value``, unless ``min`` or ``max`` is given: then
    ``lo, hi = min, max``; a ``None`` bound falls back to ``-clip_value`` / ``clip_value`` when
    ``clip_value`` is given (Paddle's ``ClipGradByValue(max, min=None)``: min defaults to -max),
    else it is absent (one-sided clamp). A negative ``clip_value`` makes ``lo > hi``.

    ``order="max_last"``: ``minimum(maximum(g, lo), hi)`` (``torch.clamp``: if ``lo > hi``
    every element becomes ``hi``); ``"min_last"``: ``maximum(minimum(g, hi), lo)`` (every
    element becomes ``lo``). ``nan="propagate"``: NaN stays NaN (``np.maximum``/``np.minimum``
    propagate it); ``"min"``/``"max"``: a NaN element becomes ``lo``/``hi`` (what a
    compare-and-select implementation gives; NaN stays if that bound is absent); ``"bound"``:
    each clamp step maps NaN to its own bound, in ``order`` (MindSpore's ``clip_by_value``: NaN
    becomes ``lo``, then ``min(lo, hi)``; with only ``hi`` given, ``hi``); ``"finite_bound"``: as
    ``"bound"``, but a step whose bound is infinite leaves NaN alone (MindSpore's graph mode:
    NaN clipped into ``(-inf, inf)`` stays NaN, into ``(-inf, 1)`` becomes 1).
    ``bound_dtype``: each bound is first rounded to that dtype (``None``: used exactly):
    MindSpore makes a tensor of the gradients' dtype of a Python bound, so in float16 a bound
    beyond 65504 becomes +-inf (``lo = round(lo)``, ``hi = round(hi)``).
    ``empty_range="raise"``: ``lo > hi`` raises ValueError (Paddle's clip kernel: "max should
    be greater than or equal to min"); ``"clamp"``: computed as above. ``unbounded``: the
    exception type raised when no bound is given at all (MindSpore's ``clip_by_value``:
    ValueError). No norm is returned (``total_norm`` None). ``enabled="positive"``: the clip
    happens only when the upper bound (``clip_value``, else ``max``) is above 0, else the
    gradients are returned unchanged (Keras optimizers' ``clipvalue``, the upper bound of
    ``[-clipvalue, clipvalue]``: ``if self.clipvalue and self.clipvalue > 0``).
    ``flush=<dtype>``: flush-to-zero / denormals-are-zero arithmetic in that dtype: an element
    subnormal there (``0 < |x| < tiny``) is read as a zero of its sign (TensorFlow's CPU
    ``Maximum``/``Minimum`` on float32 and float64; ``None``: no flushing).
    """
    _check("order", order, ("max_last", "min_last"))
    _check("nan", nan, ("propagate", "min", "max", "bound", "finite_bound"))
    _check("empty_range", empty_range, ("clamp", "raise"))
    _check("enabled", enabled, ("always", "positive"))
    upper = clip_value if clip_value is not None else max
    if enabled == "positive" and not (upper is not None and upper > 0):
        return OracleResult(grads=_copy(grads), total_norm=None)
    if min is None and max is None:
        if clip_value is None:
            return OracleResult(grads=None, total_norm=None, raises=unbounded)
        lo, hi = -float(clip_value), float(clip_value)
    else:
        lo, hi = min, max
        if clip_value is not None:
            lo = -float(clip_value) if lo is None else lo
            hi = float(clip_value) if hi is None else hi
    if bound_dtype is not None:
        lo, hi = (None if b is None else float(round_to(b, bound_dtype)) for b in (lo, hi))
    if empty_range == "raise" and lo is not None and hi is not None and lo > hi:
        return OracleResult(grads=None, total_norm=None, raises="ValueError")

    def clamp(g):
        g = np.asarray(g, dtype=np.float64)
        if flush is not None:
            g = np.where(np.abs(g) < finfo(flush)["tiny"], np.copysign(0.0, g), g)
        first, last = (np.maximum, lo), (np.minimum, hi)
        if order == "min_last":
            first, last = last, first
        out = g
        for fn, bound in (first, last):
            if bound is not None:
                out = fn(out, bound)
                if nan == "bound" or (nan == "finite_bound" and math.isfinite(bound)):
                    out = np.where(np.isnan(out), bound, out)  # compare-and-select: NaN to this bound
        bound = {"propagate": None, "min": lo, "max": hi, "bound": None, "finite_bound": None}[nan]
        if bound is not None:
            out = np.where(np.isnan(g), bound, out)
        return np.array(out, dtype=np.float64)

    return OracleResult(grads=[None if g is None else clamp(g) for g in grads], total_norm=None)
