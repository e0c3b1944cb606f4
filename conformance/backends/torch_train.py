"""torch training-step jobs (``job["kind"] == "train"``, docs/training.md); worker side only.

The loop is torch's documented AMP-with-clipping idiom: per micro-batch
``scaler.scale(loss / n).backward()`` (gradients accumulate in ``.grad``), then
``scaler.unscale_(opt)``, ``clip_grad_norm_(chosen params)``, ``scaler.step(opt)``,
``scaler.update()``. Without a scaler (source ``torch.optim.SGD``) the same loop minus the
scaler calls.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

from .torch_backend import DTYPES, _device, _loss, _module, _numpy, _tensor

APIS = ("torch.amp.GradScaler", "torch.optim.SGD")


def _groups(step: dict, named: dict, lr_key: str = "lr") -> list:
    groups = step.get("groups") or [{"params": list(named)}]
    out = []
    for g in groups:
        d = {"params": [named[n] for n in g["params"]]}
        if g.get("lr") is not None:
            d[lr_key] = g["lr"]
        if g.get("weight_decay") is not None:
            d["weight_decay"] = g["weight_decay"]
        out.append(d)
    return out


def run(job: dict) -> dict:
    api, args, step = job["api"], job["args"], job["step"]
    if api not in APIS:
        raise NotImplementedError(f"the torch backend has no training step for {api}")
    try:
        return _run(job, api, args, step)
    except Exception as e:  # the step raised (GradScaler refuses float16 gradients): a behaviour
        return {"outputs": {}, "raised": {"type": type(e).__name__, "message": str(e)}}


def _run(job: dict, api: str, args: dict, step: dict) -> dict:
    dtype, device = DTYPES[job["dtype"]], _device(job["device"])
    model = job["model"]
    net = torch.nn.Sequential(OrderedDict(
        (layer["name"], _module(layer, dtype, device)) for layer in model["layers"]))
    named = dict(net.named_parameters())
    if api == "torch.optim.SGD":
        opt = torch.optim.SGD(_groups(step, named), **args)
        scaler = None
    else:
        opt = torch.optim.SGD(_groups(step, named), lr=step["lr"])
        scaler = torch.amp.GradScaler(device.type, **args)
    clip = [named[n] for n in (step.get("clip_params") or list(named))]
    n = step["micro_batches"]
    inputs = np.asarray(model["inputs"], dtype=np.float64)
    targets = None if model.get("targets") is None else _tensor(model["targets"], dtype, device)
    skipped, scales = [], []
    for k in range(step["steps"]):
        opt.zero_grad(set_to_none=True)
        x = _tensor(inputs * step["input_scales"][k], dtype, device)
        ts = [None] * n if targets is None else torch.chunk(targets, n)
        for xb, tb in zip(torch.chunk(x, n), ts):
            loss = _loss(model["loss"], net(xb), tb) / n
            (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.unscale_(opt)
            # the scaler's own verdict on this step (what scaler.step consults to skip it)
            found = sum(v.item() for v in scaler._found_inf_per_device(opt).values())
        else:
            found = 0.0
        if step.get("max_norm") is not None:
            torch.nn.utils.clip_grad_norm_(clip, step["max_norm"])
        grads = {name: _numpy(p.grad) for name, p in named.items()}
        if scaler:
            scaler.step(opt)
            scaler.update()
            scales.append(float(scaler.get_scale()))
        else:
            opt.step()
        skipped.append(1.0 if found else 0.0)
    out = {f"param:{name}": _numpy(p) for name, p in named.items()}
    if not skipped[-1]:
        out.update({f"grad:{name}": g for name, g in grads.items()})
    out["skipped"] = np.array(skipped)
    if scaler:
        out["scale"] = np.array(scales)
    return {"outputs": out, "raised": None}
