"""MindSpore's gradient-derivation APIs for derivation jobs (worker side; docs/derivation.md).

``mindspore.grad(fn, grad_position, weights, has_aux)(*inputs)`` and
``mindspore.value_and_grad(...)``, PyNative mode. The job's weights become ``Parameter``s that
``fn`` closes over; ``fn`` returns the job's outputs in order (one output: a bare tensor). The
nested return structure of seed 003's table ((input grads), (weight grads)), aux) is unpacked
back into names.
"""

from __future__ import annotations

from ...kinds.derivation.ops import evaluate
from .tensors import DTYPES, drain, keep_alive, ms, numpy, ops, raised, tensor, use_device

PRIMS = {"tanh": ops.tanh, "sum": lambda a: a.sum(), "mean": lambda a: a.mean(),
         "squeeze": ops.squeeze, "t": lambda w: w.T}


def _unpack(res, grad_position, weights) -> tuple:
    """(input gradients, weight gradients) of grad's result (its has_aux part removed)."""
    if grad_position is not None and weights:
        pos, wts = res
    elif grad_position is not None:
        pos, wts = res, ()
    else:
        pos, wts = (), res
    if isinstance(grad_position, int):
        pos = (pos,)
    return list(pos), list(wts)


class StructureError(RuntimeError):
    """The result's nesting is not what the suite expects: a runner error, not a behaviour."""


# --- APIs: (forward, inputs, grad_position, weights, has_aux, outputs, repeat) -> (gradients as
# grad returns them, {output name: value tensor} or None) --------------------------------------

def grad(forward, inputs, gp, weights, has_aux, outs, repeat):
    for _ in range(repeat):  # functional: every call returns one pass's gradients
        res = ms.grad(forward, grad_position=gp, weights=weights, has_aux=has_aux)(*inputs)
    value = None
    if has_aux:
        res, aux = res
        value = dict(zip(outs[1:], aux))
    return res, value


def value_and_grad(forward, inputs, gp, weights, has_aux, outs, repeat):
    for _ in range(repeat):
        value, res = ms.value_and_grad(forward, grad_position=gp, weights=weights, has_aux=has_aux)(*inputs)
    return res, dict(zip(outs, value if len(outs) > 1 else (value,)))


APIS = {"mindspore.grad": grad, "mindspore.value_and_grad": value_and_grad}


def _call(api: str, args: dict, fn: dict, dtype, repeat: int):
    call = APIS[api]
    names = [n for n, _ in fn["inputs"]]
    # reshape: each leaf keeps the case's shape exactly (a 0-d input stays 0-d)
    inputs = [tensor(a, dtype).reshape(a.shape) for _, a in fn["inputs"]]
    params = {n: ms.Parameter(tensor(a, dtype).reshape(a.shape), name=n) for n, a in fn["weights"]}
    outs = fn["outputs"]

    def forward(*xs):
        env = evaluate(fn["ops"], {**dict(zip(names, xs)), **params}, PRIMS)
        res = tuple(env[o] for o in outs)
        return res[0] if len(res) == 1 else res

    gp = args["grad_position"]
    gp = tuple(gp) if isinstance(gp, list) else gp
    wnames = args["weights"] or []
    weights = [params[n] for n in wnames] if args["weights"] is not None else None
    keep_alive(forward, params)
    res, value = call(forward, inputs, gp, weights, args["has_aux"], outs, repeat)
    pos, wts = _unpack(res, gp, weights)
    selected = [names[i] for i in ((gp,) if isinstance(gp, int) else (gp or ()))]
    if len(pos) != len(selected) or len(wts) != len(wnames):  # never let a structure slip by
        raise StructureError(f"{api} returned {len(pos)}+{len(wts)} gradients for "
                             f"{selected} and {wnames}")
    grads = {n: numpy(g) for n, g in zip(selected + wnames, pos + wts)}
    return grads, None if value is None else {o: numpy(v) for o, v in value.items()}


def run(job: dict) -> dict:
    use_device(job["device"])
    dtype = DTYPES[job["dtype"]]
    if job["api"] not in APIS:  # (the worker checks first: a runner error, never a behaviour)
        raise NotImplementedError(f"the mindspore backend has no derivation API {job['api']}")
    try:
        grads, values = _call(job["api"], job["args"], job["function"], dtype, int(job.get("repeat", 1)))
    except (NotImplementedError, StructureError):
        raise
    except Exception as e:  # noqa: BLE001 - the API under test raised: a behaviour
        drain()
        return {"grads": None, "values": None, "raised": raised(e)}
    return {"grads": grads, "values": values, "raised": None}
