"""Run one cell: materialise its inputs, ask the oracle, ask the backend worker, classify.

Main process only: imports numpy, never a framework. Inputs and oracle results are cached per
(case variant, dtype), so the targets of one case share them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import compare, repro, tensors
from .summaries import clip_factors, summarize_inputs
from .classify import Hooks, classify
from .oracle import clipping, network
from .plan import Cell
from .registry import Api, Registry
from .spec import Case, tensor_data
from .worker import BackendError, WorkerError, WorkerPool


@dataclass
class Inputs:
    names: list  # parameter names, in order
    grads: dict  # name -> float64 array (rounded to the dtype) or None: the clipping input
    job: dict  # the "params" or "model" part of a worker job
    raw: Optional[dict] = None  # model cases: the oracle's gradients before clipping
    values: Optional[dict] = None  # for reproduction snippets: name -> float64 array


def _layer_arrays(case: Case, dtype: str) -> list[dict]:
    """Materialise layer specs: weights in torch layout, default init where none is given
    (uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) seeded by the layer index, like torch's scheme)."""
    out = []
    for i, layer in enumerate(case.model.layers):
        d = {"type": layer.type, "name": layer.name or str(i)}
        if layer.type in ("linear", "conv2d"):
            d.update({"in": layer.in_, "out": layer.out})
            if layer.type == "conv2d":
                from .spec import _pair

                d.update({"kernel": _pair(layer.kernel), "stride": _pair(layer.stride),
                          "padding": _pair(layer.padding)})
                wshape = [layer.out, layer.in_, *d["kernel"]]
                fan_in = layer.in_ * d["kernel"][0] * d["kernel"][1]
            else:
                wshape, fan_in = [layer.out, layer.in_], layer.in_
            bound = 1.0 / math.sqrt(fan_in)
            default = {"random": "uniform", "low": -bound, "high": bound, "seed": i}
            d["weight"] = _param(layer.weight, default, wshape, dtype)
            if "bias" in layer.model_fields_set and layer.bias is None:
                d["bias"] = None
            else:
                d["bias"] = _param(layer.bias, dict(default, seed=1000 + i), [layer.out], dtype)
        elif layer.type == "embedding":
            d.update({"num": layer.num, "dim": layer.dim})
            default = {"random": "normal", "seed": i}
            d["weight"] = _param(layer.weight, default, [layer.num, layer.dim], dtype)
        out.append(d)
    return out


def _param(value, default: dict, shape: list, dtype: str) -> np.ndarray:
    spec = tensor_data(value) if value is not None else default
    a = tensors.materialize(spec, shape_hint=shape)
    if list(a.shape) != list(shape):
        if a.size == 1:
            a = np.full(shape, float(a.reshape(-1)[0]))
        else:
            raise ValueError(f"a parameter of shape {list(a.shape)} where {shape} is needed")
    return tensors.round_to(a, dtype)


def build_inputs(case: Case, dtype: str) -> Inputs:
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
    model = case.model
    layers = _layer_arrays(case, dtype)
    embed_first = layers[0]["type"] == "embedding"
    inputs = tensors.materialize(tensor_data(model.inputs), integer=embed_first)
    if not embed_first:
        inputs = tensors.round_to(inputs, dtype)
    targets = None
    if model.targets is not None:
        integer = model.loss.type == "cross_entropy"
        targets = tensors.materialize(tensor_data(model.targets), integer=integer)
        if not integer:
            targets = tensors.round_to(targets, dtype)
    loss = model.loss.model_dump()
    raw = network.forward_backward(layers, loss, inputs, targets).grads
    grads = {n: tensors.round_to(g, dtype) for n, g in raw.items()}

    def carry(a):
        return a if a is None or a.dtype.kind in "iu" else tensors.to_carrier(a, dtype)

    job_layers = [{k: (carry(v) if isinstance(v, np.ndarray) else v) for k, v in layer.items()}
                  for layer in layers]
    job = {"model": {"layers": job_layers, "loss": loss, "inputs": carry(inputs),
                     "targets": carry(targets)}}
    return Inputs(list(raw), grads, job, raw=raw, values={"inputs": inputs, "targets": targets})


def oracle_call(api: Api, args: dict, grads: list, dtype: str, variant: Optional[dict] = None):
    """The source API's semantics (optionally with a declared difference's knobs) in float64."""
    fn = getattr(clipping, api.oracle.fn)
    kwargs = {o: args[a] for o, a in api.oracle.args.items() if a in args}
    knobs = {**api.oracle.knobs, **(variant or {})}
    raises = knobs.pop("raises", None)
    if raises:
        return clipping.OracleResult(grads=None, total_norm=None, raises=raises)
    for knob in ("accumulate", "sum_dtype", "bound_dtype"):  # "input": the cell's dtype
        if knobs.get(knob) == "input":
            knobs[knob] = dtype
    for name in [k for k in knobs if k in api.oracle.args]:  # a variant overriding an argument
        kwargs[name] = knobs.pop(name)                        # (norm_type: an L2-only target)
    return fn(grads, **kwargs, **knobs)


