"""Paddle's gradient-derivation APIs for derivation jobs (worker side; docs/derivation.md).

``paddle.grad(outputs, inputs, allow_unused)`` and ``Tensor.backward()`` (called ``repeat``
times with ``retain_graph=True``, then every leaf's ``.grad``). Inputs are tensors with
``stop_gradient=False``, weights ``create_parameter`` parameters (torch layout: the function's
``linear`` op multiplies by ``w.T``, so no transpose is involved). Runs in the Paddle worker.
"""

from __future__ import annotations

import paddle

from . import paddle_backend as pb
from .derive_ops import evaluate

PRIMS = {"tanh": paddle.tanh, "sum": paddle.sum, "mean": paddle.mean, "squeeze": paddle.squeeze,
         "t": lambda w: w.T}


def _leaves(fn: dict, dtype: str) -> dict:
    out = {}
    for n, a in fn["inputs"]:
        t = pb._tensor(a, dtype).reshape(list(a.shape))  # ascontiguousarray made a 0-d array 1-d
        t.stop_gradient = False
        out[n] = t
    for n, a in fn["weights"]:
        p = pb._parameter(list(a.shape), dtype)
        p.set_value(pb._tensor(a, dtype).reshape(list(a.shape)))
        out[n] = p
    return out


def _call(api: str, args: dict, fn: dict, leaves: dict, repeat: int) -> dict:
    if api == "paddle.grad":
        for _ in range(repeat):  # functional: every call returns one pass's gradients
            env = evaluate(fn["ops"], leaves, PRIMS)
            res = paddle.grad([env[o] for o in args["outputs"]], [leaves[n] for n in args["inputs"]],
                              allow_unused=args["allow_unused"])
        return {n: pb._numpy(g) for n, g in zip(args["inputs"], res)}
    if api == "paddle.Tensor.backward":
        env = evaluate(fn["ops"], leaves, PRIMS)
        for _ in range(repeat):
            env[args["output"]].backward(retain_graph=True)
        return {n: pb._numpy(t.grad) for n, t in leaves.items()}
    raise NotImplementedError(f"the paddle backend has no derivation API {api}")


def run(job: dict) -> dict:
    pb._set_device(job["device"])
    try:
        leaves = _leaves(job["function"], job["dtype"])
        grads = _call(job["api"], job["args"], job["function"], leaves, int(job.get("repeat", 1)))
    except NotImplementedError:
        raise
    except Exception as e:  # the API under test raised: a behaviour, reported to the comparator
        return {"grads": None, "values": None, "raised": {"type": type(e).__name__, "message": str(e)}}
    return {"grads": grads, "values": None, "raised": None}
