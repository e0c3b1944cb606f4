"""MindSpore's gradient-clipping APIs for clipping jobs (worker side; docs/ARCHITECTURE.md).

MindSpore keeps gradients apart from parameters: injected gradients are plain tensors passed as
a tuple to the clipping API (parameters without a gradient are left out of the tuple and come
back as ``None``); model jobs build the network from ``mindspore.nn`` cells, set the job's
weights, and differentiate with ``mindspore.grad(fn, grad_position=None, weights=...)``
(MindSpore's gradient-derivation page, seed 003). The clipping APIs return new tensors; those
are the gradients "after the call". ``<api>.via_sgd`` (a suite-only name) is the training-loop
form: the clipped tuple handed to ``nn.SGD(params, learning_rate=1.0)`` whose parameters were
set to zero, read back as ``-p``. A failure while building or differentiating the network (a
dtype without a kernel) is reported as ``raised``, so the registry can declare it unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import compiled
from .compiled import invoke
from .nets import cell, loss_fn, parameter_names
from .tensors import DTYPES, drain, keep_alive, ms, nn, numpy, ops, raised, tensor, tensor_args, use_device


@dataclass
class Gradients:
    """The gradients an API is called with: ``tensors`` aligned with ``names`` (None: no
    gradient), and ``params``, the network's own parameters (model jobs; None otherwise)."""

    names: list
    tensors: list
    params: Optional[list]
    form: str = "list"  # "tensor": the API is given the one gradient as a bare Tensor

    @property
    def present(self) -> list:
        return [i for i, t in enumerate(self.tensors) if t is not None]

    def given(self) -> tuple:
        """The gradients that exist, as the tuple MindSpore's APIs take."""
        return tuple(self.tensors[i] for i in self.present)


def model_grads(model: dict, dtype):
    """[(name, raw gradient, Parameter)] from mindspore.grad over the network's parameters, in
    job order."""
    cells, named = [], []
    for layer in model["layers"]:
        c, params = cell(layer, dtype)
        cells.append(c)
        named += [(f"{layer['name']}.{suffix}", p) for suffix, p in params]
    net = nn.SequentialCell(cells)
    loss = loss_fn(model["loss"])
    inputs = tensor(model["inputs"], dtype)
    targets = None if model.get("targets") is None else tensor(model["targets"], dtype)

    def forward(x, y):
        return loss(net(x), y)

    weights = [p for _, p in named]
    keep_alive(forward, net, loss)
    grads = ms.grad(forward, grad_position=None, weights=weights)(inputs, targets)
    return [(n, g, p) for (n, p), g in zip(named, grads)]


# --- APIs: (Gradients, args) -> (clipped gradients as a tuple aligned with the present ones,
# returned norm tensor or None) ----------------------------------------------------------------

def _total_norm(grads: tuple, ord_):
    """The total-norm composite: vector_norm of the stacked per-tensor vector_norms."""
    norms = [ops.vector_norm(g, ord_) for g in grads]
    return ops.vector_norm(ops.stack(norms), ord_)


def _on_form(fn, g: Gradients, args: dict):
    """``fn`` on the tuple of gradients, or on the one gradient as a bare Tensor
    (``form: tensor``), whose result is one Tensor."""
    if g.form == "tensor":
        return (invoke(fn, g.given()[0], args),), None
    return tuple(invoke(fn, g.given(), args)), None


def clip_by_norm(g: Gradients, args: dict):
    return _on_form(ops.clip_by_norm, g, args)


def clip_by_global_norm(g: Gradients, args: dict):
    return _on_form(ops.clip_by_global_norm, g, args)


def clip_by_value(g: Gradients, args: dict):
    return _on_form(ops.clip_by_value, g, args)


def clamp(g: Gradients, args: dict):
    return tuple(invoke(ops.clamp, t, args) for t in g.given()), None


def vector_norm(g: Gradients, args: dict):
    grads = g.given()
    return grads, invoke(_total_norm, grads, {"ord_": args.get("ord", 2)})


