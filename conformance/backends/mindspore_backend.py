"""The MindSpore backend: runs one cell's job with the real MindSpore API (worker side only).

PyNative mode. MindSpore keeps gradients apart from parameters: injected gradients are plain
tensors passed as a tuple to the clipping API (parameters without a gradient are left out of the
tuple and come back as ``None``); model jobs build the network from ``mindspore.nn`` cells, set
the job's weights, and differentiate with ``mindspore.grad(fn, grad_position=None,
weights=...)`` (MindSpore's gradient-derivation page, seed 003). The clipping APIs return new
tensors; those are the gradients "after the call". ``<api>.via_sgd`` (a suite-only name) is
the training-loop form: the clipped tuple handed to ``nn.SGD(params, learning_rate=1.0)`` whose
parameters were set to zero, read back as ``-p``. A failure while building or differentiating
the network (a dtype without a kernel) is reported as ``raised``, so the registry can declare it
unsupported. See docs/ARCHITECTURE.md for the job and result shapes. Imports only the standard
library, numpy (<2) and mindspore.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

# MindSpore dumps compile-failure IR (rank_0/om/analyze_fail.ir) into the current directory,
# i.e. the user's project; send it to a temporary directory unless the user chose a place.
os.environ.setdefault("MS_OM_PATH", os.path.join(tempfile.gettempdir(), "gradclip-mindspore-om"))

import mindspore as ms  # noqa: E402
from mindspore import nn, ops

NAME = "mindspore"
DTYPES = {"float64": ms.float64, "float32": ms.float32,
          "float16": ms.float16, "bfloat16": ms.bfloat16}

VIA_SGD = ".via_sgd"  # suite-only API suffix: the clipped gradients applied by nn.SGD

ms.set_context(mode=ms.PYNATIVE_MODE)
# PyNative launches kernels asynchronously: without this, an op that fails inside a tuple API
# (hyper_map over the gradients) can report its error at the *next* cell's first tensor access.
if hasattr(ms, "runtime") and hasattr(ms.runtime, "launch_blocking"):
    ms.runtime.launch_blocking()
_GPU_REASON = None


def _gpu_reason():
    """None if this MindSpore build can use a GPU, else why not (checked once, lazily)."""
    global _GPU_REASON
    if _GPU_REASON is None:
        try:
            ok = bool(ms.hal.is_available("GPU"))
            _GPU_REASON = "" if ok else ("mindspore.hal.is_available('GPU') is False "
                                         "(a CPU-only MindSpore build or no CUDA device)")
        except Exception as e:  # noqa: BLE001 - any failure means: no GPU here
            _GPU_REASON = f"cannot query MindSpore GPU support: {type(e).__name__}: {e}"
    return _GPU_REASON or None


def info(device: str) -> dict:
    return {"version": ms.__version__.split("+")[0], "build": ms.__version__,
            "devices": {"cpu": None, "gpu": _gpu_reason()}}


def _set_device(name: str) -> None:
    target = "GPU" if name == "gpu" else "CPU"
    try:
        ms.set_device(target)
    except (AttributeError, TypeError):  # older MindSpore: device_target in the context
        ms.set_context(device_target=target)
    except RuntimeError:  # already set to this target in this process
        pass


_DEVICE_SET = None


def _tensor(arr, dtype) -> ms.Tensor:
    a = np.asarray(arr)
    if a.dtype.kind in "iu":
        return ms.Tensor(a.astype(np.int32))
    a = np.array(a, dtype=np.float64, order="C")  # not ascontiguousarray: it makes 0-d arrays 1-d
    if dtype == ms.float64:
        return ms.Tensor(a, ms.float64)
    # float32 holds every float16/bfloat16 value exactly: cast once, in MindSpore
    t = ms.Tensor(a.astype(np.float32), ms.float32)
    return t if dtype == ms.float32 else t.astype(dtype)


def _numpy(t) -> np.ndarray | None:
    if t is None:
        return None
    if t.dtype == ms.bfloat16:  # numpy has no bfloat16: widen exactly first
        t = t.astype(ms.float32)
    return np.asarray(t.asnumpy(), dtype=np.float64)


# --- models -----------------------------------------------------------------------------------

def _cell(layer: dict, dtype):
    """One mindspore.nn cell for a materialised layer, and its [(suffix, Parameter)]."""
    kind = layer["type"]
    if kind == "linear":
        has_bias = layer["bias"] is not None
        c = nn.Dense(layer["in"], layer["out"], has_bias=has_bias, dtype=dtype)
        params = [("weight", c.weight)] + ([("bias", c.bias)] if has_bias else [])
    elif kind == "conv2d":
        has_bias = layer["bias"] is not None
        ph, pw = layer["padding"]
        c = nn.Conv2d(layer["in"], layer["out"], tuple(layer["kernel"]), stride=tuple(layer["stride"]),
                      pad_mode="pad", padding=(ph, ph, pw, pw), has_bias=has_bias, dtype=dtype)
        params = [("weight", c.weight)] + ([("bias", c.bias)] if has_bias else [])
    elif kind == "embedding":
        c = nn.Embedding(layer["num"], layer["dim"])
        # nn.Embedding creates a float32 table whatever its dtype= says, and set_data keeps that
        # dtype: replace the parameter with one of the cell's dtype
        c.embedding_table = ms.Parameter(_tensor(layer["weight"], dtype), name="embedding_table")
        params = [("weight", c.embedding_table)]
    else:
        return {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
                "flatten": nn.Flatten}[kind](), []
    for suffix, p in params:
        value = layer["weight"] if suffix == "weight" else layer["bias"]
        if kind != "embedding":
            p.set_data(_tensor(value, dtype))
        if p.dtype != dtype:  # set_data may keep the parameter's dtype: never compute in another
            raise TypeError(f"{layer['name']}.{suffix} is {p.dtype} after set_data, wanted {dtype}")
    return c, params


def _loss_fn(spec: dict):
    red = spec.get("reduction", "mean")
    kind = spec["type"]
    if kind == "cross_entropy":
        return nn.CrossEntropyLoss(reduction=red)  # class indices as int32 (see _tensor)
    if kind == "mse":
        return nn.MSELoss(reduction=red)
    if kind == "l1":
        return nn.L1Loss(reduction=red)
    return (lambda out, _t: out.sum()) if red == "sum" else (lambda out, _t: out.mean())


def _model_grads(model: dict, dtype):
    """[(name, raw gradient, Parameter)] from mindspore.grad over the network's parameters, in
    job order."""
    cells, named = [], []
    for layer in model["layers"]:
        c, params = _cell(layer, dtype)
        cells.append(c)
        named += [(f"{layer['name']}.{suffix}", p) for suffix, p in params]
    net = nn.SequentialCell(cells)
    loss = _loss_fn(model["loss"])
    inputs = _tensor(model["inputs"], dtype)
    targets = None if model.get("targets") is None else _tensor(model["targets"], dtype)

    def forward(x, y):
        return loss(net(x), y)

    weights = [p for _, p in named]
    grads = ms.grad(forward, grad_position=None, weights=weights)(inputs, targets)
    return [(n, g, p) for (n, p), g in zip(named, grads)]


# --- APIs -------------------------------------------------------------------------------------

def _total_norm(grads: tuple, ord_):
    """The total-norm composite: vector_norm of the stacked per-tensor vector_norms."""
    norms = [ops.vector_norm(g, ord_) for g in grads]
    return ops.vector_norm(ops.stack(norms), ord_)


def _call(api: str, grads: tuple, args: dict):
    """(clipped gradients as a tuple aligned with ``grads``, returned norm tensor or None)."""
    if api == "mindspore.ops.clip_by_norm":
        if len(grads) == 1:  # one gradient is passed as a bare tensor (the single-tensor form)
            return (ops.clip_by_norm(grads[0], **args),), None
        return tuple(ops.clip_by_norm(grads, **args)), None
    if api == "mindspore.ops.clip_by_global_norm":
        return tuple(ops.clip_by_global_norm(grads, **args)), None
    if api == "mindspore.ops.clip_by_value":
        return tuple(ops.clip_by_value(grads, **args)), None
    if api == "mindspore.ops.clamp":
        return tuple(ops.clamp(g, **args) for g in grads), None
    if api == "mindspore.ops.vector_norm":
        return grads, _total_norm(grads, args.get("ord", 2))
    if api == "mindspore.nn.ClipByNorm":
        clip = nn.ClipByNorm()
        max_norm = ms.Tensor(np.float32(args["clip_norm"]))
        return tuple(clip(g, max_norm) for g in grads), None
    raise NotImplementedError(f"the mindspore backend does not know {api}")


def _via_sgd(api: str, names: list, tensors: list, params, present: list, args: dict) -> tuple:
    """The training-loop form: clip with ``api``, then ``nn.SGD(params, learning_rate=1.0)``
    applies the clipped gradients to parameters set to zero, so each clipped gradient is read
    back as ``-p`` (exact: 0 - 1.0 * g). ``params``: the network's own parameters (model jobs),
    else new zero parameters of the gradients' shapes and dtype."""
    clipped, _ = _call(api, tuple(tensors[i] for i in present), args)
    if params is None:
        chosen = [ms.Parameter(ops.zeros_like(tensors[i]), name=f"p{i}.{names[i]}") for i in present]
    else:
        chosen = [params[i] for i in present]
        for p in chosen:
            p.set_data(ops.zeros_like(p))
    optimizer = nn.SGD(chosen, learning_rate=1.0)
    optimizer(tuple(clipped))
    return tuple(-p.value() for p in chosen)


