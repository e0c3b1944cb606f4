"""Networks from a job's ``model`` in plain TensorFlow ops (worker side only): a function of a
``{"<layer name>.weight": tf.Variable, ...}`` dict (torch layout, the cell's exact weights, as
conformance/oracle/network.py defines the layers and losses), differentiated with
``tf.GradientTape``. Keras layers are not used on purpose: their kernels are [in, out] and their
losses have their own reductions; what is under test is the clipping, not Keras' layer library.

TensorFlow's CPU ``tf.nn.conv2d`` computes NHWC only ("The Conv2D op currently only supports the
NHWC tensor format on the CPU"), so a conv2d layer transposes its NCHW input to NHWC and its
OIHW weight to HWIO, and its output back to NCHW (so that a following flatten reads torch's order).
"""

from __future__ import annotations

import tensorflow as tf

from .tensors import tensor


def variables(model: dict, dtype) -> dict:
    """``{name: tf.Variable}`` of the network's parameters, in layer order, weight before bias."""
    out = {}
    for layer in model["layers"]:
        if layer["type"] in ("linear", "conv2d", "embedding"):
            out[f"{layer['name']}.weight"] = tf.Variable(tensor(layer["weight"], dtype), name=f"{layer['name']}.weight")
            if layer["type"] != "embedding" and layer.get("bias") is not None:
                out[f"{layer['name']}.bias"] = tf.Variable(tensor(layer["bias"], dtype), name=f"{layer['name']}.bias")
    return out


def _layer(layer: dict, p: dict, x):
    kind, name = layer["type"], layer["name"]
    bias = p.get(f"{name}.bias")
    if kind == "linear":  # y = x @ W.T + b, W [out, in]
        y = tf.linalg.matmul(x, p[f"{name}.weight"], transpose_b=True)
        return y if bias is None else y + bias
    if kind == "conv2d":  # NCHW cross-correlation, OIHW weights, zero padding (computed in NHWC)
        ph, pw = layer["padding"]
        unbatched = len(x.shape) == 3
        if unbatched:
            x = x[None]
        w = tf.transpose(p[f"{name}.weight"], [2, 3, 1, 0])  # OIHW -> HWIO
        y = tf.nn.conv2d(tf.transpose(x, [0, 2, 3, 1]), w, strides=[1, *layer["stride"], 1],
                         padding=[[0, 0], [ph, ph], [pw, pw], [0, 0]])
        if bias is not None:
            y = y + bias
        y = tf.transpose(y, [0, 3, 1, 2])
        return y[0] if unbatched else y
    if kind == "embedding":
        return tf.gather(p[f"{name}.weight"], x)
    if kind == "relu":
        return tf.nn.relu(x)  # derivative 0 at 0, as torch
    if kind == "tanh":
        return tf.math.tanh(x)
    if kind == "sigmoid":
        return tf.math.sigmoid(x)
    if kind == "flatten":
        return tf.reshape(x, [x.shape[0], -1])
    raise ValueError(f"unknown layer type {kind!r}")


def _loss(spec: dict, out, targets):
    red = spec.get("reduction", "mean") or "mean"
    kind = spec["type"]
    if kind == "cross_entropy":  # logits [N, C], int class indices [N]
        per = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.reshape(targets, [-1]), logits=out)
    elif kind == "mse":
        per = tf.math.square(out - targets)
    elif kind == "l1":
        per = tf.math.abs(out - targets)
    else:  # "sum": the output itself
        per = out
    return tf.reduce_sum(per) if red == "sum" else tf.reduce_mean(per)


def gradients(model: dict, dtype) -> tuple:
    """``(names, raw gradients as dense tensors)``: the loss's ``tf.GradientTape`` gradients with
    respect to every parameter. An embedding's gradient (``tf.IndexedSlices`` from ``tf.gather``)
    is made dense, as ``tf.convert_to_tensor`` does: the clipping APIs under test accept both."""
    params = variables(model, dtype)
    x = tensor(model["inputs"], dtype)
    y = None if model.get("targets") is None else tensor(model["targets"], dtype)
    with tf.GradientTape() as tape:
        for layer in model["layers"]:
            x = _layer(layer, params, x)
        value = _loss(model["loss"], x, y)
    grads = tape.gradient(value, list(params.values()))
    return list(params), [None if g is None else tf.convert_to_tensor(g) for g in grads]
