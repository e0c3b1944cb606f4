"""How a clipping cell runs: the gradients (injected, or the oracle's gradients of the case's
network, rounded to the cell's dtype), the source API's oracle, the worker job, and what is
compared: every gradient after the call, the returned norm where both APIs return one, and for
a network the gradients before clipping. Main process only: numpy, never a framework."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ... import compare, snippets, tensors, wire
from ...classify import Hooks
from ...oracle import network
from ...spec.models import model_arrays, model_job
from ...spec.values import tensor_data
from ...summaries import clip_factors, summarize_inputs
from ..interface import Kind, Prepared
from . import oracle


@dataclass
class Want(oracle.OracleResult):
    """An oracle result with the variant knobs it was computed under (``None``: the source's
    own semantics), so that a network's clipping factor can be judged under the same knobs."""

    variant: Optional[dict] = None


@dataclass
class Inputs:
    names: list  # parameter names, in order
    grads: dict  # name -> float64 array (rounded to the dtype) or None: the clipping input
    job: dict  # the "params" or "model" part of a worker job
    raw: Optional[dict] = None  # model cases: the oracle's gradients before clipping
    values: Optional[dict] = None  # for reproduction snippets: name -> float64 array
    squares: Optional[dict] = None  # ``compare.squares(grads)``: what every sweep point's factors start from

    def __post_init__(self):
        if self.squares is None:
            self.squares = compare.squares(self.grads)
        # every job of these inputs (a sweep's points, the targets, the modes) names the same
        # ``job`` part: the worker keeps it after the first (``wire.SHARE``); the key is new for
        # each Inputs made, so a part rebuilt after the runner's cache dropped it is never mixed up
        self.share = {"key": f"clipping-inputs-{next(_INPUTS)}", "fields": list(self.job)}


_INPUTS = itertools.count(1)


def build_inputs(case, dtype: str) -> Inputs:
    """The numbers every framework and the oracle receive for a ``dtype`` cell of ``case``."""
    if case.grads is not None:
        grads, params = {}, []
        for name, value in case.grads.items():
            data = None if value is None else tensor_data(value)
            pdtype = tensors.param_dtype(data, dtype)  # mixed dtypes: a generator's `dtype:`
            g = None if data is None else tensors.round_to(tensors.materialize(data), pdtype)
            grads[name] = g
            param = {"name": name, "shape": list(g.shape) if g is not None else [1],
                     "grad": None if g is None else tensors.to_carrier(g, pdtype)}
            if pdtype != dtype:
                param["dtype"] = pdtype  # the backend contract's per-parameter dtype
            params.append(param)
        return Inputs(list(grads), grads, {"params": params}, values=grads)
    layers, inputs, targets = model_arrays(case.model, dtype)
    loss = case.model.loss.model_dump()
    raw = network.forward_backward(layers, loss, inputs, targets).grads
    grads = {n: tensors.round_to(g, dtype) for n, g in raw.items()}
    job = {"model": model_job(layers, loss, inputs, targets, dtype)}
    return Inputs(list(raw), grads, job, raw=raw, values={"inputs": inputs, "targets": targets})


def oracle_call(api, args: dict, grads: list, dtype: str, variant: Optional[dict] = None, fn=None):
    """The source API's semantics (optionally with a declared difference's knobs) in float64;
    ``fn``: another oracle function taking the same arguments and knobs (a kind's own variant)."""
    fn = fn or getattr(oracle, api.oracle.fn)
    args = tensors.plain_args(args, dtype)  # a tensor argument: the number it holds in its dtype
    kwargs = {o: args[a] for o, a in api.oracle.args.items() if a in args}
    knobs = {**api.oracle.knobs, **(variant or {})}
    raises = knobs.pop("raises", None)
    if raises:
        return oracle.OracleResult(grads=None, total_norm=None, raises=raises)
    for knob in ("accumulate", "sum_dtype", "bound_dtype", "flush", "max_norm_dtype"):  # "input": the cell's dtype
        if knobs.get(knob) == "input":
            knobs[knob] = dtype
    for name in [k for k in knobs if k in api.oracle.args]:  # a variant overriding an argument
        kwargs[name] = knobs.pop(name)                        # (norm_type: an L2-only target)
    return fn(grads, **kwargs, **knobs)


