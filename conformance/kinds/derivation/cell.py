"""How a gradient-derivation cell runs (a case with a ``function:`` block; docs/derivation.md):
the function materialised in the cell's dtype, the derivation oracle of the source API, the
arguments translated through a neutral request (``args``: by each API's ``style``), the worker
job, and what is compared: the gradients by name (inputs and weights), and, where the source
returns them and the target returns outputs (``returns: values``), the returned outputs by name
(value_and_grad's value, grad's aux outputs). Main process only: numpy, never a framework."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ... import compare, snippets, tensors
from ...classify import Hooks
from ...spec.values import tensor_data
from ..interface import Kind, Prepared
from . import args as derive_args
from . import oracle


@dataclass
class Function:
    """What a derivation cell's job and snippet are built from: ``fn`` (the function with float64
    arrays rounded to the dtype: ``inputs``/``weights`` as ``[name, array]`` lists, ``ops``,
    ``outputs``), the order in which the target's function returns its ``outputs``, and how
    often the call is made (``repeat``)."""

    fn: dict
    outputs: list
    repeat: int


def materialise(case, dtype: str) -> dict:
    """The function with float64 arrays rounded to ``dtype`` (what every framework receives)."""
    fn = case.function

    def arr(v):
        return tensors.round_to(tensors.materialize(tensor_data(v)), dtype)

    return {"inputs": [[n, arr(v)] for n, v in fn.inputs.items()],
            "weights": [[n, arr(v)] for n, v in fn.weights.items()],
            "ops": [op.model_dump() for op in fn.ops], "outputs": list(fn.outputs)}


def oracle_call(api, args: dict, fn: dict, variant: Optional[dict] = None) -> oracle.DeriveResult:
    """The source API's semantics in float64, optionally with a declared difference's knobs."""
    call = getattr(oracle, api.oracle.fn)
    kwargs = {o: args[a] for o, a in api.oracle.args.items() if a in args}
    return call(fn, **kwargs, **{**api.oracle.knobs, **(variant or {})})


class Derivation(Kind):
    name = "derivation"
    oracle = oracle

    def api_problems(self, api) -> list:
        if api.style not in derive_args.STYLES:
            return [("style", f"a derivation API needs a style, one of {', '.join(derive_args.STYLES)} "
                              f"(how its call names what it differentiates), not {api.style!r}")]
        return []

    def target_args(self, registry, mapping, args: dict, case) -> dict:
        """Through the neutral request: the registry's rules cannot say "grad_position 0 is the
        input named x"."""
        return derive_args.translate(registry.apis[mapping.source].style, registry.apis[mapping.target].style,
                                     args, case.function, mapping.target)

    def prepare(self, runner, cell) -> Prepared:
        case = cell.case
        source, target = runner.registry.apis[cell.source_api], runner.registry.apis[cell.api]
        fn = runner.cached(("derivation-fn", cell.source.path, case.id, cell.dtype),
                           lambda: materialise(case, cell.dtype))
        extras = derive_args.job_extras(source.style, target.style, cell.args, case.function)
        function = Function(fn, extras["fn_outputs"], extras["repeat"])

        def want_under(variant: Optional[dict]):
            key = ("derivation-oracle", cell.source.path, case.id, cell.variant.label(), cell.dtype,
                   cell.source_api, repr(sorted((variant or {}).items())))
            return runner.cached(key, lambda: oracle_call(source, cell.args, fn, variant))

        carried = {"inputs": [[n, tensors.to_carrier(a, cell.dtype)] for n, a in fn["inputs"]],
                   "weights": [[n, tensors.to_carrier(a, cell.dtype)] for n, a in fn["weights"]],
                   "ops": fn["ops"], "outputs": function.outputs}
        job = {"kind": self.name, "api": cell.api, "args": cell.target_args, "dtype": cell.dtype,
               "device": cell.device, "mode": cell.mode, "repeat": function.repeat, "function": carried}
        hooks = Hooks(oracle=want_under,
                      compare=lambda result, got: self._compare(cell, target, result, got),
                      expect=lambda got, raised: compare.check_expect(
                          case.expectations(cell.api), {} if raised else got.get("grads") or {}, None, raised,
                          values=got.get("values") or {}))
        return Prepared(job, want_under(None), hooks, lambda: snippets.snippet(cell, function))

    @staticmethod
    def _compare(cell, target, want: oracle.DeriveResult, got: dict) -> compare.Comparison:
        """Gradients by name; returned outputs where the source returns them and the target can."""
        rtol, atol = compare.tolerance(cell.dtype, cell.case.tolerance)
        c = compare.compare_outputs(got.get("grads") or {}, want.grads or {}, rtol, atol)
        if want.values is not None and target.returns == "values":
            v = compare.compare_outputs(got.get("values") or {}, want.values, rtol, atol, label="value ")
            c.params.update(v.params)
            c.problems += v.problems
        return c


KIND = Derivation()
