"""The `step:` block of a training-step case: validation with file:line errors, planning."""

from __future__ import annotations

from conformance import registry
from conformance.plan import plan
from conformance.spec.load import parse_text

MODEL = """model:
  layers:
    - {type: linear, in: 2, out: 1}
  loss: {type: mse}
  inputs: {random: normal, shape: [4, 2]}
  targets: {fill: 0, shape: [4, 1]}
"""


def _load(body: str):
    return parse_text(body, "case.yaml")


def test_a_valid_step_case_plans_one_cell_per_target():
    text = ("id: t\ntitle: t\ndevices: [cpu]\n" + MODEL +
            "clip: {api: torch.amp.GradScaler, args: {init_scale: 1024.0}}\n"
            "step: {steps: 2, micro_batches: 2, max_norm: 1.0}\n")
    res = _load(text)
    assert not res.errors
    st = res.cases[0].case.step
    assert (st.steps, st.micro_batches, st.max_norm, st.lr) == (2, 2, 1.0, 0.1)
    p = plan(res.cases, registry.load())
    assert not p.errors
    assert sorted(c.api for c in p.cells) == ["mindspore.amp.DynamicLossScaler",
                                             "mindspore.amp.StaticLossScaler",
                                             "paddle.amp.GradScaler", "torch.amp.GradScaler"]
    ms = next(c for c in p.cells if c.api == "mindspore.amp.DynamicLossScaler")
    # scale_factor is an int in MindSpore: an integral growth_factor converts
    assert ms.target_args == {"scale_value": 1024.0, "scale_factor": 2, "scale_window": 2000}
    assert isinstance(ms.target_args["scale_factor"], int)


def test_input_scales_must_have_one_value_per_step():
    text = ("id: t\ntitle: t\n" + MODEL + "clip: {api: torch.optim.SGD, args: {lr: 0.1}}\n"
            "step:\n  steps: 3\n  input_scales: [1.0, 2.0]\n")
    res = _load(text)
    assert [str(e) for e in res.errors] == [
        "case.yaml:12: step.input_scales: 2 values for 3 steps (one input scale per step)"]


def test_step_needs_a_model_and_unknown_step_fields_are_named():
    text = ("id: t\ntitle: t\ngrads: {w: [1.0]}\nclip: {api: torch.optim.SGD, args: {lr: 0.1}}\n"
            "step: {steps: 1}\n")
    errs = [str(e) for e in _load(text).errors]
    assert errs == ["case.yaml:1: a `step:` case needs `model:` (each framework differentiates it)"]
    text = ("id: t\ntitle: t\n" + MODEL + "clip: {api: torch.optim.SGD, args: {lr: 0.1}}\n"
            "step:\n  steps: 1\n  micro_batch: 2\n")
    errs = [str(e) for e in _load(text).errors]
    assert errs == ["case.yaml:12: step.micro_batch: unknown field (did you mean 'micro_batches'?)"]


def test_a_group_needs_parameters():
    text = ("id: t\ntitle: t\n" + MODEL + "clip: {api: torch.optim.SGD, args: {lr: 0.1}}\n"
            "step:\n  groups:\n    - {lr: 0.1}\n")
    errs = [str(e) for e in _load(text).errors]
    assert errs == ["case.yaml:12: step.groups[0].params: required field is missing"]


def test_micro_batches_must_divide_the_batch():
    text = ("id: t\ntitle: t\n" + MODEL + "clip: {api: torch.optim.SGD, args: {lr: 0.1}}\n"
            "step: {micro_batches: 3}\n")
    errs = [str(e) for e in _load(text).errors]
    # the line of step.micro_batches (the training kind's check names its field)
    assert errs == ["case.yaml:10: step.micro_batches: 3 does not divide the batch of 4 inputs "
                    "into equal micro-batches"]