#: below these, a value's square is subnormal in float32 (the norms of float32 and bfloat16
#: gradients) or float64, where MindSpore's CPU kernels flush on some threads and not others
_FLUSHABLE = {"float32": tensors.finfo("float32")["tiny"] ** 0.5, "bfloat16": tensors.finfo("float32")["tiny"] ** 0.5,
              "float64": tensors.finfo("float64")["tiny"] ** 0.5}
_FACTS: dict = {}  # (id(case), dtype) -> (case, Clipping.facts)


def _grads_facts(case, dtype: str) -> dict:
    grads = case.grads
    if grads is None:
        return {"mixed_dtypes": False}
    present = [v for v in grads.values() if v is not None]
    return {"mixed_dtypes": any(getattr(v, "dtype", None) not in (None, dtype) for v in present),
            "grads.count": len(present),
            "grads.empty": any(0 in tensors.shape_of(tensor_data(v)) for v in present),
            "grads.tiny": _tiny(case, dtype)}


def _tiny(case, dtype: str) -> bool:
    """Whether flushing the values whose square is subnormal (float32 and bfloat16: below
    1.1e-19; float64: below 1.5e-154) changes some injected gradient's L2 norm by more than the
    dtype's rtol: where a framework's flush-to-zero mode decides the numbers. Never for float16
    (measured deterministic there; MindSpore's float16 flush is the knob ``flush``).
    Asked once per (case, dtype): ``Clipping.facts`` keeps what ``_grads_facts`` found."""
    for value in case.grads.values():
        if value is None:
            continue
        data = tensor_data(value)
        pdtype = tensors.param_dtype(data, dtype)
        if pdtype not in _FLUSHABLE:
            continue
        a = np.abs(tensors.round_to(tensors.materialize(data), pdtype))
        a = a[np.isfinite(a)]
        whole = _scaled_l2(a)
        kept = _scaled_l2(np.where(a < _FLUSHABLE[pdtype], 0.0, a))
        if whole and abs(whole - kept) > compare.tolerance(pdtype)[0] * whole:
            return True
    return False


def _scaled_l2(a: np.ndarray) -> float:
    """The L2 norm without underflow or overflow (scaled by the largest magnitude)."""
    m = float(a.max()) if a.size else 0.0
    return m * float(np.sqrt(np.sum((a / m) ** 2))) if m else 0.0


def _factor_sides(runner, cell, inputs: Inputs, want, want_grads: dict, got: dict) -> tuple:
    """(gradients before clipping, the oracle's gradients after) for judging each clipping factor
    (``want_grads``: the oracle's on the oracle's own gradients, name -> array).

    Injected gradients: both sides clipped the same numbers. A network: the framework clipped its
    own gradients, which differ from the oracle's by rounding (compared element-wise on their own);
    a per-tensor factor ``c / ||g||`` carries that rounding (measured: a MindSpore bias gradient's
    norm 1.46e-6 off, float32, over rtol 1.3e-6). So the factor is judged against the oracle, under
    the same variant, applied to the framework's own gradients: a different epsilon, threshold or
    scope still shows, the gradients' rounding does not."""
    own = got.get("raw_grads")
    if own is None or want.grads is None:
        return inputs.grads, want_grads
    names = inputs.names
    before = {n: own.get(n) for n in names}
    if any(before[n] is None and inputs.grads[n] is not None for n in names):
        return inputs.grads, want_grads  # no own gradient to re-clip: judge as given
    source = runner.registry.apis[cell.source_api]
    again = oracle_call(source, cell.args, [before[n] for n in names], cell.dtype, want.variant)
    if again.raises or again.grads is None:
        return inputs.grads, want_grads
    return before, dict(zip(names, again.grads))


