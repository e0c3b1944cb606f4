"""MindSpore's gradient-derivation APIs for derivation jobs (worker side; docs/derivation.md).

``mindspore.grad(fn, grad_position, weights, has_aux)(*inputs)`` and
``mindspore.value_and_grad(...)``, PyNative mode. The job's weights become ``Parameter``s that
``fn`` closes over; ``fn`` returns the job's outputs in order (one output: a bare tensor). The
nested return structure of seed 003's table ((input grads), (weight grads)), aux) is unpacked
back into names. Runs in the MindSpore worker, next to ``mindspore_backend``.
"""

from __future__ import annotations

import mindspore as ms
from mindspore import ops

from . import mindspore_backend as msb
from .derive_ops import evaluate

PRIMS = {"tanh": ops.tanh, "sum": lambda a: a.sum(), "mean": lambda a: a.mean(),
         "squeeze": ops.squeeze, "t": lambda w: w.T}


def _unpack(res, grad_position, weights) -> tuple[list, list]:
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


APIS = ("mindspore.grad", "mindspore.value_and_grad")


class StructureError(RuntimeError):
    """The result's nesting is not what the suite expects: a runner error, not a behaviour."""


def _call(api: str, args: dict, fn: dict, dtype, repeat: int):
    if api not in APIS:
        raise NotImplementedError(f"the mindspore backend has no derivation API {api}")
    names = [n for n, _ in fn["inputs"]]
    # reshape: _tensor goes through np.ascontiguousarray, which makes a 0-d array 1-d
    inputs = [msb._tensor(a, dtype).reshape(a.shape) for _, a in fn["inputs"]]
    params = {n: ms.Parameter(msb._tensor(a, dtype).reshape(a.shape), name=n) for n, a in fn["weights"]}
    outs = fn["outputs"]

    def forward(*xs):
        env = evaluate(fn["ops"], {**dict(zip(names, xs)), **params}, PRIMS)
        res = tuple(env[o] for o in outs)
        return res[0] if len(res) == 1 else res

    gp = args["grad_position"]
    gp = tuple(gp) if isinstance(gp, list) else gp
    wnames = args["weights"] or []
    weights = [params[n] for n in wnames] if args["weights"] is not None else None
    has_aux = args["has_aux"]
    if api == "mindspore.grad":
        for _ in range(repeat):  # functional: every call returns one pass's gradients
            res = ms.grad(forward, grad_position=gp, weights=weights, has_aux=has_aux)(*inputs)
        value = None
        if has_aux:
            res, aux = res
            value = dict(zip(outs[1:], aux))
    else:  # mindspore.value_and_grad
        for _ in range(repeat):
            value, res = ms.value_and_grad(forward, grad_position=gp, weights=weights, has_aux=has_aux)(*inputs)
        value = dict(zip(outs, value if len(outs) > 1 else (value,)))
    pos, wts = _unpack(res, gp, weights)
    selected = [names[i] for i in ((gp,) if isinstance(gp, int) else (gp or ()))]
    if len(pos) != len(selected) or len(wts) != len(wnames):  # never let a structure slip by
        raise StructureError(f"{api} returned {len(pos)}+{len(wts)} gradients for "
                           f"{selected} and {wnames}")
    grads = {n: msb._numpy(g) for n, g in zip(selected + wnames, pos + wts)}
    return grads, None if value is None else {o: msb._numpy(v) for o, v in value.items()}


def run(job: dict) -> dict:
    if msb._DEVICE_SET != job["device"]:
        msb._set_device(job["device"])
        msb._DEVICE_SET = job["device"]
    dtype = msb.DTYPES[job["dtype"]]
    try:
        grads, values = _call(job["api"], job["args"], job["function"], dtype, int(job.get("repeat", 1)))
    except (NotImplementedError, StructureError):
        raise
    except Exception as e:  # noqa: BLE001 - the API under test raised: a behaviour
        msb._drain()
        return {"grads": None, "values": None, "raised": msb._raised(e)}
    return {"grads": grads, "values": values, "raised": None}
