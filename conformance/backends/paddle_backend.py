"""The Paddle backend: runs one cell's job with the real Paddle API (worker side only, dygraph).

Injected gradients: Paddle has no public setter for ``.grad``, so each parameter is created
with zeros and ``(p * g).sum()`` is back-propagated: ``p.grad`` is then exactly ``g`` (the
upstream gradient of ``sum`` is 1, and ``1 * g == g`` in every dtype, NaN and inf included;
float16/bfloat16 go through a float32 cast, whose backward casts ``g`` back exactly).
A parameter whose gradient is ``None`` takes no part in that loss and keeps ``grad is None``.

Model jobs build ``paddle.nn`` layers from the materialised spec. ``paddle.nn.Linear`` stores
its weight as ``[in, out]``: the torch-layout weight is transposed in, and its gradient
transposed back, so results are always in torch layout.

APIs: ``paddle.nn.utils.clip_grad_norm_`` / ``clip_grad_value_`` (in place on ``.grad``),
and the ``paddle.nn.ClipGradBy*`` objects, called two ways:

* ``paddle.nn.ClipGradByGlobalNorm`` (and ``...ByNorm``, ``...ByValue``): called directly on
  ``[(param, grad), ...]``, the way an optimizer calls it; the gradients are the returned pairs.
* ``paddle.nn.ClipGradByGlobalNorm.via_sgd`` (a suite-only name): handed to
  ``paddle.optimizer.SGD(learning_rate=1.0, parameters=..., grad_clip=clip)`` whose ``step()``
  updates parameters set to zero after the backward pass, so the clipped gradient is exactly
  ``-p`` afterwards.

See docs/ARCHITECTURE.md for the job and result shapes. stdlib + numpy + paddle only.
"""

from __future__ import annotations

import numpy as np
import paddle

NAME = "paddle"
DTYPES = ("float64", "float32", "float16", "bfloat16")
VIA_SGD = ".via_sgd"


def _gpu_reason():
    if not paddle.is_compiled_with_cuda():
        return "paddle.is_compiled_with_cuda() is False (a CPU-only build)"
    try:
        n = paddle.device.cuda.device_count()
    except Exception as e:  # pragma: no cover - depends on the driver
        return f"paddle.device.cuda.device_count() failed: {type(e).__name__}: {e}"
    return None if n > 0 else "no CUDA device visible (paddle.device.cuda.device_count() == 0)"


def info(device: str) -> dict:
    return {
        "version": paddle.__version__,
        "build": f"{paddle.__version__} ({'cuda ' + str(paddle.version.cuda()) if paddle.is_compiled_with_cuda() else 'cpu'},"
                 f" commit {paddle.version.commit[:10]})",
        "devices": {"cpu": None, "gpu": _gpu_reason()},
    }


def _set_device(name: str) -> None:
    paddle.set_device("gpu:0" if name == "gpu" else "cpu")


def _tensor(arr, dtype: str):
    a = np.asarray(arr)
    if a.dtype.kind in "iu":
        return paddle.to_tensor(a.astype(np.int64))
    # float64 -> dtype: exact, the values are already representable in dtype
    t = paddle.to_tensor(np.array(a, dtype=np.float64, order="C"))  # keeps 0-d (ascontiguousarray does not)
    return t if dtype == "float64" else t.astype(dtype)


def _numpy(t):
    if t is None:
        return None
    t = t.detach()
    if t.dtype == paddle.bfloat16:
        t = t.astype("float32")  # exact
    return np.asarray(t.numpy(), dtype=np.float64)


# --- parameters ---------------------------------------------------------------------------------

def _parameter(shape, dtype: str):
    return paddle.create_parameter(shape=list(shape), dtype=dtype,
                                   default_initializer=paddle.nn.initializer.Constant(0.0))


def _injected_params(params: list, dtype: str):
    """[(name, parameter, transpose=False)] whose ``.grad`` equals the job's gradients."""
    named, loss = [], None
    for spec in params:
        pdtype = spec.get("dtype", dtype)  # a parameter's own dtype: mixed dtypes
        p = _parameter(spec["shape"], pdtype)
        if spec["grad"] is not None:
            # float16 has no CPU multiply kernel: go through float32 (the cast's backward
            # casts the float32 gradient back, exactly, as g is representable in dtype)
            wide = "float32" if pdtype in ("float16", "bfloat16") else pdtype
            g = _tensor(spec["grad"], wide)
            g.stop_gradient = True
            term = ((p if wide == pdtype else p.astype(wide)) * g).sum()
            if term.dtype != paddle.float64 and loss is not None and loss.dtype == paddle.float64:
                term = term.astype("float64")  # mixed float32/float64 terms: one loss dtype
            elif loss is not None and loss.dtype != term.dtype:
                loss = loss.astype(term.dtype)
            loss = term if loss is None else loss + term
        else:
            p.stop_gradient = True  # no gradient at all (grad stays None)
        named.append((spec["name"], p, False))
    if loss is not None:
        loss.backward()
    for _, p, _ in named:  # parameters of the optimizer path must be trainable
        p.stop_gradient = False
    return named


# --- models -------------------------------------------------------------------------------------

