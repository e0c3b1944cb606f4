"""Numbers about a cell's tensors that results documents carry for the report (results schema
2): a summary of a case's inputs, and the clipping factor an API applied against the oracle's.
numpy only; a value that is not a finite number is recorded as None (strict JSON)."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np


def _finite_or_none(x) -> Optional[float]:
    x = float(x)
    return x if math.isfinite(x) else None


def _sq(a) -> Optional[float]:
    """The sum of squares of ``a`` in float64 (None for a missing gradient); callers hold
    ``np.errstate`` (an overflow is an honest inf, and is reported as None later)."""
    if a is None:
        return None
    a = np.asarray(a, dtype=np.float64)
    return float(np.dot(a.ravel(), a.ravel()))


def _root(squares) -> Optional[float]:
    squares = [s for s in squares if s is not None]
    return _root1(sum(squares)) if squares else None


def _root1(square: Optional[float]) -> Optional[float]:
    """The root of one sum of squares (None for a missing or NaN one): ``_root([square])``
    without building the list, as a cell's per-parameter factors ask three times each."""
    if square is None or square != square:  # NaN stays None
        return None
    return _finite_or_none(math.sqrt(square))


def _l2(arrays) -> Optional[float]:
    with np.errstate(over="ignore", invalid="ignore"):
        return _root([_sq(a) for a in arrays])


def _ratio(num: Optional[float], den: Optional[float]) -> Optional[float]:
    if num is None or not den:
        return None
    return _finite_or_none(num / den)


def clip_factors(before: dict, got: dict, want: dict, params: dict, sq_before: Optional[dict] = None,
                 sq_got: Optional[dict] = None) -> dict:
    """The clipping factor applied, as ``||after||_2 / ||before||_2``: over all gradients
    together (``{"got", "want"}``), and per parameter into ``params[name]["factor"]``.

    A global clip scales every tensor by one factor; a per-tensor clip gives each its own, which
    is how the report shows a per-tensor API standing in for a global one. None where the
    input norm is 0 or a norm is not finite (nothing meaningful to divide). ``sq_before``,
    ``sq_got``: the sums of squares of ``before`` and ``got`` (``compare.squares``), where the
    caller has them."""
    names = [n for n, g in before.items() if g is not None]
    given = {"before": sq_before or {}, "got": sq_got or {}, "want": {}}
    with np.errstate(over="ignore", invalid="ignore"):  # each array's squares summed once
        sq = {side: {n: given[side][n] if given[side].get(n) is not None else _sq(arrays.get(n)) for n in names}
              for side, arrays in (("before", before), ("got", got), ("want", want))}
    for n in names:
        if n in params:
            b = _root1(sq["before"][n])
            params[n]["factor"] = {"got": _ratio(_root1(sq["got"][n]), b),
                                   "want": _ratio(_root1(sq["want"][n]), b)}
    total = _root(sq["before"].values())
    return {"got": _ratio(_root(sq["got"].values()), total),
            "want": _ratio(_root(sq["want"].values()), total) if want else None}


def summarize_inputs(inputs, dtype: str) -> dict:
    """Per named tensor: shape, min/max/mean of the finite values, L2 norm and the counts of
    NaN/inf/zero elements. Injected cases summarise the gradients; model cases the data and
    the oracle's gradients before clipping. Values as rounded to ``dtype``. ``inputs`` is a
    ``runner.Inputs``."""
    tensors_ = {}
    if inputs.raw is None:
        tensors_.update({f"grad {n}": g for n, g in inputs.grads.items()})
    else:
        for key in ("inputs", "targets"):
            if (inputs.values or {}).get(key) is not None:
                tensors_[key] = inputs.values[key]
        tensors_.update({f"grad {n} (before clipping)": g for n, g in inputs.grads.items()})
    out = []
    for name, a in tensors_.items():
        if a is None:
            out.append({"name": name, "shape": None})
            continue
        a = np.asarray(a)
        f = a.astype(np.float64)
        finite = f[np.isfinite(f)]
        out.append({"name": name, "shape": list(a.shape), "size": int(a.size),
                    "min": float(finite.min()) if finite.size else None,
                    "max": float(finite.max()) if finite.size else None,
                    "mean": float(finite.mean()) if finite.size else None,
                    "l2": _l2([f]) if a.dtype.kind == "f" else None,
                    "nan": int(np.isnan(f).sum()), "inf": int(np.isinf(f).sum()),
                    "zeros": int((f == 0).sum())})
    return {"dtype": dtype, "tensors": out}
