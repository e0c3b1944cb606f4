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


def _l2(arrays) -> Optional[float]:
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays if a is not None]
    if not arrays:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        return _finite_or_none(math.sqrt(sum(float(np.sum(a * a)) for a in arrays)))


def _ratio(num: Optional[float], den: Optional[float]) -> Optional[float]:
    if num is None or not den:
        return None
    return _finite_or_none(num / den)


def clip_factors(before: dict, got: dict, want: dict, params: dict) -> dict:
    """The clipping factor applied, as ``||after||_2 / ||before||_2``: over all gradients
    together (``{"got", "want"}``), and per parameter into ``params[name]["factor"]``.

    A global clip scales every tensor by one factor; a per-tensor clip gives each its own, which
    is how the report shows a per-tensor API standing in for a global one. None where the
    input norm is 0 or a norm is not finite (nothing meaningful to divide)."""
    names = [n for n, g in before.items() if g is not None]
    for n in names:
        if n in params:
            b = _l2([before[n]])
            params[n]["factor"] = {"got": _ratio(_l2([got.get(n)]), b), "want": _ratio(_l2([want.get(n)]), b)}
    total = _l2([before[n] for n in names])
    return {"got": _ratio(_l2([got.get(n) for n in names]), total),
            "want": _ratio(_l2([want.get(n) for n in names]), total) if want else None}


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
