"""Networks from a job's ``model`` in plain ``jax.numpy`` (worker side only): a pure function of a
params dict ``{"<layer name>.weight": array, ...}`` (torch layout, the cell's exact weights, as
conformance/oracle/network.py defines the layers and losses), differentiated with ``jax.grad``.
There is no module library here on purpose: flax/haiku are not what is under test."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .tensors import array


def params(model: dict, dtype) -> dict:
    """``{name: array}`` of the network's parameters, in layer order, weight before bias."""
    out = {}
    for layer in model["layers"]:
        if layer["type"] in ("linear", "conv2d", "embedding"):
            out[f"{layer['name']}.weight"] = array(layer["weight"], dtype)
            if layer["type"] != "embedding" and layer.get("bias") is not None:
                out[f"{layer['name']}.bias"] = array(layer["bias"], dtype)
    return out


def _layer(layer: dict, p: dict, x):
    kind, name = layer["type"], layer["name"]
    bias = p.get(f"{name}.bias")
    if kind == "linear":  # y = x @ W.T + b, W [out, in]
        y = x @ p[f"{name}.weight"].T
        return y if bias is None else y + bias
    if kind == "conv2d":  # NCHW cross-correlation, OIHW weights, zero padding
        ph, pw = layer["padding"]
        y = jax.lax.conv_general_dilated(x, p[f"{name}.weight"], window_strides=tuple(layer["stride"]),
                                         padding=[(ph, ph), (pw, pw)],
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return y if bias is None else y + bias[None, :, None, None]
    if kind == "embedding":
        return p[f"{name}.weight"][x]
    if kind == "relu":
        return jax.nn.relu(x)  # derivative 0 at 0, as torch (jnp.maximum would give 0.5)
    if kind == "tanh":
        return jnp.tanh(x)
    if kind == "sigmoid":
        return jax.nn.sigmoid(x)
    if kind == "flatten":
        return x.reshape(x.shape[0], -1)
    raise ValueError(f"unknown layer type {kind!r}")


def _loss(spec: dict, out, targets):
    red = spec.get("reduction", "mean") or "mean"
    kind = spec["type"]
    if kind == "cross_entropy":  # logits [N, C], int class indices [N]
        logp = jax.nn.log_softmax(out, axis=-1)
        per = -jnp.take_along_axis(logp, targets.reshape(-1, 1), axis=-1)[:, 0]
    elif kind == "mse":
        per = (out - targets) ** 2
    elif kind == "l1":
        per = jnp.abs(out - targets)
    else:  # "sum": the output itself
        per = out
    return per.sum() if red == "sum" else per.mean()


def loss_fn(model: dict):
    """``loss(params, inputs, targets)``: the network's forward pass and the case's loss."""
    def loss(p, x, y):
        for layer in model["layers"]:
            x = _layer(layer, p, x)
        return _loss(model["loss"], x, y)
    return loss
