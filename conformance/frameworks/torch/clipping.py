"""torch's clipping APIs for clipping jobs (worker side only; docs/ARCHITECTURE.md).

Injected gradients are set as ``p.grad``; model jobs build ``torch.nn`` modules from the spec and
differentiate with ``loss.backward()``. ``APIS``: API name -> ``call(params, args)``, which
clips the parameters' ``.grad`` in place and returns what the API returns.
"""

from __future__ import annotations

import torch
from torch.nn import utils

from .nets import loss, network
from .tensors import DTYPES, device, numpy, tensor, tensor_args


def _model_params(model: dict, dtype, device):
    net = network(model, dtype, device)
    inputs = tensor(model["inputs"], dtype, device)
    targets = None
    if model.get("targets") is not None:
        targets = tensor(model["targets"], dtype, device)
    out = net(inputs)
    loss(model["loss"], out, targets).backward()
    return list(net.named_parameters())


def _injected_params(params: list, dtype, device):
    named = []
    for p in params:
        pdtype = DTYPES[p["dtype"]] if "dtype" in p else dtype  # mixed dtypes
        t = torch.zeros(p["shape"], dtype=pdtype, device=device, requires_grad=True)
        if p["grad"] is not None:
            t.grad = tensor(p["grad"], pdtype, device)
        named.append((p["name"], t))
    return named


# --- APIs -------------------------------------------------------------------------------------

def _clip_grad_norm(params: list, args: dict):
    return utils.clip_grad_norm_(params, **args)


def _clip_grad_value(params: list, args: dict):
    return utils.clip_grad_value_(params, **args)


def _clip_grad_norm_per_parameter(params: list, args: dict):
    # composite: each parameter clipped by its own norm (a per-tensor source such as
    # mindspore.nn.ClipByNorm / paddle.nn.ClipGradByNorm); nothing is returned
    for p in params:
        if p.grad is not None:
            utils.clip_grad_norm_([p], **args)
    return None


def _clamp(params: list, args: dict):
    # composite: every gradient clamped in place into [min, max] (an absent bound: None)
    for p in params:
        if p.grad is not None:
            p.grad.clamp_(**args)
    return None


def _get_total_norm(params, args: dict):
    if isinstance(params, torch.Tensor):  # the bare-Tensor form: the one gradient itself
        return utils.get_total_norm(params.grad, **args)
    return utils.get_total_norm([p.grad for p in params if p.grad is not None], **args)


def _clip_grads_with_norm(params, args: dict):
    args = dict(args)
    each = [params] if isinstance(params, torch.Tensor) else params
    ref = next((p.grad for p in each if p.grad is not None), None)
    dtype = ref.dtype if ref is not None else torch.float32
    device = ref.device if ref is not None else "cpu"
    args["total_norm"] = torch.tensor(args["total_norm"], dtype=dtype, device=device)
    return utils.clip_grads_with_norm_(params, **args)


APIS = {
    "torch.nn.utils.clip_grad_norm_": _clip_grad_norm,
    "torch.nn.utils.clip_grad_value_": _clip_grad_value,
    "torch.nn.utils.clip_grad_norm_.per_parameter": _clip_grad_norm_per_parameter,
    "torch.clamp": _clamp,
    "torch.nn.utils.get_total_norm": _get_total_norm,
    "torch.nn.utils.clip_grads_with_norm_": _clip_grads_with_norm,
}


def run(job: dict) -> dict:
    call = APIS[job["api"]]
    dtype, dev = DTYPES[job["dtype"]], device(job["device"])
    if "model" in job:
        named = _model_params(job["model"], dtype, dev)
        raw = {n: numpy(p.grad) for n, p in named}
    else:
        named = _injected_params(job["params"], dtype, dev)
        raw = None
    params = [p for _, p in named]
    given = params[0] if job.get("form") == "tensor" else params  # `clip_grad_norm_(p)`: one bare Tensor
    try:
        args = tensor_args(job["args"], dev)
        if job.get("mode") == "compiled":
            # imported at the first compiled cell: torch._dynamo and inductor take ~4 s to
            # import, which a worker running eager cells only should not pay
            from . import compiled
            returned = compiled.call(job["api"], call, given, args)
        else:
            returned = call(given, args)
    except Exception as e:  # the API under test raised: a behaviour, reported to the comparator
        return {"grads": {n: numpy(p.grad) for n, p in named}, "raw_grads": raw,
                "returned": None, "raised": {"type": type(e).__name__, "message": str(e)}}
    norm = float(returned.detach().to("cpu", torch.float64)) if isinstance(returned, torch.Tensor) else None
    return {"grads": {n: numpy(p.grad) for n, p in named}, "raw_grads": raw,
            "returned": norm, "raised": None}
