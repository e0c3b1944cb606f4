"""Tolerance policy, error metrics and the NaN-aware comparison of a cell's outputs.

A value ``got`` is close to ``want`` when ``|got - want| <= atol + rtol * |want|`` (the rule of
``torch.testing.assert_close``), NaN equals NaN in the same place, and infinities must match
exactly. Metrics are recorded for every comparison, pass or fail.

Scale-free quantities are judged by ``rtol`` alone, so that tiny gradients (where ``atol``
swallows every element) cannot hide a semantic difference: the norm a clipping API returns
(compared once both sides are rounded to the cell's dtype: a norm the dtype cannot hold is not
held against the framework) and the clipping factor ``||after|| / ||before||`` of every
gradient (the oracle's gradients rounded to their dtype first, as the framework's are, and one
unit in the last place of each element allowed: that much is rounding, not a factor).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .spec.values import tensor_data
from .tensors import CARRIER, materialize, round_to

#: torch.testing.assert_close's defaults per dtype: (rtol, atol).
DEFAULT_TOLERANCE = {
    "float64": (1e-7, 1e-7),
    "float32": (1.3e-6, 1e-5),
    "float16": (1e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
}



def tolerance(dtype: str, overrides: Optional[dict] = None, mixed=()) -> tuple[float, float]:
    """(rtol, atol) for ``dtype``: the case's override (which carries a reason) or the default.

    ``mixed``: the other dtypes of a cell whose parameters have mixed dtypes. Every clipped
    gradient depends on the one total norm, which carries the rounding of the least precise
    parameter, so such a cell gets the loosest tolerance of all its dtypes (each taken as above).
    """
    def one(d):
        if overrides and d in overrides:
            t = overrides[d]
            return float(t.rtol), float(t.atol)
        return DEFAULT_TOLERANCE[d]

    tols = [one(d) for d in dict.fromkeys([dtype, *mixed])]
    return max(t[0] for t in tols), max(t[1] for t in tols)


@dataclass
class Metrics:
    size: int = 0
    shape: tuple = ()
    mismatched: int = 0
    max_abs_err: float = 0.0
    max_rel_err: float = 0.0
    worst: str = ""  # "[1, 2]: got 0.1 want 0.2"

    def as_dict(self) -> dict:
        out = {"size": self.size, "shape": list(self.shape), "mismatched": self.mismatched,
               "max_abs_err": self.max_abs_err, "max_rel_err": self.max_rel_err}
        if self.worst:  # only where elements differ: a matching cell's record stays lean
            out["worst"] = self.worst
        return out


def compare_arrays(got, want, rtol: float, atol: float) -> Metrics:
    """Element-wise closeness with NaN == NaN; returns metrics (mismatched == 0 means close)."""
    g = np.asarray(got, dtype=np.float64)
    w = np.asarray(want, dtype=np.float64)
    if g.ndim == 0 and w.ndim == 0:
        return _compare_scalar(float(g), float(w), rtol, atol)
    m = Metrics(size=w.size, shape=w.shape)
    if g.shape != w.shape:
        m.mismatched = max(w.size, g.size, 1)
        m.max_abs_err = m.max_rel_err = math.inf
        m.worst = f"shape {list(g.shape)} != expected {list(w.shape)}"
        return m
    if w.size == 0:
        return m
    with np.errstate(all="ignore"):
        diff = np.abs(g - w)
        aw = np.abs(w)
        # a finite difference means both sides are finite: the common case, no masks needed
        finite = bool(np.isfinite(diff).all())
        if not finite:
            both_nan = np.isnan(g) & np.isnan(w)
            same_inf = np.isinf(g) & np.isinf(w) & (np.sign(g) == np.sign(w))
            diff = np.where(both_nan | same_inf, 0.0, diff)
            diff = np.where(np.isnan(diff), np.inf, diff)  # NaN on one side only
        m.max_abs_err = float(diff.max())
        if m.max_abs_err == 0.0:  # equal everywhere: nothing is off, nothing relative to divide
            return m
        rel = np.divide(diff, aw, out=np.zeros_like(diff), where=diff != 0)  # x/0 is inf
        if not finite:
            rel = np.where(np.isnan(rel), np.inf, rel)  # inf/inf
        # an infinite expected value gives no relative slack (rtol * inf would pass anything);
        # unchanged rule, the finite case only skips the mask
        bad = diff > atol + rtol * (aw if finite else np.where(np.isfinite(w), aw, 0.0))
    m.mismatched = int(np.count_nonzero(bad))
    m.max_rel_err = float(rel.max())
    if m.mismatched:
        m.worst = _worst(g, w, bad, diff, rtol)
    return m


def _compare_scalar(g: float, w: float, rtol: float, atol: float) -> Metrics:
    """``compare_arrays`` of two 0-d values, in Python floats (the same rule and metrics; a
    returned norm is one a cell, and numpy's calls on a 0-d array cost ten times the arithmetic)."""
    m = Metrics(size=1, shape=())
    if g == w or (g != g and w != w):  # equal (same infinities included), or both NaN
        return m
    diff = abs(g - w)  # NaN on one side, or opposite infinities: not a number close to anything
    if diff != diff:
        diff = math.inf
    aw = abs(w)
    rel = diff / aw if aw else math.inf
    m.max_abs_err = diff
    m.max_rel_err = math.inf if rel != rel else rel
    if diff > atol + rtol * (aw if math.isfinite(w) else 0.0):
        m.mismatched = 1
        m.worst = f"[]: got {g!r} want {w!r}"
    return m


def compare_many(pairs: list, rtol: float, atol: float) -> list:
    """``compare_arrays`` of each ``(got, want)`` pair, the same metrics, in one pass over all
    their elements where every pair has the same shape on both sides, some elements and only
    finite differences (a cell's gradients: each alone was a dozen numpy calls on tens of
    elements); any other pair list goes pair by pair."""
    gs = [np.asarray(g, dtype=np.float64) for g, _ in pairs]
    ws = [np.asarray(w, dtype=np.float64) for _, w in pairs]
    if len(pairs) < 2 or any(g.shape != w.shape or not w.size or not w.ndim for g, w in zip(gs, ws)):
        return [compare_arrays(g, w, rtol, atol) for g, w in zip(gs, ws)]
    g = np.concatenate([a.ravel() for a in gs])
    w = np.concatenate([a.ravel() for a in ws])
    with np.errstate(all="ignore"):
        diff = np.abs(g - w)
        if not np.isfinite(diff).all():
            return [compare_arrays(g, w, rtol, atol) for g, w in zip(gs, ws)]
        starts = list(itertools.accumulate([a.size for a in ws[:-1]], initial=0))
        max_abs = np.maximum.reduceat(diff, starts)
        out = [Metrics(size=a.size, shape=a.shape) for a in ws]
        if not max_abs.any():  # every element agrees
            return out
        aw = np.abs(w)
        rel = np.divide(diff, aw, out=np.zeros_like(diff), where=diff != 0)  # x/0 is inf
        bad = diff > atol + rtol * aw
        max_rel = np.maximum.reduceat(rel, starts)
        counts = np.add.reduceat(bad.astype(np.intp), starts)
    for i, m in enumerate(out):
        m.max_abs_err = float(max_abs[i])
        if m.max_abs_err == 0.0:
            continue
        m.max_rel_err = float(max_rel[i])
        m.mismatched = int(counts[i])
        if m.mismatched:
            lo = starts[i]
            part = slice(lo, lo + ws[i].size)
            m.worst = _worst(gs[i], ws[i], bad[part].reshape(ws[i].shape), diff[part].reshape(ws[i].shape), rtol)
    return out


def _worst(g: np.ndarray, w: np.ndarray, bad: np.ndarray, diff: np.ndarray, rtol: float) -> str:
    """The mismatched element furthest past its tolerance: ``"[i, j]: got G want W"``."""
    score = np.where(bad, diff - rtol * np.abs(np.nan_to_num(w)), -np.inf)
    idx = np.unravel_index(int(np.argmax(score)), w.shape)
    return f"{list(map(int, idx))}: got {float(g[idx])!r} want {float(w[idx])!r}"


@dataclass
class Comparison:
    """The outcome of comparing one framework's outputs with one oracle result."""

    params: dict = field(default_factory=dict)  # name -> Metrics
    problems: list = field(default_factory=list)  # human-readable reasons it is not close
    norm_got: Optional[float] = None
    norm_want: Optional[float] = None
    rtol: Optional[float] = None  # the tolerance the elements were judged by (shown on every cell)
    atol: Optional[float] = None
    squares: Optional[dict] = None  # the framework's gradients' sums of squares, where a kind keeps them

    @property
    def ok(self) -> bool:
        return not self.problems

    def totals(self) -> dict:
        ms = list(self.params.values())
        tol = {} if self.rtol is None else {"tolerance": {"rtol": self.rtol, "atol": self.atol}}
        if not ms:
            return {"max_abs_err": None, "max_rel_err": None, "mismatched": None, **tol}
        return {"max_abs_err": max(m.max_abs_err for m in ms),
                "max_rel_err": max(m.max_rel_err for m in ms),
                "mismatched": sum(m.mismatched for m in ms), **tol}

    def summary(self) -> str:
        return "; ".join(self.problems)


def compare_outputs(got_grads: dict, want_grads: dict, rtol: float, atol: float,
                    got_norm=None, want_norm=None, label: str = "", norm_dtype: Optional[str] = None) -> Comparison:
    """Compare gradients (name -> array or None) and, where both exist, the returned norm (by
    ``rtol`` alone once rounded to ``norm_dtype``, where given: see the module doc)."""
    c = Comparison(norm_got=got_norm, norm_want=want_norm, rtol=rtol, atol=atol)
    both = [n for n, w in want_grads.items() if w is not None and got_grads.get(n) is not None]
    metrics = dict(zip(both, compare_many([(got_grads[n], want_grads[n]) for n in both], rtol, atol)))
    for name, want in want_grads.items():
        got = got_grads.get(name, "absent")
        if isinstance(got, str):
            c.problems.append(f"{label}{name}: missing from the framework's output")
            continue
        if want is None or got is None:
            if (want is None) != (got is None):
                c.problems.append(f"{label}{name}: gradient is {'None' if got is None else 'set'}, "
                                  f"expected {'None' if want is None else 'a tensor'}")
            continue
        m = c.params[label + name] = metrics[name]
        if m.mismatched:
            c.problems.append(f"{label}{name}: {m.mismatched}/{m.size} elements differ "
                              f"(max abs {m.max_abs_err:.3g}, max rel {m.max_rel_err:.3g}; worst {m.worst})")
    for name in got_grads:
        if name not in want_grads:
            c.problems.append(f"{label}{name}: in the framework's output but not expected")
    if want_norm is not None and got_norm is None:
        c.problems.append(f"{label}returned no norm; expected {want_norm!r}")
    if got_norm is not None and want_norm is not None:
        if norm_dtype is None:
            m = compare_arrays(np.float64(got_norm), np.float64(want_norm), rtol, atol)
        else:
            m = compare_arrays(round_to(got_norm, norm_dtype), round_to(want_norm, norm_dtype), rtol, 0.0)
        c.params[label + "(returned norm)"] = m
        if m.mismatched:
            c.problems.append(f"{label}returned norm {got_norm!r} != expected {want_norm!r}")
    return c


def ulp(a, dtype: str) -> np.ndarray:
    """The spacing of ``dtype``'s numbers at each element of ``a`` (float64 values)."""
    with np.errstate(over="ignore"):
        return _ulp(a, dtype)


def _ulp(a, dtype: str) -> np.ndarray:  # ``ulp``; the caller holds np.errstate(over="ignore")
    a = np.abs(np.asarray(a, dtype=np.float64))
    if dtype == "bfloat16":  # float32's exponent range, 16 fewer significand bits
        return np.spacing(a.astype(np.float32)).astype(np.float64) * 65536.0
    return np.spacing(a.astype(CARRIER[dtype])).astype(np.float64)


def l2(a) -> float:
    """The L2 norm of ``a`` in float64 (an overflow is inf)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _l2(a)


def _l2(a) -> float:  # ``l2``; the caller holds np.errstate(over="ignore", invalid="ignore")
    return math.sqrt(_sq(a))


def _sq(a) -> float:  # the caller holds np.errstate(over="ignore", invalid="ignore")
    a = np.asarray(a, dtype=np.float64).ravel()
    return float(np.dot(a, a))


def squares(arrays: dict) -> dict:
    """Name -> the sum of squares of each array, in float64 (None for a missing one; an overflow
    is inf): the norms ``compare_factors`` and ``summaries.clip_factors`` both start from, worked
    out once for the two."""
    with np.errstate(over="ignore", invalid="ignore"):
        return {n: None if a is None else _sq(a) for n, a in arrays.items()}


def compare_factors(before: dict, got: dict, want: dict, dtypes: dict, rtol: float,
                    got_before: Optional[dict] = None, sq_before: Optional[dict] = None,
                    sq_got: Optional[dict] = None) -> list[str]:
    """Problems with the clipping factor ``||after||_2 / ||before||_2`` of each gradient (name ->
    array): the framework's (against ``got_before``, what it clipped, where it differs from
    ``before``) against the oracle's, the oracle's gradients rounded to their dtype (``dtypes``:
    name -> dtype) first, judged by ``rtol`` alone. A gradient whose norm before or after is zero
    or not finite has no factor to judge (its elements are compared anyway). ``sq_before``,
    ``sq_got``: ``squares`` of ``before`` and ``got``, where the caller has them."""
    out = []
    sq_before, sq_got = sq_before or {}, sq_got or {}
    got_before = before if got_before is None else got_before
    with np.errstate(over="ignore", invalid="ignore"):  # once for every norm below (an overflow is inf)
        for name, b in before.items():
            g, w, gb = got.get(name), want.get(name), got_before.get(name)
            if b is None or gb is None or g is None or w is None or np.shape(g) != np.shape(w):
                continue
            nb = math.sqrt(sq_before[name]) if sq_before.get(name) is not None else _l2(b)
            ngb = nb if gb is b else _l2(gb)
            if not (nb and ngb and math.isfinite(nb) and math.isfinite(ngb)):
                continue
            rw = round_to(w, dtypes[name])
            fg = (math.sqrt(sq_got[name]) if sq_got.get(name) is not None else _l2(g)) / ngb
            fw = _l2(rw) / nb
            if not (math.isfinite(fg) and math.isfinite(fw)):
                continue
            # one unit in the last place of each output element is rounding, not a different factor
            # (outputs in a dtype's subnormal range have few significant bits); that slack is not
            # negative, so it is worked out only for factors apart by more than rtol
            apart, allowed = abs(fg - fw), rtol * abs(fw)
            if apart > allowed and apart > allowed + _l2(_ulp(rw, dtypes[name])) / nb:
                out.append(f"{name}: clipping factor {fg:.7g}, oracle {fw:.7g} (rtol {rtol:g}; the elements agree "
                           f"within atol only)")
    return out


def expected(value) -> np.ndarray:
    """An ``expect`` tensor value (a nested list, a number or a generator mapping) as an array."""
    return materialize(tensor_data(value))


def check_expect(expects, grads: dict, norm, raised: bool, before: Optional[dict] = None,
                 values: Optional[dict] = None) -> list[str]:
    """Check the ``expect`` entries that hold for a cell (``Case.expectations``); returns the
    failures (empty list: all hold). ``grads`` are the gradients after the call, whether it
    returned or raised; ``before`` the gradients it was given (for ``grads: unchanged``);
    ``values`` a derivation's returned outputs by name."""
    fails = []
    for i, e in enumerate(expects):
        where = "expect" if len(expects) == 1 else f"expect[{'/'.join(e.apis()) or i}]"
        fails += _check_one(e, where, grads, norm, raised, before, values)
    return fails


