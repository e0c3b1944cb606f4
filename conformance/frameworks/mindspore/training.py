"""MindSpore training-step jobs (``job["kind"] == "training"``, docs/training.md); worker side only.

The loop is MindSpore's documented functional idiom (mindspore.amp "loss scaling" tutorial):
``grads = mindspore.grad(lambda x, y: scaler.scale(loss(net(x), y) / n), weights=params)``
per micro-batch, summed explicitly (MindSpore keeps gradients apart from parameters: nothing
accumulates by itself), ``is_finite = amp.all_finite(grads)``, ``grads = scaler.unscale(grads)``,
``ops.clip_by_global_norm`` on the chosen gradients, ``if is_finite: optimizer(grads)``,
``scaler.adjust(is_finite)``. Without a scaler (target of ``torch.optim.SGD``) the same loop
minus the scaler calls.
"""

from __future__ import annotations

import numpy as np

from .nets import cell, loss_fn
from .tensors import DTYPES, amp, drain, keep_alive, ms, nn, numpy, ops, raised, tensor, use_device


def _groups(step: dict, named: dict) -> list:
    groups = step.get("groups") or [{"params": list(named)}]
    out = []
    for g in groups:
        d = {"params": [named[n] for n in g["params"]]}
        if g.get("lr") is not None:
            d["lr"] = g["lr"]
        if g.get("weight_decay") is not None:
            d["weight_decay"] = g["weight_decay"]
        out.append(d)
    return out


# --- APIs: (parameter groups, step, args) -> (optimizer, loss scaler or None) -----------------

def sgd(groups: list, step: dict, args: dict):
    return nn.SGD(groups, **args), None


def scaled(scaler_class):
    """An API that is a loss scaler: ``nn.SGD`` at the step's learning rate, and the scaler."""

    def make(groups: list, step: dict, args: dict):
        return nn.SGD(groups, learning_rate=step["lr"]), scaler_class(**args)

    return make


APIS = {"mindspore.amp.DynamicLossScaler": scaled(amp.DynamicLossScaler),
        "mindspore.amp.StaticLossScaler": scaled(amp.StaticLossScaler),
        "mindspore.nn.SGD": sgd}


def run(job: dict) -> dict:
    api, args, step = job["api"], job["args"], job["step"]
    if api not in APIS:  # (the worker checks first: a runner error, never a behaviour)
        raise NotImplementedError(f"the mindspore backend has no training API {api}")
    use_device(job["device"])
    dtype = DTYPES[job["dtype"]]
    model = job["model"]
    cells, named = [], {}
    try:
        for layer in model["layers"]:
            c, params = cell(layer, dtype)
            cells.append(c)
            named.update({f"{layer['name']}.{suffix}": p for suffix, p in params})
    except Exception as e:  # noqa: BLE001 - no kernel/cell for this dtype: a declared gap
        drain()
        return {"outputs": {}, "raised": raised(e)}
    net = nn.SequentialCell(cells)
    loss = loss_fn(model["loss"])
    names = list(named)
    weights = [named[k] for k in names]
    try:
        opt, scaler = APIS[api](_groups(step, named), step, args)
    except (TypeError, ValueError) as e:  # an argument MindSpore refuses (scale_factor=1.5)
        drain()
        return {"outputs": {}, "raised": raised(e)}
    n = step["micro_batches"]

    # The scale enters as an argument, not as the closed-over scaler: MindSpore caches the graph
    # of a grad function, and a closure over one cell's scaler was seen to reuse another cell's
    # scale (a StaticLossScaler whose scale changed, only after ~6,000 earlier cells in the same
    # worker). `loss * scale_value` is what `scaler.scale(loss)` computes.
    def forward(x, y, scale):
        return loss(net(x), y) / n * scale

    keep_alive(forward, net, loss)
    grad_fn = ms.grad(forward, grad_position=None, weights=weights)
    clip_idx = [names.index(k) for k in (step.get("clip_params") or names)]
    try:
        return _loop(step, grad_fn, opt, scaler, named, clip_idx, model, dtype)
    except Exception as e:  # noqa: BLE001 - e.g. a float64 kernel MindSpore's CPU build lacks
        drain()
        return {"outputs": {}, "raised": raised(e)}


def _loop(step, grad_fn, opt, scaler, named, clip_idx, model, dtype) -> dict:
    names = list(named)
    n = step["micro_batches"]
    inputs = np.asarray(model["inputs"], dtype=np.float64)
    targets = model.get("targets")
    skipped, scales = [], []
    for k in range(step["steps"]):
        xs = np.split(inputs * step["input_scales"][k], n)
        ts = [None] * n if targets is None else np.split(np.asarray(targets), n)
        acc = None
        for xb, tb in zip(xs, ts):
            scale = scaler.scale_value.value() if scaler else ms.Tensor(1.0, dtype)
            g = grad_fn(tensor(xb, dtype), None if tb is None else tensor(tb, dtype), scale.astype(dtype))
            acc = tuple(g) if acc is None else tuple(a + b for a, b in zip(acc, g))
        finite = True
        if scaler:
            finite = bool(amp.all_finite(acc))
            acc = tuple(scaler.unscale(acc))
        grads = list(acc)
        if step.get("max_norm") is not None:
            clipped = ops.clip_by_global_norm(tuple(grads[i] for i in clip_idx), step["max_norm"])
            for i, c in zip(clip_idx, clipped):
                grads[i] = c
        if finite:
            opt(tuple(grads))
        if scaler:
            scaler.adjust(ms.Tensor(finite))
            scales.append(float(np.asarray(scaler.scale_value.asnumpy())))
        skipped.append(0.0 if finite else 1.0)
    out = {f"param:{name}": numpy(p.value()) for name, p in named.items()}
    if not skipped[-1]:
        out.update({f"grad:{name}": numpy(g) for name, g in zip(names, grads)})
    out["skipped"] = np.array(skipped)
    if scaler:
        out["scale"] = np.array(scales)
    return {"outputs": out, "raised": None}
