"""Run one training-step cell (a case with a ``step:`` block): oracle + worker + classification.

Main process only. The compared outputs are named arrays (``param:<name>``, ``grad:<name>``,
``skipped``, ``scale``; docs/training.md), compared with the dtype's tolerance like gradients.
A cell is ``known`` when a declared difference's knobs, applied to the source's training oracle,
reproduce the framework's outputs.
"""

from __future__ import annotations

from typing import Optional

from . import compare
from .oracle import training
from .plan import Cell


def facts(cell: Cell) -> dict:
    """The cell's facts plus the step's: ``step.micro_batches``, ``step.clip`` (a clip inside
    the step), ``step.group_lr`` (a parameter group sets its own lr), ``step.groups`` (how many
    optimizer parameter groups), ``step.overflow`` (an input scale other than 1)."""
    f = cell.facts()
    st = cell.case.step
    f["step.micro_batches"] = st.micro_batches
    f["step.clip"] = st.max_norm is not None
    f["step.group_lr"] = any(g.lr is not None for g in st.groups or [])
    f["step.groups"] = len(st.groups or [None])
    f["step.overflow"] = any(s != 1 for s in st.input_scales or [])
    return f


def step_job(cell: Cell) -> dict:
    st = cell.case.step.model_dump()
    st["input_scales"] = st["input_scales"] or [1.0] * st["steps"]
    return st


def oracle(runner, cell: Cell, variant: Optional[dict] = None) -> training.TrainResult:
    from .runner import _layer_arrays

    key = ("train", cell.source.path, cell.case.id, cell.variant.label(), cell.dtype, cell.source_api,
           repr(sorted((variant or {}).items())))
    if key in runner._oracle:
        return runner._oracle[key]
    api = runner.registry.apis[cell.source_api]
    inputs = runner.inputs(cell)
    layers = _layer_arrays(cell.case, cell.dtype)
    kwargs = {o: cell.args[a] for o, a in api.oracle.args.items() if a in cell.args}
    st = step_job(cell)
    kwargs.setdefault("lr", st["lr"])  # a scaler source's SGD uses the step's lr, an SGD source its own
    knobs = {**api.oracle.knobs, **(variant or {})}
    fn = getattr(training, api.oracle.fn)
    res = fn(layers, cell.case.model.loss.model_dump(), inputs.values["inputs"], inputs.values["targets"],
             dtype=cell.dtype, steps=st["steps"], micro_batches=st["micro_batches"],
             input_scales=st["input_scales"], max_norm=st["max_norm"], clip_params=st["clip_params"],
             groups=st["groups"], **kwargs, **knobs)
    if len(runner._oracle) > 256:
        runner._oracle.clear()
    runner._oracle[key] = res
    return res


def _compare(cell: Cell, want: training.TrainResult, got: dict) -> compare.Comparison:
    """Outputs a backend declares it cannot observe (``omitted``: output prefix -> why, e.g.
    ``grad`` where the clip happens inside the optimizer) are left out of the comparison."""
    rtol, atol = compare.tolerance(cell.dtype, cell.case.tolerance)
    omitted = tuple(f"{k}:" for k in (got.get("omitted") or {}))
    wanted = {k: v for k, v in want.outputs.items() if not k.startswith(omitted)} if omitted else want.outputs
    return compare.compare_outputs(got.get("outputs") or {}, wanted, rtol, atol)


def run(runner, cell: Cell) -> dict:
    return runner.run_with(cell, lambda c, rec: prepare(runner, c, rec), annotate=lambda rec: rec.update(kind="train"))


def prepare(runner, cell: Cell, rec: dict):
    """A training-step cell: the model inputs, the source's oracle and the worker job
    (Runner.run_with)."""
    inputs = runner.inputs(cell)
    want = oracle(runner, cell)
    job = {"kind": "train", "api": cell.api, "args": cell.target_args, "dtype": cell.dtype,
           "device": cell.device, "model": inputs.job["model"], "step": step_job(cell)}
    runner._case_info(cell, None, rec, snippet=lambda: _snippet(cell, inputs), kind="training")
    return (job, lambda got: classify(runner, cell, want, got, rec), lambda: _snippet(cell, inputs))


def _snippet(cell: Cell, inputs) -> str:
    try:
        from .repro import train_snippet

        return train_snippet.snippet(cell, inputs)
    except Exception as e:  # a snippet must never break a run
        return f"# could not build a reproduction snippet: {type(e).__name__}: {e}\n"


def classify(runner, cell: Cell, want, got: dict, rec: dict) -> None:
    f = facts(cell)
    diffs = [d for d in cell.mapping.differences if d.applies(f)]
    raised = got.get("raised")
    if raised:
        text = f"{raised['type']}: {raised['message']}"
        for u in cell.mapping.unsupported:
            if not u.undefined and u.applies(f, text):
                rec.update(status="unsupported", message=f"{u.reason} ({text})")
                return
        rec.update(status="error", message=f"raised where the source step returns: {text}")
        return
    c = _compare(cell, want, got)
    rec.update(c.totals())
    rec["params"] = {k: m.as_dict() for k, m in c.params.items()}
    notes = "; ".join(f"not compared: {k} ({why})" for k, why in (got.get("omitted") or {}).items())
    if c.ok:
        rec.update(status="match", message=notes)
        return
    for d in diffs:
        alt = oracle(runner, cell, d.variant)
        if _compare(cell, alt, got).ok:
            rec.update(status="known", difference=d.id, message="; ".join(filter(None, [d.text, notes])))
            return
    rec.update(status="mismatch", message="; ".join(filter(None, [c.summary(), notes])))

