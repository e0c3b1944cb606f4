"""Paddle training-step jobs (docs/training.md); worker side only.

The loop is Paddle's documented AMP idiom, the same shape as torch's: per micro-batch
``scaler.scale(loss / n).backward()`` (gradients accumulate in ``.grad``),
``scaler.unscale_(opt)``, ``paddle.nn.utils.clip_grad_norm_(chosen params)``,
``scaler.step(opt)``, ``scaler.update()``. Without a scaler (target of ``torch.optim.SGD``)
the same loop minus the scaler calls. Linear weights are [in, out] in Paddle: outputs are
transposed back to torch's layout.
"""

from __future__ import annotations

import numpy as np
import paddle

from . import nets
from .tensors import check_dtype, numpy, set_device, tensor, torch_layout

GRAD_CLIP = "paddle.optimizer.SGD.grad_clip"  # suite-only name: the clip inside the optimizer


def _groups(step: dict, named: dict) -> list:
    groups = step.get("groups") or [{"params": list(named)}]
    out = []
    for g in groups:
        d = {"params": [named[n][0] for n in g["params"]]}
        if g.get("lr") is not None:
            d["learning_rate"] = g["lr"]  # the group's own number, as the torch code gives it
        if g.get("weight_decay") is not None:
            d["weight_decay"] = g["weight_decay"]
        out.append(d)
    return out


def _out(p, transpose: bool, grad: bool = False):
    return torch_layout(numpy(p.grad if grad else p), transpose)


# --- APIs: (step, args, named) -> (optimizer, scaler or None, clip inside the optimizer) ----------

def sgd(step: dict, args: dict, named: dict):
    return paddle.optimizer.SGD(parameters=_groups(step, named), **args), None, False


def sgd_grad_clip(step: dict, args: dict, named: dict):
    # Paddle's own form of "clip then step": SGD(grad_clip=ClipGradByGlobalNorm(max_norm)),
    # the parameters left out of the clip marked need_clip=False (the ParamAttr flag)
    chosen = set(step.get("clip_params") or named)
    for name, (p, _) in named.items():
        p.need_clip = name in chosen
    clip = None
    if step.get("max_norm") is not None:
        clip = paddle.nn.ClipGradByGlobalNorm(clip_norm=step["max_norm"])
    return paddle.optimizer.SGD(parameters=_groups(step, named), grad_clip=clip, **args), None, True


def grad_scaler(step: dict, args: dict, named: dict):
    opt = paddle.optimizer.SGD(learning_rate=step["lr"], parameters=_groups(step, named))
    return opt, paddle.amp.GradScaler(**args), False


APIS = {"paddle.amp.GradScaler": grad_scaler, "paddle.optimizer.SGD": sgd, GRAD_CLIP: sgd_grad_clip}


def run(job: dict) -> dict:
    api, args, step, dtype = job["api"], job["args"], job["step"], job["dtype"]
    check_dtype(dtype)
    set_device(job["device"])
    optimizer = APIS[api]
    model = job["model"]
    try:
        layers, named = [], {}
        for spec in model["layers"]:
            m, params = nets.layer(spec, dtype)
            layers.append((spec["name"], m))
            named.update({f"{spec['name']}.{suffix}": (p, tr) for suffix, p, tr in params})
        net = paddle.nn.Sequential(*layers)
        opt, scaler, in_optimizer = optimizer(step, args, named)
        return _loop(step, model, dtype, net, named, opt, scaler, in_optimizer=in_optimizer)
    except Exception as e:  # noqa: BLE001 - a kernel without this dtype: reported, maybe declared
        return {"outputs": {}, "raised": {"type": type(e).__name__, "message": str(e)}}


def _loop(step, model, dtype, net, named, opt, scaler, in_optimizer=False) -> dict:
    n = step["micro_batches"]
    clip = [named[k][0] for k in (step.get("clip_params") or list(named))]
    inputs = np.asarray(model["inputs"], dtype=np.float64)
    targets = model.get("targets")
    skipped, scales, grads = [], [], {}
    for k in range(step["steps"]):
        opt.clear_grad(set_to_zero=False)
        xs = np.split(inputs * step["input_scales"][k], n)
        ts = [None] * n if targets is None else np.split(np.asarray(targets), n)
        for xb, tb in zip(xs, ts):
            loss = nets.loss(model["loss"], net(tensor(xb, dtype)), None if tb is None else tensor(tb, dtype)) / n
            (scaler.scale(loss) if scaler else loss).backward()
        found = False
        if scaler:
            scaler.unscale_(opt)
            # the scaler's own verdict (what scaler.step consults); a disabled scaler
            # (Paddle off-GPU: "AmpScaler can only be enabled on CUDAPlace ...") checks nothing
            found = scaler.is_enable() and bool(scaler._found_inf)
        if step.get("max_norm") is not None and not in_optimizer:
            paddle.nn.utils.clip_grad_norm_(clip, step["max_norm"])
        # (with the clip inside the optimizer, .grad keeps the unclipped gradients: the clipped
        # ones exist only inside opt.step(), so only the parameters show the clip)
        grads = {} if in_optimizer else {name: _out(p, tr, grad=True) for name, (p, tr) in named.items()}
        if scaler:
            scaler.step(opt)
            scaler.update()
            # the scale the loss was multiplied by: none (1.0) when the scaler is disabled
            scales.append(float(numpy(scaler._scale).reshape(-1)[0]) if scaler.is_enable() else 1.0)
        else:
            opt.step()
        skipped.append(1.0 if found else 0.0)
    out = {f"param:{name}": _out(p, tr) for name, (p, tr) in named.items()}
    if not skipped[-1]:
        out.update({f"grad:{name}": g for name, g in grads.items()})
    out["skipped"] = np.array(skipped)
    if scaler:
        out["scale"] = np.array(scales)
    if in_optimizer:
        return {"outputs": out, "raised": None, "omitted": {
            "grad": "clipped inside opt.step(): .grad keeps the unclipped gradients"}}
    return {"outputs": out, "raised": None}
