"""Float64 forward pass and hand-written backward pass of the suite's layer and loss set.

This is the reference for "what gradients should the framework have computed": every layer
is one forward function and one backward function, checked in the unit tests against central
finite differences (``finite_difference_grads``). numpy and the standard library only.

Layers are the materialised mappings of ``docs/ARCHITECTURE.md`` (weights in torch layout):

* ``linear``    ``y = x @ W.T + b``; ``x`` is ``[..., in]``, ``W`` is ``[out, in]``.
* ``conv2d``    NCHW cross-correlation, zero padding, no dilation or groups (``nn.Conv2d``):
  ``y[n,o,i,j] = b[o] + sum_{c,u,v} W[o,c,u,v] * xpad[n, c, i*sh + u, j*sw + v]``.
* ``relu``      ``max(x, 0)``; its derivative at exactly 0 is 0 (as torch).
* ``tanh``, ``sigmoid``  elementwise; ``sigmoid(x) = 1 / (1 + exp(-x))``.
* ``flatten``   ``x.reshape(N, -1)``: every dimension from 1 on (``nn.Flatten``).
* ``embedding`` ``y = W[idx]`` for int64 indices of any shape (output ``idx.shape + (D,)``);
  ``dW[k] = sum of dy over the positions where idx == k`` (repeated indices accumulate).
  It has no input gradient, so it must be the first layer.

Parameters are named ``"<layer name>.weight"`` and ``"<layer name>.bias"`` (no bias entry when
the layer's ``bias`` is None), in layer order, weight before bias.

Losses (``{"type": ..., "reduction": "mean" | "sum"}``, mean by default) reduce to a scalar:

* ``cross_entropy``  logits ``z [N, C]``, int64 class indices ``t [N]``:
  ``l_n = logsumexp(z_n) - z_n[t_n]``; ``dl_n/dz_n = softmax(z_n) - onehot(t_n)``.
* ``mse``  ``(out - target)**2`` per element; derivative ``2 (out - target)``.
* ``l1``   ``|out - target|`` per element; derivative ``sign(out - target)``, ``sign(0) = 0``.
* ``sum``  ``out`` itself per element (targets ignored); derivative 1.

``mean`` divides the summed per-element (per-sample for ``cross_entropy``) losses by their
count, and so divides the derivative by the same count.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np


@dataclass
class NetworkResult:
    """The scalar loss, the network output (before the loss) and ``{param name: gradient}``."""

    loss: float
    output: np.ndarray
    grads: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- parameters


def param_names(layer: dict) -> list:
    """``["<name>.weight", "<name>.bias"]`` for the parameters this layer has, in order."""
    if layer["type"] not in ("linear", "conv2d", "embedding"):
        return []
    names = [f"{layer['name']}.weight"]
    if layer.get("bias") is not None:
        names.append(f"{layer['name']}.bias")
    return names


def _pair(v) -> tuple:
    """``3`` -> ``(3, 3)``; ``[1, 2]`` -> ``(1, 2)``."""
    if np.ndim(v) == 0:
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


# --------------------------------------------------------------------------- layers
# Each forward returns (y, cache); each backward takes (layer, cache, dy) and returns
# (dx or None, {param name: grad}).


def _linear_forward(layer, x):
    """``y = x @ W.T + b``."""
    x = _f64(x)
    y = x @ _f64(layer["weight"]).T
    if layer.get("bias") is not None:
        y = y + _f64(layer["bias"])
    return y, x


def _linear_backward(layer, x, dy):
    """``dx = dy @ W``; ``dW = sum over leading dims of dy^T x``; ``db = sum of dy``."""
    w = _f64(layer["weight"])
    grads = {f"{layer['name']}.weight": dy.reshape(-1, w.shape[0]).T @ x.reshape(-1, w.shape[1])}
    if layer.get("bias") is not None:
        grads[f"{layer['name']}.bias"] = dy.reshape(-1, w.shape[0]).sum(axis=0)
    return dy @ w, grads


def _conv2d_forward(layer, x):
    """Cross-correlation by im2col: ``cols[n,c,i,j,u,v] = xpad[n, c, i*sh+u, j*sw+v]``."""
    x = _f64(x)
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    w = _f64(layer["weight"])
    kh, kw = w.shape[2:]
    sh, sw = _pair(layer.get("stride", 1))
    ph, pw = _pair(layer.get("padding", 0))
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    y = np.einsum("ncijuv,ocuv->noij", cols, w, optimize=True)
    if layer.get("bias") is not None:
        y = y + _f64(layer["bias"])[None, :, None, None]
    return (y[0] if unbatched else y), (x.shape, xp.shape, cols, unbatched)


def _conv2d_backward(layer, cache, dy):
    """``dW = sum dy * cols``; ``dx`` scatters ``dy * W`` back over each window, then unpads."""
    x_shape, xp_shape, cols, unbatched = cache
    if unbatched:
        dy = dy[None]
    w = _f64(layer["weight"])
    kh, kw = w.shape[2:]
    sh, sw = _pair(layer.get("stride", 1))
    ph, pw = _pair(layer.get("padding", 0))
    grads = {f"{layer['name']}.weight": np.einsum("noij,ncijuv->ocuv", dy, cols, optimize=True)}
    if layer.get("bias") is not None:
        grads[f"{layer['name']}.bias"] = dy.sum(axis=(0, 2, 3))
    dcols = np.einsum("noij,ocuv->ncijuv", dy, w, optimize=True)
    dxp = np.zeros(xp_shape)
    oh, ow = dy.shape[2:]
    for u in range(kh):
        for v in range(kw):
            dxp[:, :, u : u + sh * oh : sh, v : v + sw * ow : sw] += dcols[..., u, v]
    dx = dxp[:, :, ph : ph + x_shape[2], pw : pw + x_shape[3]]
    return (dx[0] if unbatched else dx), grads


def _relu_forward(layer, x):
    x = _f64(x)
    return np.maximum(x, 0.0), x


def _relu_backward(layer, x, dy):
    """``dx = dy * (x > 0)``: 0 at exactly 0, as torch."""
    return dy * (x > 0), {}


def _tanh_forward(layer, x):
    y = np.tanh(_f64(x))
    return y, y


def _tanh_backward(layer, y, dy):
    """``dx = dy * (1 - tanh(x)**2)``."""
    return dy * (1.0 - y * y), {}


def _sigmoid_forward(layer, x):
    """Overflow-free: ``1 / (1 + e)`` for x >= 0, ``e / (1 + e)`` otherwise, ``e = exp(-|x|)``."""
    x = _f64(x)
    e = np.exp(-np.abs(x))
    y = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return y, y


def _sigmoid_backward(layer, y, dy):
    """``dx = dy * s * (1 - s)``."""
    return dy * y * (1.0 - y), {}


def _flatten_forward(layer, x):
    x = _f64(x)
    return x.reshape(x.shape[0], -1), x.shape


def _flatten_backward(layer, shape, dy):
    return dy.reshape(shape), {}


def _embedding_forward(layer, idx):
    idx = np.asarray(idx, dtype=np.int64)
    return _f64(layer["weight"])[idx], idx


def _embedding_backward(layer, idx, dy):
    """``np.add.at(dW, idx, dy)``: repeated indices accumulate. No input gradient."""
    w = _f64(layer["weight"])
    dw = np.zeros_like(w)
    np.add.at(dw, idx, dy)
    return None, {f"{layer['name']}.weight": dw}


_LAYERS = {
    "linear": (_linear_forward, _linear_backward),
    "conv2d": (_conv2d_forward, _conv2d_backward),
    "relu": (_relu_forward, _relu_backward),
    "tanh": (_tanh_forward, _tanh_backward),
    "sigmoid": (_sigmoid_forward, _sigmoid_backward),
    "flatten": (_flatten_forward, _flatten_backward),
    "embedding": (_embedding_forward, _embedding_backward),
}


# --------------------------------------------------------------------------- losses


def _loss_value_and_grad(loss: dict, out: np.ndarray, targets) -> tuple:
    """``(scalar loss, d loss / d out)`` for the loss mapping (see the module docstring)."""
    kind = loss["type"]
    reduction = loss.get("reduction", "mean") or "mean"
    if reduction not in ("mean", "sum"):
        raise ValueError(f"unsupported loss reduction {reduction!r} (mean or sum)")
    if kind == "cross_entropy":
        if out.ndim != 2:
            raise ValueError(f"cross_entropy wants logits [N, C], got shape {out.shape}")
        t = np.asarray(targets, dtype=np.int64).reshape(-1)
        n = out.shape[0]
        m = out.max(axis=1, keepdims=True)
        lse = m + np.log(np.exp(out - m).sum(axis=1, keepdims=True))
        per = lse[:, 0] - out[np.arange(n), t]
        d = np.exp(out - lse)  # softmax
        d[np.arange(n), t] -= 1.0
        count = n
    elif kind in ("mse", "l1", "sum"):
        if kind == "sum":
            per, d = out, np.ones_like(out)
        else:
            t = _f64(targets)
            if t.shape != out.shape:
                raise ValueError(f"{kind} wants targets of the output's shape {out.shape}, got {t.shape}")
            diff = out - t
            per, d = (diff * diff, 2.0 * diff) if kind == "mse" else (np.abs(diff), np.sign(diff))
        count = out.size
    else:
        raise ValueError(f"unknown loss type {kind!r}")
    if reduction == "mean":
        return float(per.sum() / count), d / count
    return float(per.sum()), d


# --------------------------------------------------------------------------- network


def _forward(layers, inputs):
    x, caches = inputs, []
    for layer in layers:
        fwd, _ = _LAYERS[layer["type"]]
        x, cache = fwd(layer, x)
        caches.append(cache)
    return x, caches


def forward_backward(layers: list, loss: dict, inputs: np.ndarray, targets: np.ndarray) -> NetworkResult:
    """Run the layers on ``inputs``, reduce with ``loss``, back-propagate by hand, in float64.

    Returns ``NetworkResult(loss, output, grads)`` with ``grads`` ordered as the parameters
    (see ``param_names``). ``targets`` are int64 class indices for ``cross_entropy``, an array
    of the output's shape for ``mse``/``l1``, and ignored for ``sum``.
    """
    for layer in layers:
        if layer["type"] not in _LAYERS:
            raise ValueError(f"unknown layer type {layer['type']!r}")
    out, caches = _forward(layers, inputs)
    value, dy = _loss_value_and_grad(loss, out, targets)
    grads = {}
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        if dy is None:
            raise ValueError(f"layer {layer['name']!r} comes before an embedding, which has no input gradient")
        dy, g = _LAYERS[layer["type"]][1](layer, caches[i], dy)
        grads.update(g)
    ordered = {name: grads[name] for layer in layers for name in param_names(layer)}
    return NetworkResult(loss=value, output=out, grads=ordered)


def finite_difference_grads(layers: list, loss: dict, inputs, targets, h: float = 1e-6) -> dict:
    """Central differences ``(L(p + h) - L(p - h)) / (2h)`` for every element of every parameter.

    The reference for the hand-written backward pass (slow: two forward passes per element).
    ``layers`` are not modified.
    """
    layers = copy.deepcopy(layers)

    def loss_at() -> float:
        out, _ = _forward(layers, inputs)
        return _loss_value_and_grad(loss, out, targets)[0]

    grads = {}
    for layer in layers:
        for name in param_names(layer):
            key = name.rsplit(".", 1)[1]
            p = _f64(layer[key]).copy()
            layer[key] = p
            grads[name] = central_difference(p, loss_at, h)
    return grads


def central_difference(p: np.ndarray, f, h: float = 1e-6) -> np.ndarray:
    """``(f(p + h e_k) - f(p - h e_k)) / (2h)`` for every element ``k`` of ``p``.

    ``f()`` reads ``p``, which is changed in place for each call and restored after."""
    g = np.zeros_like(p)
    for k in np.ndindex(p.shape):
        orig = p[k]
        p[k] = orig + h
        up = f()
        p[k] = orig - h
        down = f()
        p[k] = orig
        g[k] = (up - down) / (2.0 * h)
    return g
