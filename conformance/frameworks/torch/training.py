"""torch training-step jobs (``job["kind"] == "training"``, docs/training.md); worker side only.

The loop is torch's documented AMP-with-clipping idiom: per micro-batch
``scaler.scale(loss / n).backward()`` (gradients accumulate in ``.grad``), then
``scaler.unscale_(opt)``, ``clip_grad_norm_(chosen params)``, ``scaler.step(opt)``,
``scaler.update()``. Without a scaler (source ``torch.optim.SGD``) the same loop minus the
scaler calls. ``APIS``: API name -> ``setup(args, step, groups, device)``, which returns the
optimizer and the scaler (None without one).
"""

from __future__ import annotations

import numpy as np
import torch

from .nets import loss, network
from .tensors import DTYPES, device, numpy, tensor


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


def _grad_scaler(args: dict, step: dict, groups: list, dev: torch.device):
    return torch.optim.SGD(groups, lr=step["lr"]), torch.amp.GradScaler(dev.type, **args)


def _sgd(args: dict, step: dict, groups: list, dev: torch.device):
    return torch.optim.SGD(groups, **args), None


APIS = {
    "torch.amp.GradScaler": _grad_scaler,
    "torch.optim.SGD": _sgd,
}


def run(job: dict) -> dict:
    setup = APIS[job["api"]]
    try:
        return _run(job, setup)
    except Exception as e:  # the step raised (GradScaler refuses float16 gradients): a behaviour
        return {"outputs": {}, "raised": {"type": type(e).__name__, "message": str(e)}}


def _run(job: dict, setup) -> dict:
    args, step = job["args"], job["step"]
    dtype, dev = DTYPES[job["dtype"]], device(job["device"])
    model = job["model"]
    net = network(model, dtype, dev)
    named = dict(net.named_parameters())
    opt, scaler = setup(args, step, _groups(step, named), dev)
    clip = [named[n] for n in (step.get("clip_params") or list(named))]
    n = step["micro_batches"]
    inputs = np.asarray(model["inputs"], dtype=np.float64)
    targets = None if model.get("targets") is None else tensor(model["targets"], dtype, dev)
    skipped, scales = [], []
    for k in range(step["steps"]):
        opt.zero_grad(set_to_none=True)
        x = tensor(inputs * step["input_scales"][k], dtype, dev)
        ts = [None] * n if targets is None else torch.chunk(targets, n)
        for xb, tb in zip(torch.chunk(x, n), ts):
            micro = loss(model["loss"], net(xb), tb) / n
            (scaler.scale(micro) if scaler else micro).backward()
        if scaler:
            scaler.unscale_(opt)
            # the scaler's own verdict on this step (what scaler.step consults to skip it)
            found = sum(v.item() for v in scaler._found_inf_per_device(opt).values())
        else:
            found = 0.0
        if step.get("max_norm") is not None:
            torch.nn.utils.clip_grad_norm_(clip, step["max_norm"])
        grads = {name: numpy(p.grad) for name, p in named.items()}
        if scaler:
            scaler.step(opt)
            scaler.update()
            scales.append(float(scaler.get_scale()))
        else:
            opt.step()
        skipped.append(1.0 if found else 0.0)
    out = {f"param:{name}": numpy(p) for name, p in named.items()}
    if not skipped[-1]:
        out.update({f"grad:{name}": g for name, g in grads.items()})
    out["skipped"] = np.array(skipped)
    if scaler:
        out["scale"] = np.array(scales)
    return {"outputs": out, "raised": None}