def _drain() -> None:
    """Consume errors still queued by a failed call so that they cannot surface in the next job."""
    for _ in range(8):  # (ms.runtime.synchronize() is a logged no-op on CPU: sync by a read)
        try:
            (ms.Tensor(np.zeros(1, np.float32)) + 1).asnumpy()
            return
        except Exception:  # noqa: BLE001 - an already-reported failure of this cell
            continue


def _raised(e: Exception) -> dict:
    msg = str(e).strip()
    if len(msg) > 2000:
        msg = msg[:2000] + " ..."
    return {"type": type(e).__name__, "message": msg}


def run(job: dict) -> dict:
    if job.get("kind") == "derive":  # gradient-derivation APIs (docs/derivation.md)
        from . import mindspore_derive

        return mindspore_derive.run(job)
    global _DEVICE_SET
    if _DEVICE_SET != job["device"]:
        _set_device(job["device"])
        _DEVICE_SET = job["device"]
    if job.get("kind") == "train":  # a training-step job (docs/training.md)
        from . import mindspore_train

        return mindspore_train.run(job)
    dtype = DTYPES[job["dtype"]]
    if "model" in job:
        try:
            pairs = _model_grads(job["model"], dtype)
        except Exception as e:  # noqa: BLE001 - e.g. an op without a kernel for this dtype
            _drain()
            names = [f"{l['name']}.{s}" for l in job["model"]["layers"]
                     for s in (("weight", "bias") if l["type"] in ("linear", "conv2d") else
                               ("weight",) if l["type"] == "embedding" else ())
                     if s == "weight" or l.get("bias") is not None]
            return {"grads": {n: None for n in names}, "raw_grads": None, "returned": None,
                    "raised": _raised(e)}
        names = [n for n, _, _ in pairs]
        tensors = [g for _, g, _ in pairs]
        params = [p for _, _, p in pairs]
        raw = {n: _numpy(g) for n, g, _ in pairs}
    else:
        names = [p["name"] for p in job["params"]]
        tensors = [None if p["grad"] is None else _tensor(p["grad"], DTYPES[p.get("dtype", job["dtype"])])
                   for p in job["params"]]  # a parameter's own "dtype": mixed dtypes
        params = None
        raw = None
    present = [i for i, t in enumerate(tensors) if t is not None]
    before = {n: _numpy(t) for n, t in zip(names, tensors)}
    api = job["api"]
    try:
        if api.endswith(VIA_SGD):
            clipped = _via_sgd(api[:-len(VIA_SGD)], names, tensors, params, present, job["args"])
            returned = None
        else:
            clipped, returned = _call(api, tuple(tensors[i] for i in present), job["args"])
        out = list(tensors)
        for i, t in zip(present, clipped):
            out[i] = t
        grads = {n: _numpy(t) for n, t in zip(names, out)}
        norm = None if returned is None else float(_numpy(returned).reshape(-1)[0])
    except NotImplementedError:
        raise
    except Exception as e:  # noqa: BLE001 - the API under test raised: a behaviour
        _drain()
        return {"grads": before, "raw_grads": raw, "returned": None, "raised": _raised(e)}
    if len(clipped) != len(present):  # a runner error: never let an input pass for an output
        raise RuntimeError(f"{api} returned {len(clipped)} tensors for {len(present)} gradients")
    return {"grads": grads, "raw_grads": raw, "returned": norm, "raised": None}
