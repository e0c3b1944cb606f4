"""JAX's gradient-derivation transforms for derivation jobs (worker side; docs/derivation.md).

``jax.grad(f, argnums, has_aux)`` and ``jax.value_and_grad(f, argnums, has_aux)`` where ``f``
takes the function's inputs, then its weights, positionally (the ``argnums`` style, as
torch.func.grad_and_value), and returns its first output, ``(first, (aux...))`` with has_aux,
or the tuple of its outputs (which jax refuses to differentiate). Called eagerly, ``repeat``
times (functional: each call returns one pass's gradients). ``APIS``: API name ->
``call(args, fn, leaves, repeat)`` -> (grads by name, returned outputs by name or None).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ...kinds.derivation.ops import evaluate
from .tensors import DTYPES, array, numpy

PRIMS = {"tanh": jnp.tanh, "sum": jnp.sum, "mean": jnp.mean, "squeeze": jnp.squeeze, "t": lambda w: w.T}


def _f(args: dict, fn: dict, order: list):
    outs = fn["outputs"]

    def f(*vals):
        env = evaluate(fn["ops"], dict(zip(order, vals)), PRIMS)
        res = [env[o] for o in outs]
        if args["has_aux"]:
            return res[0], tuple(res[1:])
        return res[0] if len(res) == 1 else tuple(res)
    return f


def _transform(transform):
    def call(args: dict, fn: dict, leaves: dict, repeat: int):
        order = [n for n, _ in [*fn["inputs"], *fn["weights"]]]
        argnums = tuple(args["argnums"])
        vals = [leaves[n] for n in order]
        for _ in range(repeat):
            out = transform(_f(args, fn, order), argnums=argnums, has_aux=args["has_aux"])(*vals)
        outs = fn["outputs"]
        if transform is jax.grad:
            grads, aux = out if args["has_aux"] else (out, None)
            values = None if aux is None else {o: numpy(v) for o, v in zip(outs[1:], aux)}
        else:
            value, grads = out
            flat = [value[0], *value[1]] if args["has_aux"] else [value]
            values = {o: numpy(v) for o, v in zip(outs, flat)}
        return {order[i]: numpy(g) for i, g in zip(argnums, grads)}, values
    return call


APIS = {
    "jax.grad": _transform(jax.grad),
    "jax.value_and_grad": _transform(jax.value_and_grad),
}


def run(job: dict) -> dict:
    call = APIS[job["api"]]
    dtype = DTYPES[job["dtype"]]
    fn = job["function"]
    # reshape: each leaf keeps the case's shape exactly (a 0-d input stays 0-d)
    leaves = {n: array(a, dtype).reshape(a.shape) for n, a in [*fn["inputs"], *fn["weights"]]}
    try:
        grads, values = call(job["args"], fn, leaves, int(job.get("repeat", 1)))
    except Exception as e:  # the API under test raised: a behaviour, reported to the comparator
        return {"grads": None, "values": None, "raised": {"type": type(e).__name__, "message": str(e)}}
    return {"grads": grads, "values": values, "raised": None}