def _layer(layer: dict, dtype: str):
    """(paddle layer, [(suffix, parameter, transpose)])."""
    kind = layer["type"]
    has_bias = layer.get("bias") is not None
    if kind == "linear":
        m = paddle.nn.Linear(layer["in"], layer["out"], bias_attr=None if has_bias else False)
        weight = np.asarray(layer["weight"], dtype=np.float64).T  # torch [out, in] -> paddle [in, out]
        transpose = True
    elif kind == "conv2d":
        m = paddle.nn.Conv2D(layer["in"], layer["out"], tuple(layer["kernel"]),
                             stride=tuple(layer["stride"]), padding=tuple(layer["padding"]),
                             bias_attr=None if has_bias else False)
        weight, transpose = layer["weight"], False
    elif kind == "embedding":
        m = paddle.nn.Embedding(layer["num"], layer["dim"])
        weight, transpose = layer["weight"], False
    else:
        return {"relu": paddle.nn.ReLU, "tanh": paddle.nn.Tanh, "sigmoid": paddle.nn.Sigmoid,
                "flatten": paddle.nn.Flatten}[kind](), []
    if dtype != "float32":
        m.to(dtype=dtype)
    m.weight.set_value(_tensor(weight, dtype))
    params = [("weight", m.weight, transpose)]
    if has_bias:
        m.bias.set_value(_tensor(layer["bias"], dtype))
        params.append(("bias", m.bias, False))
    return m, params


def _loss(spec: dict, out, targets):
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


def _model_params(model: dict, dtype: str):
    layers, named = [], []
    for spec in model["layers"]:
        m, params = _layer(spec, dtype)
        layers.append((spec["name"], m))
        named += [(f"{spec['name']}.{suffix}", p, tr) for suffix, p, tr in params]
    net = paddle.nn.Sequential(*layers)
    inputs = _tensor(model["inputs"], dtype)
    targets = None if model.get("targets") is None else _tensor(model["targets"], dtype)
    _loss(model["loss"], net(inputs), targets).backward()
    return named


def _grad(p, transpose: bool):
    g = _numpy(p.grad)
    return g.T.copy() if (g is not None and transpose) else g


# --- APIs ---------------------------------------------------------------------------------------

CLIP_CLASSES = ("paddle.nn.ClipGradByGlobalNorm", "paddle.nn.ClipGradByNorm", "paddle.nn.ClipGradByValue")


def _clip_object(api: str, args: dict):
    cls = getattr(paddle.nn, api.rsplit(".", 1)[1])
    return cls(**{k: v for k, v in args.items() if not (k == "min" and v is None)})


def _call(api: str, named: list, args: dict):
    """Runs ``api``; returns (gradients by name, returned norm or None)."""
    params = [p for _, p, _ in named]
    if api == "paddle.nn.utils.clip_grad_norm_":
        out = paddle.nn.utils.clip_grad_norm_(params, **args)
        return {n: _grad(p, tr) for n, p, tr in named}, float(_numpy(out).reshape(-1)[0])
    if api == "paddle.nn.utils.clip_grad_value_":
        paddle.nn.utils.clip_grad_value_(params, **args)
        return {n: _grad(p, tr) for n, p, tr in named}, None
    if api in CLIP_CLASSES:
        clip = _clip_object(api, args)
        pairs = [(p, p.grad) for p in params if p.grad is not None]
        out = {id(p): g for p, g in clip(pairs)}
        grads = {}
        for n, p, tr in named:
            g = _numpy(out[id(p)]) if id(p) in out else _numpy(p.grad)
            grads[n] = g.T.copy() if (g is not None and tr) else g
        return grads, None
    if api.endswith(VIA_SGD) and api[: -len(VIA_SGD)] in CLIP_CLASSES:
        clip = _clip_object(api[: -len(VIA_SGD)], args)
        had = [p.grad is not None for p in params]
        for p in params:  # model weights are not zero: zero them now (the gradients are computed)
            p.set_value(paddle.zeros(p.shape, dtype=p.dtype))
        opt = paddle.optimizer.SGD(learning_rate=1.0, parameters=params, grad_clip=clip)
        opt.step()
        grads = {}
        for (n, p, tr), h in zip(named, had):
            # p was 0 before the step: p_new = 0 - 1.0 * clipped, exactly
            g = -_numpy(p) if h else None
            grads[n] = g.T.copy() if (g is not None and tr) else g
        return grads, None
    raise NotImplementedError(f"the paddle backend does not know {api}")


def run(job: dict) -> dict:
    if job.get("kind") == "derive":  # gradient-derivation APIs (docs/derivation.md)
        from . import paddle_derive

        return paddle_derive.run(job)
    dtype = job["dtype"]
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}")
    _set_device(job["device"])
    if job.get("kind") == "train":  # a training-step job (docs/training.md)
        from . import paddle_train

        return paddle_train.run(job)
    if "model" in job:
        try:
            named = _model_params(job["model"], dtype)
        except Exception as e:  # e.g. a kernel without this dtype on this device
            return {"grads": {}, "raw_grads": None, "returned": None,
                    "raised": {"type": type(e).__name__,
                               "message": f"building/differentiating the model: {e}"}}
        raw = {n: _grad(p, tr) for n, p, tr in named}
    else:
        named = _injected_params(job["params"], dtype)
        raw = None
    try:
        grads, returned = _call(job["api"], named, job["args"])
    except NotImplementedError:
        raise
    except Exception as e:  # the API under test raised: a behaviour, reported to the comparator
        return {"grads": {n: _grad(p, tr) for n, p, tr in named}, "raw_grads": raw,
                "returned": None, "raised": {"type": type(e).__name__, "message": str(e)}}
    return {"grads": grads, "raw_grads": raw, "returned": returned, "raised": None}
