"""Paddle network layers and losses built from a job's materialised model spec (worker side
only; the clipping kind differentiates the network, the training kind steps it).

``paddle.nn.Linear`` stores its weight as ``[in, out]``: the torch-layout weight is transposed
in, and each layer reports which of its parameters are transposed, so the kinds hand results
back in torch layout. stdlib + numpy + paddle only.
"""

from __future__ import annotations

import numpy as np
import paddle

from .tensors import tensor


def layer(spec: dict, dtype: str):
    """(paddle layer, [(suffix, parameter, transpose)])."""
    kind = spec["type"]
    has_bias = spec.get("bias") is not None
    if kind == "linear":
        m = paddle.nn.Linear(spec["in"], spec["out"], bias_attr=None if has_bias else False)
        weight = np.asarray(spec["weight"], dtype=np.float64).T  # torch [out, in] -> paddle [in, out]
        transpose = True
    elif kind == "conv2d":
        m = paddle.nn.Conv2D(spec["in"], spec["out"], tuple(spec["kernel"]),
                             stride=tuple(spec["stride"]), padding=tuple(spec["padding"]),
                             bias_attr=None if has_bias else False)
        weight, transpose = spec["weight"], False
    elif kind == "embedding":
        m = paddle.nn.Embedding(spec["num"], spec["dim"])
        weight, transpose = spec["weight"], False
    else:
        return {"relu": paddle.nn.ReLU, "tanh": paddle.nn.Tanh, "sigmoid": paddle.nn.Sigmoid,
                "flatten": paddle.nn.Flatten}[kind](), []
    if dtype != "float32":
        m.to(dtype=dtype)
    m.weight.set_value(tensor(weight, dtype))
    params = [("weight", m.weight, transpose)]
    if has_bias:
        m.bias.set_value(tensor(spec["bias"], dtype))
        params.append(("bias", m.bias, False))
    return m, params


def loss(spec: dict, out, targets):
    red = spec.get("reduction", "mean")
    kind = spec["type"]
    F = paddle.nn.functional
    if kind == "cross_entropy":
        return F.cross_entropy(out, targets, reduction=red)
    if kind == "mse":
        return F.mse_loss(out, targets, reduction=red)
    if kind == "l1":
        return F.l1_loss(out, targets, reduction=red)
    return out.sum() if red == "sum" else out.mean()
