"""The block of a clipping case: injected ``grads:`` (parameter name -> gradient, null = no
gradient), or the shared ``model:`` whose gradients each framework computes. A case that gives
no other kind's mark is a clipping case."""

from __future__ import annotations

from typing import Optional

from ...spec.values import ParamName, TensorValue
from ..interface import Block


def _check(case) -> list:
    """A bare-Tensor call (``clip.form: tensor``) passes one gradient."""
    if case.clip.form == "tensor" and (case.grads is None or len(case.grads) != 1
                                       or next(iter(case.grads.values())) is None):
        return [(("clip", "form"), "`form: tensor` passes one gradient as a bare Tensor: give `grads:` "
                 "with exactly one gradient (not null)")]
    return []


BLOCK = Block(fields={"grads": (Optional[dict[ParamName, Optional[TensorValue]]], None)}, inputs=("grads", "model"),
              check=_check)
