"""Run one gradient-derivation cell: materialise the case's ``function:``, ask the derivation
oracle for the source API's semantics, ask the target's worker, compare, classify.

Called from ``Runner.run`` for cells whose case has a ``function:`` block. The classification
rules are the clipping cells' (docs/ARCHITECTURE.md, "Registry conditions"): a declared
``unsupported`` wins when the target raises; a raise is ``match`` when the source's oracle
raises the same type; a difference whose variant reproduces the target makes it ``known``.
What is compared: the gradients by name (inputs and weights), and, where the source returns
them and the target API returns outputs (``returns: values``), the returned outputs by name
(value_and_grad's value, grad's aux outputs). Main process only: numpy, never a framework.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from . import classify as shared
from . import compare, derive_args, repro, tensors
from .oracle import derivation
from .spec import tensor_data


def materialise(case, dtype: str) -> dict:
    """The function with float64 arrays rounded to ``dtype`` (what every framework receives)."""
    fn = case.function

    def arr(v):
        return tensors.round_to(tensors.materialize(tensor_data(v)), dtype)

    return {"inputs": [[n, arr(v)] for n, v in fn.inputs.items()],
            "weights": [[n, arr(v)] for n, v in fn.weights.items()],
            "ops": [op.model_dump() for op in fn.ops], "outputs": list(fn.outputs)}


def oracle_call(api, args: dict, fn: dict, variant: Optional[dict] = None) -> derivation.DeriveResult:
    """The source API's semantics in float64, optionally with a declared difference's knobs."""
    call = getattr(derivation, api.oracle.fn)
    kwargs = {o: args[a] for o, a in api.oracle.args.items() if a in args}
    return call(fn, **kwargs, **{**api.oracle.knobs, **(variant or {})})


def _cache(runner) -> dict:
    return runner.__dict__.setdefault("_derive_cache", {})


def _function(runner, cell) -> dict:
    key = ("fn", cell.source.path, cell.case.id, cell.dtype)
    cache = _cache(runner)
    if key not in cache:
        if len(cache) > 256:
            cache.clear()
        cache[key] = materialise(cell.case, cell.dtype)
    return cache[key]


def _oracle(runner, cell, fn: dict, variant: Optional[dict] = None):
    key = ("oracle", cell.source.path, cell.case.id, cell.variant.label(), cell.dtype,
           cell.source_api, repr(sorted((variant or {}).items())))
    cache = _cache(runner)
    if key not in cache:
        cache[key] = oracle_call(runner.registry.apis[cell.source_api], cell.args, fn, variant)
    return cache[key]


def job(cell, fn: dict) -> dict:
    """The worker job: docs/derivation.md."""
    extras = derive_args.job_extras(cell.source_api, cell.api, cell.args, cell.case.function)
    carried = {"inputs": [[n, tensors.to_carrier(a, cell.dtype)] for n, a in fn["inputs"]],
               "weights": [[n, tensors.to_carrier(a, cell.dtype)] for n, a in fn["weights"]],
               "ops": fn["ops"], "outputs": extras["fn_outputs"]}
    return {"kind": "derive", "api": cell.api, "args": cell.target_args, "dtype": cell.dtype,
            "device": cell.device, "repeat": extras["repeat"], "function": carried}


def run_cell(runner, cell) -> dict:
    return runner.run_with(cell, lambda c, rec: prepare(runner, c, rec))


def prepare(runner, cell, rec):
    """A derivation cell: the function, the source's oracle and the worker job (Runner.run_with)."""
    fn = _function(runner, cell)
    want = _oracle(runner, cell, fn)
    # case-level facts and one snippet per target API, as clipping cells hand over (the report's
    # case page shows them; cells that match carry no snippet of their own)
    runner._case_info(cell, None, rec, snippet=lambda: repro.snippet(cell, None), kind="derivation")
    return (job(cell, fn), lambda got: classify(runner, cell, fn, want, got, rec),
            lambda: repro.snippet(cell, None))


def compare_result(runner, cell, want: derivation.DeriveResult, got: dict) -> compare.Comparison:
    """Gradients by name; returned outputs where the source returns them and the target can."""
    rtol, atol = compare.tolerance(cell.dtype, cell.case.tolerance)
    c = compare.compare_outputs(got.get("grads") or {}, want.grads or {}, rtol, atol)
    if want.values is not None and runner.registry.apis[cell.api].returns == "values":
        v = compare.compare_outputs(got.get("values") or {}, want.values, rtol, atol, label="value ")
        c.params.update(v.params)
        c.problems += v.problems
    return c


def check_expect(expect, got: dict, raised: bool) -> list:
    """The case's literal numbers: ``expect.grads`` / ``expect.values`` by name, ``raises``."""
    fails = compare.check_expect(expect, got.get("grads") or {}, None, raised)
    if expect is None or raised or expect.values is None:
        return fails
    values = got.get("values") or {}
    for name, want in expect.values.items():
        if name not in values:
            continue  # an API that does not return this output (torch.autograd.grad, say)
        m = compare.compare_arrays(values[name], np.asarray(tensor_data(want), dtype=np.float64), 0.0, expect.atol)
        if m.mismatched:
            fails.append(f"expect.values.{name}: off by more than atol {expect.atol} (worst {m.worst})")
    return fails


def classify(runner, cell, fn: dict, want, got: dict, rec: dict) -> None:
    """The shared rule of conformance.classify, with the derivation oracle and comparison."""
    expect = cell.case.expect
    shared.classify(cell, want, got, rec, shared.Hooks(
        oracle=lambda variant: _oracle(runner, cell, fn, variant),
        compare=lambda result: compare_result(runner, cell, result, got),
        expect=lambda raised: check_expect(expect, {} if raised else got, raised)))