class Runner:
    """Runs cells through a WorkerPool. ``unavailable`` maps backend -> reason it is skipped."""

    def __init__(self, registry: Registry, pool: WorkerPool, unavailable: Optional[dict] = None,
                 timeout: float = 120.0):
        self.registry = registry
        self.pool = pool
        self.unavailable = dict(unavailable or {})
        self.timeout = timeout
        self._inputs: dict = {}
        self._oracle: dict = {}
        self.backends: dict = {}  # backend -> {"version", "devices", "python", ...} for results
        self._emitted: set = set()  # case-level facts already attached to a record (see _case_info)

    # -- backends -------------------------------------------------------------------------------
    def device_reason(self, backend: str, device: str) -> Optional[str]:
        """None when (backend, device) can run; else why its cells are skipped."""
        if backend in self.unavailable:
            return self.unavailable[backend]
        if backend not in self.pool.modules:
            return f"no {backend} backend in this version of the suite"
        if backend not in self.backends:
            try:
                hello = self.pool.hello(backend, "cpu")
            except WorkerError as e:
                self.unavailable[backend] = f"{backend} worker failed to start: {e}"
                return self.unavailable[backend]
            info = hello.get("info", {})
            self.backends[backend] = {"version": info.get("version"), "build": info.get("build"),
                                      "python": hello.get("executable"),
                                      "python_version": hello.get("python"),
                                      "devices": [d for d, why in info.get("devices", {}).items() if why is None],
                                      "unavailable": {d: why for d, why in info.get("devices", {}).items() if why}}
        return self.backends[backend]["unavailable"].get(device)

    def backend_summary(self) -> dict:
        """The results document's ``backends``: versions of those that ran, reasons for the rest."""
        out = {k: dict(v) for k, v in self.backends.items()}
        for name, reason in self.unavailable.items():
            out.setdefault(name, {"version": None, "devices": [],
                                  "unavailable": {"cpu": reason, "gpu": reason}})
        return out

    # -- one cell -------------------------------------------------------------------------------
    def inputs(self, cell: Cell) -> Inputs:
        key = (cell.source.path, cell.case.id, cell.dtype)  # sweeps change arguments, never inputs
        if key not in self._inputs:
            if len(self._inputs) > 64:
                self._inputs.clear()
            self._inputs[key] = build_inputs(cell.case, cell.dtype)
        return self._inputs[key]

    def oracle(self, cell: Cell, inputs: Inputs, variant: Optional[dict] = None):
        key = (cell.source.path, cell.case.id, cell.variant.label(), cell.dtype, cell.source_api,
               repr(sorted((variant or {}).items())))
        if key not in self._oracle:
            if len(self._oracle) > 256:
                self._oracle.clear()
            api = self.registry.apis[cell.source_api]
            self._oracle[key] = oracle_call(api, cell.args, [inputs.grads[n] for n in inputs.names],
                                            cell.dtype, variant)
        return self._oracle[key]

    def run(self, cell: Cell) -> dict:
        if cell.case.function is not None:  # a gradient-derivation cell (docs/derivation.md)
            from .derive_runner import run_cell

            return run_cell(self, cell)
        if cell.case.step is not None:  # a training-step case (docs/training.md)
            from . import train_runner

            return train_runner.run(self, cell)
        return self.run_with(cell, self._prepare, annotate=lambda rec: self._case_info(cell, None, rec))

    def _prepare(self, cell: Cell, rec: dict):
        """A clipping cell: its inputs, the source's oracle, the worker job; see run_with."""
        inputs = self.inputs(cell)
        want = self.oracle(cell, inputs)
        self._case_info(cell, inputs, rec)
        job = {"api": cell.api, "args": cell.target_args, "dtype": cell.dtype, "device": cell.device,
               **inputs.job}
        return (job, lambda got: self._classify(cell, inputs, want, got, rec),
                lambda: repro.snippet(cell, inputs))

    def run_with(self, cell: Cell, prepare, annotate=None) -> dict:
        """The steps every kind of cell shares (clipping, derivation, training): skip an
        unavailable device, prepare, call the worker, classify, attach a reproduction snippet.

        ``prepare(cell, rec)`` returns ``(job, classify, snippet)``: the worker job, a function
        that classifies the worker's result into ``rec``, and one that returns the snippet.
        ``annotate(rec)`` adds to the record before anything can skip or fail."""
        start = time.perf_counter()
        rec = self._record(cell)
        if annotate is not None:
            annotate(rec)
        reason = self.device_reason(cell.backend, cell.device)
        if reason:
            rec.update(status="skipped", message=reason)
            return self._done(rec, start)
        rec["backend_version"] = self.backends[cell.backend]["version"]
        try:
            job, classify_result, snippet = prepare(cell, rec)
        except Exception as e:  # a suite bug or an impossible case: never silently passes
            rec.update(status="error", message=f"preparing inputs/oracle failed: {type(e).__name__}: {e}")
            return self._done(rec, start)
        try:
            got = self.pool.get(cell.backend, cell.device).call(job, timeout=self.timeout, label=cell.id)
        except (WorkerError, BackendError) as e:
            rec.update(status="error", message=f"{type(e).__name__}: {e}")
            rec["reproduce"] = snippet()
            return self._done(rec, start)
        classify_result(got)
        if rec["status"] in ("mismatch", "error", "known"):
            rec["reproduce"] = snippet()
        return self._done(rec, start)

    @staticmethod
    def _record(cell: Cell) -> dict:
        return {"id": cell.id, "case": cell.case.id, "title": cell.case.title, "tags": list(cell.case.tags),
                "path": f"{cell.source.path}:{cell.source.line}", "source_api": cell.source_api,
                "api": cell.api, "backend": cell.backend, "device": cell.device, "dtype": cell.dtype,
                "category": cell.mapping.category, "sweep": cell.variant.sweep, "args": cell.target_args,
                "status": None, "difference": None, "max_abs_err": None, "max_rel_err": None,
                "mismatched": None, "message": ""}

    def _case_info(self, cell: Cell, inputs: Optional[Inputs], rec: dict, snippet=None, kind: str = "") -> None:
        """Attach case-level facts to ``rec["case_info"]`` the first time this runner sees them:
        title/path once per case, the input summary once per case, a reproduction snippet once
        per (case, target API). ``results.Writer`` moves them into the document's ``cases`` map,
        so twenty thousand cells do not each carry them. Derivation and training cells have no
        clipping inputs: they pass their ``kind`` and a ``snippet()`` of their own."""
        case = cell.case
        info = rec.get("case_info") or {}
        if ("case", case.id) not in self._emitted:
            self._emitted.add(("case", case.id))
            info.update(title=case.title, path=f"{cell.source.path}:{cell.source.line}",
                        source=case.source, tags=list(case.tags), source_api=cell.source_api,
                        kind=kind or ("model" if case.model is not None else "grads"))
        if inputs is not None and ("inputs", case.id) not in self._emitted:
            self._emitted.add(("inputs", case.id))
            info["inputs"] = summarize_inputs(inputs, cell.dtype)
        if snippet is None and inputs is not None:
            snippet = lambda: repro.snippet(cell, inputs)  # noqa: E731
        if snippet is not None and ("snippet", case.id, cell.api) not in self._emitted:
            self._emitted.add(("snippet", case.id, cell.api))
            info["snippets"] = {cell.api: {"backend": cell.backend, "cell": cell.id, "text": snippet()}}
        if info:
            rec["case_info"] = info

    @staticmethod
    def _done(rec: dict, start: float) -> dict:
        rec["elapsed_ms"] = round((time.perf_counter() - start) * 1000, 3)
        return rec

    def _compare(self, cell: Cell, inputs: Inputs, want, got: dict) -> compare.Comparison:
        mixed = [p["dtype"] for p in inputs.job.get("params", []) if "dtype" in p]
        rtol, atol = compare.tolerance(cell.dtype, cell.case.tolerance, mixed)
        api = self.registry.apis[cell.api]
        source = self.registry.apis[cell.source_api]
        want_grads = dict(zip(inputs.names, want.grads)) if want.grads is not None else dict(inputs.grads)
        norms = api.returns == "total_norm" and source.returns == "total_norm"
        c = compare.compare_outputs(got.get("grads") or {}, want_grads, rtol, atol,
                                    got.get("returned") if norms else None,
                                    want.total_norm if norms else None)
        if inputs.raw is not None and got.get("raw_grads") is not None:
            raw_want = {n: inputs.grads[n] for n in inputs.names}
            r = compare.compare_outputs(got["raw_grads"], raw_want, rtol, atol, label="before clipping: ")
            c.params.update(r.params)
            c.problems[:0] = r.problems
        return c

    def _classify(self, cell: Cell, inputs: Inputs, want, got: dict, rec: dict) -> None:
        def detail(c) -> None:  # the returned norm and the clipping factors, for the report
            rec["total_norm"] = {"got": got.get("returned"), "want": want.total_norm}
            want_grads = dict(zip(inputs.names, want.grads)) if want.grads is not None else {}
            rec["factor"] = clip_factors(inputs.grads, got.get("grads") or {}, want_grads, rec["params"])

        expect = cell.case.expect
        classify(cell, want, got, rec, Hooks(
            oracle=lambda variant: self.oracle(cell, inputs, variant),
            compare=lambda result: self._compare(cell, inputs, result, got),
            expect=lambda raised: compare.check_expect(expect, {} if raised else got.get("grads") or {},
                                                       None if raised else got.get("returned"), raised),
            detail=detail))
