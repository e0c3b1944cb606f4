"""The torch backend: runs one cell's job with the real torch API (worker side only).

Injected gradients are set as ``p.grad``; model jobs build ``torch.nn`` modules from the spec and
differentiate with ``loss.backward()``. See docs/ARCHITECTURE.md for the job and result shapes.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

NAME = "torch"
DTYPES = {"float64": torch.float64, "float32": torch.float32,
          "float16": torch.float16, "bfloat16": torch.bfloat16}


def info(device: str) -> dict:
    cuda = torch.cuda.is_available()
    return {
        "version": torch.__version__.split("+")[0],
        "build": torch.__version__,
        "devices": {"cpu": None, "gpu": None if cuda else
                    "torch.cuda.is_available() is False (no CUDA device or a CPU-only build)"},
    }


def _device(name: str) -> torch.device:
    return torch.device("cuda" if name == "gpu" else "cpu")


def _tensor(arr, dtype, device) -> torch.Tensor:
    a = np.asarray(arr)
    if a.dtype.kind in "iu":
        return torch.from_numpy(a.astype(np.int64)).to(device)
    # np.array, not ascontiguousarray: that one turns a 0-d gradient into shape [1]
    return torch.from_numpy(np.array(a, dtype=np.float64, order="C")).to(device=device, dtype=dtype)


def _numpy(t) -> np.ndarray | None:
    # copy: for a float64 CPU tensor .to() is a no-op and .numpy() shares memory, so an
    # in-place clip would rewrite the "before clipping" gradients read earlier
    return None if t is None else t.detach().to("cpu", torch.float64).numpy().copy()


# --- models -----------------------------------------------------------------------------------

def _module(layer: dict, dtype, device) -> torch.nn.Module:
    kind = layer["type"]
    if kind == "linear":
        m = torch.nn.Linear(layer["in"], layer["out"], bias=layer["bias"] is not None)
    elif kind == "conv2d":
        m = torch.nn.Conv2d(layer["in"], layer["out"], tuple(layer["kernel"]),
                            stride=tuple(layer["stride"]), padding=tuple(layer["padding"]),
                            bias=layer["bias"] is not None)
    elif kind == "embedding":
        m = torch.nn.Embedding(layer["num"], layer["dim"])
    else:
        return {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
                "flatten": torch.nn.Flatten}[kind]()
    m = m.to(device=device, dtype=dtype)
    with torch.no_grad():
        m.weight.copy_(_tensor(layer["weight"], dtype, device))
        if layer.get("bias") is not None:
            m.bias.copy_(_tensor(layer["bias"], dtype, device))
    return m


def _loss(spec: dict, out, targets):
    red = spec.get("reduction", "mean")
    kind = spec["type"]
    if kind == "cross_entropy":
        return torch.nn.functional.cross_entropy(out, targets, reduction=red)
    if kind == "mse":
        return torch.nn.functional.mse_loss(out, targets, reduction=red)
    if kind == "l1":
        return torch.nn.functional.l1_loss(out, targets, reduction=red)
    return out.sum() if red == "sum" else out.mean()


def _model_params(model: dict, dtype, device):
    net = torch.nn.Sequential(OrderedDict(
        (layer["name"], _module(layer, dtype, device)) for layer in model["layers"]))
    inputs = _tensor(model["inputs"], dtype, device)
    targets = None
    if model.get("targets") is not None:
        targets = _tensor(model["targets"], dtype, device)
    out = net(inputs)
    _loss(model["loss"], out, targets).backward()
    return list(net.named_parameters())


def _injected_params(params: list, dtype, device):
    named = []
    for p in params:
        pdtype = DTYPES[p["dtype"]] if "dtype" in p else dtype  # mixed dtypes
        t = torch.zeros(p["shape"], dtype=pdtype, device=device, requires_grad=True)
        if p["grad"] is not None:
            t.grad = _tensor(p["grad"], pdtype, device)
        named.append((p["name"], t))
    return named


# --- APIs -------------------------------------------------------------------------------------

def _call(api: str, params: list, args: dict):
    from torch.nn import utils

    if api == "torch.nn.utils.clip_grad_norm_":
        return utils.clip_grad_norm_(params, **args)
    if api == "torch.nn.utils.clip_grad_value_":
        return utils.clip_grad_value_(params, **args)
    if api == "torch.nn.utils.clip_grad_norm_.per_parameter":
        # composite: each parameter clipped by its own norm (a per-tensor source such as
        # mindspore.nn.ClipByNorm / paddle.nn.ClipGradByNorm); nothing is returned
        for p in params:
            if p.grad is not None:
                utils.clip_grad_norm_([p], **args)
        return None
    if api == "torch.clamp":
        # composite: every gradient clamped in place into [min, max] (an absent bound: None)
        for p in params:
            if p.grad is not None:
                p.grad.clamp_(**args)
        return None
    if api == "torch.nn.utils.get_total_norm":
        return utils.get_total_norm([p.grad for p in params if p.grad is not None], **args)
    if api == "torch.nn.utils.clip_grads_with_norm_":
        args = dict(args)
        ref = next((p.grad for p in params if p.grad is not None), None)
        dtype = ref.dtype if ref is not None else torch.float32
        device = ref.device if ref is not None else "cpu"
        args["total_norm"] = torch.tensor(args["total_norm"], dtype=dtype, device=device)
        return utils.clip_grads_with_norm_(params, **args)
    raise NotImplementedError(f"the torch backend does not know {api}")


def run(job: dict) -> dict:
    if job.get("kind") == "derive":  # gradient-derivation APIs (docs/derivation.md)
        from . import torch_derive

        return torch_derive.run(job)
    if job.get("kind") == "train":  # a training-step job (docs/training.md)
        from . import torch_train

        return torch_train.run(job)
    dtype, device = DTYPES[job["dtype"]], _device(job["device"])
    if "model" in job:
        named = _model_params(job["model"], dtype, device)
        raw = {n: _numpy(p.grad) for n, p in named}
    else:
        named = _injected_params(job["params"], dtype, device)
        raw = None
    params = [p for _, p in named]
    try:
        returned = _call(job["api"], params, job["args"])
    except NotImplementedError:
        raise
    except Exception as e:  # the API under test raised: a behaviour, reported to the comparator
        return {"grads": {n: _numpy(p.grad) for n, p in named}, "raw_grads": raw,
                "returned": None, "raised": {"type": type(e).__name__, "message": str(e)}}
    norm = float(returned.detach().to("cpu", torch.float64)) if isinstance(returned, torch.Tensor) else None
    return {"grads": {n: _numpy(p.grad) for n, p in named}, "raw_grads": raw,
            "returned": norm, "raised": None}