def _check_one(e, where: str, grads: dict, norm, raised: bool, before, values) -> list[str]:
    if e.checks_raises() and e.raises != raised:
        return [f"{where}.raises is {e.raises} but the call {'raised' if raised else 'returned'}"]
    fails = []
    if not raised and e.total_norm is not None and norm is not None:
        if not np.isclose(norm, e.total_norm, rtol=e.rtol, atol=e.atol, equal_nan=True):
            fails.append(f"{where}.total_norm: got {norm!r}, expected {e.total_norm!r} ({_tol(e)})")
    wanted = e.grads
    if wanted == "unchanged":
        wanted = {n: g for n, g in (before or {}).items()}
    for name, want in (wanted or {}).items():
        got = grads.get(name)
        if want is None or got is None:
            if (want is None) != (got is None):
                fails.append(f"{where}.grads.{name}: got {'None' if got is None else 'a tensor'}")
            continue
        m = compare_arrays(got, expected(want), e.rtol, e.atol)
        if m.mismatched:
            after = " after the raise" if raised else ""
            fails.append(f"{where}.grads.{name}{after}: {m.mismatched} elements off by more than "
                         f"{_tol(e)} (worst {m.worst})")
    for name, want in (e.values or {}).items() if not raised else ():
        got = (values or {}).get(name)
        if got is None:
            continue  # an API that does not return this output (torch.autograd.grad, say)
        m = compare_arrays(got, expected(want), e.rtol, e.atol)
        if m.mismatched:
            fails.append(f"{where}.values.{name}: off by more than {_tol(e)} (worst {m.worst})")
    return fails


def _tol(e) -> str:
    return f"atol {e.atol}" if not e.rtol else f"atol {e.atol}, rtol {e.rtol}"