class Clipping(Kind):
    name = "clipping"
    oracle = oracle

    def facts(self, cell) -> dict:
        """Injected gradients: ``mixed_dtypes`` (a generator's ``dtype:`` other than the cell's),
        ``grads.count`` (parameters that have a gradient), ``grads.empty`` (one has no elements),
        ``grads.tiny`` (see ``tiny``)."""
        key = (id(cell.case), cell.dtype)  # the same for every cell of a case and dtype: worked out once
        known = _FACTS.get(key)
        if known is None or known[0] is not cell.case:  # the case is kept: its id is not reused
            if len(_FACTS) > 4096:
                _FACTS.clear()
            known = _FACTS[key] = (cell.case, _grads_facts(cell.case, cell.dtype))
        return dict(known[1])

    def prepare(self, runner, cell) -> Prepared:
        case = cell.case
        inputs = runner.cached(("clipping-inputs", cell.source.path, case.id, cell.dtype),  # sweeps
                               lambda: build_inputs(case, cell.dtype))                    # change args only
        source = runner.registry.apis[cell.source_api]

        def want_under(variant: Optional[dict]):
            key = ("clipping-oracle", cell.source.path, case.id, cell.variant.label(), cell.dtype,
                   cell.source_api, repr(sorted((variant or {}).items())))
            return runner.cached(key, lambda: Want(**vars(oracle_call(
                source, cell.args, [inputs.grads[n] for n in inputs.names], cell.dtype, variant)),
                variant=variant))

        want = want_under(None)
        job = {"kind": self.name, "api": cell.api, "args": cell.call_args, "dtype": cell.dtype,
               "device": cell.device, "mode": cell.mode, "form": cell.form, **inputs.job,
               wire.SHARE: inputs.share}
        hooks = Hooks(oracle=want_under,
                      compare=lambda result, got: self._compare(runner, cell, inputs, result, got),
                      expect=lambda got, raised: compare.check_expect(
                          case.expectations(cell.api), got.get("grads") or {},
                          None if raised else got.get("returned"), raised,
                          before=got.get("raw_grads") or inputs.grads),
                      detail=lambda c, got, rec: self._detail(inputs, want, got, rec, c))
        return Prepared(job, want, hooks, lambda: snippets.snippet(cell, inputs),
                        inputs=lambda: summarize_inputs(inputs, cell.dtype))

    @staticmethod
    def _compare(runner, cell, inputs: Inputs, want, got: dict) -> compare.Comparison:
        """Every gradient after the call (element-wise), the clipping factor of each (scale-free),
        the returned norm where both APIs return one (scale-free), and for a network the
        gradients before clipping."""
        dtypes = {p["name"]: p.get("dtype", cell.dtype) for p in inputs.job.get("params", [])}
        rtol, atol = compare.tolerance(cell.dtype, cell.case.tolerance, [d for d in dtypes.values() if d != cell.dtype])
        norms = (runner.registry.apis[cell.api].returns == "total_norm"
                 and runner.registry.apis[cell.source_api].returns == "total_norm")
        want_grads = dict(zip(inputs.names, want.grads)) if want.grads is not None else dict(inputs.grads)
        got_grads = got.get("grads") or {}
        c = compare.compare_outputs(got_grads, want_grads, rtol, atol,
                                    got.get("returned") if norms else None,
                                    want.total_norm if norms else None, norm_dtype=cell.dtype)
        before, clipped = _factor_sides(runner, cell, inputs, want, want_grads, got)
        c.squares = compare.squares(got_grads)  # (``_detail``'s factors start from them too)
        c.problems += compare.compare_factors(before, got_grads, clipped,
                                              {n: dtypes.get(n, cell.dtype) for n in inputs.names}, rtol,
                                              sq_before=inputs.squares if before is inputs.grads else None,
                                              sq_got=c.squares)
        if inputs.raw is not None and got.get("raw_grads") is not None:
            raw_want = {n: inputs.grads[n] for n in inputs.names}
            r = compare.compare_outputs(got["raw_grads"], raw_want, rtol, atol, label="before clipping: ")
            c.params.update(r.params)
            c.problems[:0] = r.problems
        return c

    @staticmethod
    def _detail(inputs: Inputs, want, got: dict, rec: dict, c: compare.Comparison) -> None:
        """The returned norm and the clipping factors, for the report."""
        rec["total_norm"] = {"got": got.get("returned"), "want": want.total_norm}
        want_grads = dict(zip(inputs.names, want.grads)) if want.grads is not None else {}
        rec["factor"] = clip_factors(inputs.grads, got.get("grads") or {}, want_grads, rec["params"],
                                     sq_before=inputs.squares, sq_got=c.squares)


KIND = Clipping()
