"""The block of a clipping case: injected ``grads:`` (parameter name -> gradient, null = no
gradient), or the shared ``model:`` whose gradients each framework computes. A case that gives
no other kind's mark is a clipping case."""

from __future__ import annotations

from typing import Optional

from ...spec.values import ParamName, TensorValue
from ..interface import Block

BLOCK = Block(fields={"grads": (Optional[dict[ParamName, Optional[TensorValue]]], None)}, inputs=("grads", "model"))
