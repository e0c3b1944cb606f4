"""Paddle's gradient-derivation APIs for derivation jobs (worker side only; docs/derivation.md).

``paddle.grad(outputs, inputs, allow_unused)`` and ``Tensor.backward()`` (called ``repeat``
times with ``retain_graph=True``, then every leaf's ``.grad``). Inputs are tensors with
``stop_gradient=False``, weights ``create_parameter`` parameters (torch layout: the function's
``linear`` op multiplies by ``w.T``, so no transpose is involved).
"""

from __future__ import annotations

import paddle

from ...kinds.derivation.ops import evaluate
from .tensors import numpy, parameter, set_device, tensor

PRIMS = {"tanh": paddle.tanh, "sum": paddle.sum, "mean": paddle.mean, "squeeze": paddle.squeeze,
         "t": lambda w: w.T}


def leaf_tensors(fn: dict, dtype: str) -> dict:
    """name -> differentiable leaf: the function's inputs and weights."""
    out = {}
    for n, a in fn["inputs"]:
        t = tensor(a, dtype).reshape(list(a.shape))  # the case's shape exactly (0-d stays 0-d)
        t.stop_gradient = False
        out[n] = t
    for n, a in fn["weights"]:
        p = parameter(list(a.shape), dtype)
        p.set_value(tensor(a, dtype).reshape(list(a.shape)))
        out[n] = p
    return out


# --- APIs: (args, fn, leaves, repeat) -> gradients by name --------------------------------------

def grad(args: dict, fn: dict, leaves: dict, repeat: int) -> dict:
    for _ in range(repeat):  # functional: every call returns one pass's gradients
        env = evaluate(fn["ops"], leaves, PRIMS)
        res = paddle.grad([env[o] for o in args["outputs"]], [leaves[n] for n in args["inputs"]],
                          allow_unused=args["allow_unused"])
    return {n: numpy(g) for n, g in zip(args["inputs"], res)}


def backward(args: dict, fn: dict, leaves: dict, repeat: int) -> dict:
    env = evaluate(fn["ops"], leaves, PRIMS)
    for _ in range(repeat):
        env[args["output"]].backward(retain_graph=True)
    return {n: numpy(t.grad) for n, t in leaves.items()}


APIS = {"paddle.grad": grad, "paddle.Tensor.backward": backward}


def run(job: dict) -> dict:
    call = APIS[job["api"]]
    set_device(job["device"])
    try:
        grads = call(job["args"], job["function"], leaf_tensors(job["function"], job["dtype"]),
                     int(job.get("repeat", 1)))
    except NotImplementedError:
        raise
    except Exception as e:  # the API under test raised: a behaviour, reported to the comparator
        return {"grads": None, "values": None, "raised": {"type": type(e).__name__, "message": str(e)}}
    return {"grads": grads, "values": None, "raised": None}
