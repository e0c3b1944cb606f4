"""The block of a training-step case: ``step:``, the loop around the clip (``clip.api`` names a
training-step API of the registry) over the case's ``model:`` (docs/training.md)."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import Field, field_validator

from ...spec.models import batch_size
from ...spec.values import Strict
from ..interface import Block


class StepGroup(Strict):
    """An optimizer parameter group: its parameters and the hyper-parameters it overrides."""

    params: Annotated[list[str], Field(min_length=1)]
    lr: Optional[Annotated[float, Field(gt=0)]] = None
    weight_decay: Optional[Annotated[float, Field(ge=0)]] = None


class Step(Strict):
    """A training-step case: the loop around the clip (``clip.api`` names a training-step API of
    the registry). Inputs are split into ``micro_batches`` along the batch dimension; step ``k``
    multiplies them by ``input_scales[k]`` (huge values make that step overflow)."""

    steps: Annotated[int, Field(ge=1, le=50)] = 1
    micro_batches: Annotated[int, Field(ge=1)] = 1
    input_scales: Optional[list[float]] = None
    max_norm: Optional[Annotated[float, Field(gt=0)]] = None  # clip_grad_norm_ inside the step
    clip_params: Optional[list[str]] = None  # parameters clipped (default: all)
    lr: Annotated[float, Field(gt=0)] = 0.1  # the step's SGD (an optimizer source API sets its own)
    groups: Optional[Annotated[list[StepGroup], Field(min_length=1)]] = None

    @field_validator("input_scales")
    @classmethod
    def _one_per_step(cls, v, info):
        steps = info.data.get("steps")  # validated before input_scales (field order)
        if v is not None and steps is not None and len(v) != steps:
            raise ValueError(f"{len(v)} values for {steps} steps (one input scale per step)")
        return v



def _check(case) -> list:
    if case.model is None:
        return [((), "a `step:` case needs `model:` (each framework differentiates it)")]
    batch = batch_size(case.model.inputs)
    if batch is not None and batch % case.step.micro_batches:
        return [(("step", "micro_batches"), f"{case.step.micro_batches} does not divide the batch of "
                                            f"{batch} inputs into equal micro-batches")]
    return []


BLOCK = Block(fields={"step": (Optional[Step], None)}, inputs=("model",), marks=("step",), check=_check)
