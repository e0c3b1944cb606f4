"""How a training-step cell runs (a case with a ``step:`` block; docs/training.md): the model's
arrays, the source's training oracle, the worker job, and what is compared: named arrays
(``param:<name>``, ``grad:<name>``, ``skipped``, ``scale``) with the dtype's tolerance, like
gradients, leaving out the outputs a backend declares it cannot observe. Main process only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ... import compare, snippets
from ...classify import Hooks
from ...spec.models import model_arrays, model_job
from ..interface import Kind, Prepared
from . import oracle


@dataclass
class Model:
    """What a training cell's job and snippet are built from: the materialised ``layers`` (torch
    layout), ``inputs`` and ``targets`` (rounded to the dtype), and the ``step`` as the worker
    receives it (``input_scales`` filled in)."""

    layers: list
    inputs: np.ndarray
    targets: Optional[np.ndarray]
    step: dict


def step_job(step) -> dict:
    """The case's ``step:`` as plain data, one input scale per step."""
    st = step.model_dump()
    st["input_scales"] = st["input_scales"] or [1.0] * st["steps"]
    return st


class Training(Kind):
    name = "training"
    oracle = oracle

    def facts(self, cell) -> dict:
        """``step.micro_batches``, ``step.clip`` (a clip inside the step), ``step.group_lr`` (a
        parameter group sets its own lr), ``step.groups`` (how many optimizer parameter groups),
        ``step.overflow`` (an input scale other than 1)."""
        st = cell.case.step
        return {"step.micro_batches": st.micro_batches, "step.clip": st.max_norm is not None,
                "step.group_lr": any(g.lr is not None for g in st.groups or []),
                "step.groups": len(st.groups or [None]),
                "step.overflow": any(s != 1 for s in st.input_scales or [])}

    def prepare(self, runner, cell) -> Prepared:
        case = cell.case
        model = runner.cached(("training-model", cell.source.path, case.id, cell.dtype),
                              lambda: Model(*model_arrays(case.model, cell.dtype), step_job(case.step)))
        source = runner.registry.apis[cell.source_api]
        loss = case.model.loss.model_dump()

        def want_under(variant: Optional[dict]):
            key = ("training-oracle", cell.source.path, case.id, cell.variant.label(), cell.dtype,
                   cell.source_api, repr(sorted((variant or {}).items())))
            return runner.cached(key, lambda: self._oracle(source, cell, model, loss, variant))

        job = {"kind": self.name, "api": cell.api, "args": cell.target_args, "dtype": cell.dtype,
               "device": cell.device, "mode": cell.mode, "model": model_job(model.layers, loss, model.inputs, model.targets, cell.dtype),
               "step": model.step}
        hooks = Hooks(oracle=want_under,
                      compare=lambda result, got: self._compare(cell, result, got),
                      expect=lambda got, raised: compare.check_expect(case.expectations(cell.api), {}, None, raised),
                      note=lambda got: "; ".join(f"not compared: {k} ({why})"
                                                 for k, why in (got.get("omitted") or {}).items()))
        return Prepared(job, want_under(None), hooks, lambda: snippets.snippet(cell, model))

    @staticmethod
    def _oracle(source, cell, model: Model, loss: dict, variant: Optional[dict]) -> oracle.TrainResult:
        knobs = {**source.oracle.knobs, **(variant or {})}
        if knobs.get("raises"):  # the source raises that type here
            return oracle.TrainResult({}, raises=knobs["raises"])
        st = model.step
        kwargs = {o: cell.args[a] for o, a in source.oracle.args.items() if a in cell.args}
        kwargs.setdefault("lr", st["lr"])  # a scaler source's SGD uses the step's lr, an SGD source its own
        fn = getattr(oracle, source.oracle.fn)
        return fn(model.layers, loss, model.inputs, model.targets, dtype=cell.dtype, steps=st["steps"],
                  micro_batches=st["micro_batches"], input_scales=st["input_scales"], max_norm=st["max_norm"],
                  clip_params=st["clip_params"], groups=st["groups"], **kwargs, **knobs)

    @staticmethod
    def _compare(cell, want: oracle.TrainResult, got: dict) -> compare.Comparison:
        """Outputs a backend declares it cannot observe (``omitted``: output prefix -> why, e.g.
        ``grad`` where the clip happens inside the optimizer) are left out of the comparison."""
        rtol, atol = compare.tolerance(cell.dtype, cell.case.tolerance)
        omitted = tuple(f"{k}:" for k in (got.get("omitted") or {}))
        wanted = {k: v for k, v in want.outputs.items() if not k.startswith(omitted)} if omitted else want.outputs
        return compare.compare_outputs(got.get("outputs") or {}, wanted, rtol, atol)


KIND = Training()
