"""torch's gradient-derivation APIs for derivation jobs (worker side; docs/derivation.md).

``torch.autograd.grad(outputs, inputs, allow_unused)``, ``Tensor.backward()`` (called
``repeat`` times with ``retain_graph=True``, then every leaf's ``.grad``) and
``torch.func.grad_and_value(f, argnums, has_aux)`` where ``f`` takes the inputs then the
weights positionally. ``APIS``: API name -> ``call(args, fn, leaves, repeat)``, which returns
(grads by name, returned outputs by name or None).
"""

from __future__ import annotations

import torch

from ...kinds.derivation.ops import evaluate
from .tensors import DTYPES, device, numpy, tensor

PRIMS = {"tanh": torch.tanh, "sum": torch.sum, "mean": torch.mean, "squeeze": torch.squeeze,
         "t": lambda w: w.T}


def _leaves(fn: dict, dtype, device) -> dict:
    # reshape: each leaf keeps the case's shape exactly (a 0-d input stays 0-d)
    return {n: tensor(a, dtype, device).reshape(a.shape).requires_grad_(True)
            for n, a in [*fn["inputs"], *fn["weights"]]}


def _autograd_grad(args: dict, fn: dict, leaves: dict, repeat: int):
    for _ in range(repeat):  # functional: every call returns one pass's gradients
        env = evaluate(fn["ops"], leaves, PRIMS)
        res = torch.autograd.grad([env[o] for o in args["outputs"]],
                                  [leaves[n] for n in args["inputs"]],
                                  allow_unused=args["allow_unused"])
    return {n: numpy(g) for n, g in zip(args["inputs"], res)}, None


def _backward(args: dict, fn: dict, leaves: dict, repeat: int):
    env = evaluate(fn["ops"], leaves, PRIMS)
    for _ in range(repeat):
        env[args["output"]].backward(retain_graph=True)
    return {n: numpy(t.grad) for n, t in leaves.items()}, None


def _grad_and_value(args: dict, fn: dict, leaves: dict, repeat: int):
    order = [n for n, _ in [*fn["inputs"], *fn["weights"]]]
    outs = fn["outputs"]

    def f(*vals):
        env = evaluate(fn["ops"], dict(zip(order, vals)), PRIMS)
        res = [env[o] for o in outs]
        if args["has_aux"]:
            return res[0], tuple(res[1:])
        return res[0] if len(res) == 1 else tuple(res)

    argnums = tuple(args["argnums"])
    vals = [leaves[n].detach() for n in order]
    for _ in range(repeat):
        grads, value = torch.func.grad_and_value(f, argnums=argnums, has_aux=args["has_aux"])(*vals)
    flat = [value[0], *value[1]] if args["has_aux"] else ([value] if len(outs) == 1 else list(value))
    return ({order[i]: numpy(g) for i, g in zip(argnums, grads)},
            {o: numpy(v) for o, v in zip(outs, flat)})


APIS = {
    "torch.autograd.grad": _autograd_grad,
    "torch.Tensor.backward": _backward,
    "torch.func.grad_and_value": _grad_and_value,
}


def run(job: dict) -> dict:
    call = APIS[job["api"]]
    dtype, dev = DTYPES[job["dtype"]], device(job["device"])
    fn = job["function"]
    leaves = _leaves(fn, dtype, dev)
    try:
        grads, values = call(job["args"], fn, leaves, int(job.get("repeat", 1)))
    except Exception as e:  # the API under test raised: a behaviour, reported to the comparator
        return {"grads": None, "values": None, "raised": {"type": type(e).__name__, "message": str(e)}}
    return {"grads": grads, "values": values, "raised": None}