def clip_by_norm_cell(g: Gradients, args: dict):
    clip = nn.ClipByNorm()
    max_norm = args["clip_norm"]  # a tensor argument as given; a number as a float32 0-d Tensor
    if not isinstance(max_norm, ms.Tensor):
        max_norm = ms.Tensor(np.float32(max_norm))
    return tuple(invoke(clip, t, {"clip_norm": max_norm}) for t in g.given()), None


def via_sgd(clip):
    """The training-loop form of ``clip``: clip, then ``nn.SGD(params, learning_rate=1.0)``
    applies the clipped gradients to parameters set to zero, so each clipped gradient is read
    back as ``-p`` (exact: 0 - 1.0 * g). ``params``: the network's own parameters (model jobs),
    else new zero parameters of the gradients' shapes and dtype."""

    def call(g: Gradients, args: dict):
        clipped, _ = clip(g, args)
        present = g.present
        if g.params is None:
            chosen = [ms.Parameter(ops.zeros_like(g.tensors[i]), name=f"p{i}.{g.names[i]}") for i in present]
        else:
            chosen = [g.params[i] for i in present]
            for p in chosen:
                p.set_data(ops.zeros_like(p))
        optimizer = nn.SGD(chosen, learning_rate=1.0)
        optimizer(tuple(clipped))
        return tuple(-p.value() for p in chosen), None

    return call


APIS = {
    "mindspore.ops.clip_by_norm": clip_by_norm,
    "mindspore.ops.clip_by_global_norm": clip_by_global_norm,
    "mindspore.ops.clip_by_value": clip_by_value,
    "mindspore.ops.clamp": clamp,
    "mindspore.ops.vector_norm": vector_norm,
    "mindspore.nn.ClipByNorm": clip_by_norm_cell,
    # suite-only names: the clipped gradients applied by nn.SGD
    "mindspore.ops.clip_by_norm.via_sgd": via_sgd(clip_by_norm),
    "mindspore.ops.clip_by_global_norm.via_sgd": via_sgd(clip_by_global_norm),
}


def run(job: dict) -> dict:
    if job["api"] not in APIS:  # (the worker checks first: a runner error, never a behaviour)
        raise NotImplementedError(f"the mindspore backend has no clipping API {job['api']}")
    use_device(job["device"])
    compiled.MODE[0] = job.get("mode", "eager")
    dtype = DTYPES[job["dtype"]]
    if "model" in job:
        try:
            pairs = model_grads(job["model"], dtype)
        except Exception as e:  # noqa: BLE001 - e.g. an op without a kernel for this dtype
            drain()
            names = parameter_names(job["model"]["layers"])
            return {"grads": {n: None for n in names}, "raw_grads": None, "returned": None,
                    "raised": raised(e)}
        g = Gradients([n for n, _, _ in pairs], [t for _, t, _ in pairs], [p for _, _, p in pairs], job.get("form", "list"))
        raw = {n: numpy(t) for n, t, _ in pairs}
    else:
        g = Gradients([p["name"] for p in job["params"]],
                      [None if p["grad"] is None else tensor(p["grad"], DTYPES[p.get("dtype", job["dtype"])])
                       for p in job["params"]],  # a parameter's own "dtype": mixed dtypes
                      None, job.get("form", "list"))
        raw = None
    present = g.present
    before = {n: numpy(t) for n, t in zip(g.names, g.tensors)}
    api = job["api"]
    call = APIS[api]
    try:
        clipped, returned = call(g, tensor_args(job["args"]))
        out = list(g.tensors)
        for i, t in zip(present, clipped):
            out[i] = t
        grads = {n: numpy(t) for n, t in zip(g.names, out)}
        norm = None if returned is None else float(numpy(returned).reshape(-1)[0])
    except NotImplementedError:  # as before: never a behaviour of the API under test
        raise
    except Exception as e:  # noqa: BLE001 - the API under test raised: a behaviour
        drain()
        return {"grads": before, "raw_grads": raw, "returned": None, "raised": raised(e)}
    if len(clipped) != len(present):  # a runner error: never let an input pass for an output
        raise RuntimeError(f"{api} returned {len(clipped)} tensors for {len(present)} gradients")
    return {"grads": grads, "raw_grads": raw, "returned": norm, "raised": None}
