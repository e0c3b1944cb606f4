"""Paddle's gradient-clipping APIs for clipping jobs (worker side only, dygraph).

Injected gradients: Paddle has no public setter for ``.grad``, so each parameter is created
with zeros and ``(p * g).sum()`` is back-propagated: ``p.grad`` is then exactly ``g`` (the
upstream gradient of ``sum`` is 1, and ``1 * g == g`` in every dtype, NaN and inf included;
float16/bfloat16 go through a float32 cast, whose backward casts ``g`` back exactly).
A parameter whose gradient is ``None`` takes no part in that loss and keeps ``grad is None``.

Model jobs build ``paddle.nn`` layers from the materialised spec (``nets.py``); a Linear
weight's gradient is transposed back, so results are always in torch layout.

APIs: ``paddle.nn.utils.clip_grad_norm_`` / ``clip_grad_value_`` (in place on ``.grad``),
and the ``paddle.nn.ClipGradBy*`` objects, called two ways:

* ``paddle.nn.ClipGradByGlobalNorm`` (and ``...ByNorm``, ``...ByValue``): called directly on
  ``[(param, grad), ...]``, the way an optimizer calls it; the gradients are the returned pairs.
* ``paddle.nn.ClipGradByGlobalNorm.via_sgd`` (a suite-only name): handed to
  ``paddle.optimizer.SGD(learning_rate=1.0, parameters=..., grad_clip=clip)`` whose ``step()``
  updates parameters set to zero after the backward pass, so the clipped gradient is exactly
  ``-p`` afterwards.

Compiled mode (``job["mode"] == "compiled"``, docs/modes.md, ``compiled.py``): the
``paddle.nn.ClipGradBy*`` call on pairs and the ``paddle.nn.utils`` functions run inside
``paddle.jit.to_static(full_graph=True)``, the parameters closed over and the gradients the
converted function's inputs; the ``*.via_sgd`` forms, which ``to_static`` cannot convert (its
``loss.backward()`` raises), are a ``paddle.static.Program`` with ``SGD(grad_clip=...).minimize``
of the injected-gradient loss ``sum((p * g).sum())`` on zero parameters, run by an Executor.

See docs/ARCHITECTURE.md for the job and result shapes. stdlib + numpy + paddle only.
"""

from __future__ import annotations

import os

import numpy as np
import paddle

from . import compiled, nets
from .tensors import check_dtype, numpy, parameter, set_device, tensor, torch_layout


# --- parameters ---------------------------------------------------------------------------------

def injected_params(params: list, dtype: str):
    """[(name, parameter, transpose=False)] whose ``.grad`` equals the job's gradients."""
    named, loss = [], None
    for spec in params:
        pdtype = spec.get("dtype", dtype)  # a parameter's own dtype: mixed dtypes
        p = parameter(spec["shape"], pdtype)
        if spec["grad"] is not None:
            # float16 has no CPU multiply kernel: go through float32 (the cast's backward
            # casts the float32 gradient back, exactly, as g is representable in dtype)
            wide = "float32" if pdtype in ("float16", "bfloat16") else pdtype
            g = tensor(spec["grad"], wide)
            g.stop_gradient = True
            term = ((p if wide == pdtype else p.astype(wide)) * g).sum()
            if term.dtype != paddle.float64 and loss is not None and loss.dtype == paddle.float64:
                term = term.astype("float64")  # mixed float32/float64 terms: one loss dtype
            elif loss is not None and loss.dtype != term.dtype:
                loss = loss.astype(term.dtype)
            loss = term if loss is None else loss + term
        else:
            p.stop_gradient = True  # no gradient at all (grad stays None)
        named.append((spec["name"], p, False))
    if loss is not None:
        loss.backward()
    for _, p, _ in named:  # parameters of the optimizer path must be trainable
        p.stop_gradient = False
    return named


def model_params(model: dict, dtype: str):
    """[(name, parameter, transpose)] of the job's network, after one backward pass of its loss."""
    layers, named = [], []
    for spec in model["layers"]:
        m, params = nets.layer(spec, dtype)
        layers.append((spec["name"], m))
        named += [(f"{spec['name']}.{suffix}", p, tr) for suffix, p, tr in params]
    net = paddle.nn.Sequential(*layers)
    inputs = tensor(model["inputs"], dtype)
    targets = None if model.get("targets") is None else tensor(model["targets"], dtype)
    nets.loss(model["loss"], net(inputs), targets).backward()
    return named


def _grad(p, transpose: bool):
    return torch_layout(numpy(p.grad), transpose)


# --- APIs: (named, args, form) -> (gradients by name, returned norm or None) ---------------------

def _given(named: list, form: str):
    """The ``parameters`` argument: a list, or the one parameter itself (``form: tensor``)."""
    params = [p for _, p, _ in named]
    return params[0] if form == "tensor" else params


def _in_place(api: str, fn, given, args: dict, mode: str):
    """``fn(given, **args)``: directly, or inside ``to_static`` (``given`` closed over)."""
    if mode != "compiled":
        return fn(given, **args)
    grads = [p.grad for p in ([given] if isinstance(given, paddle.Tensor) else given) if p.grad is not None]

    def clip_step(grads):  # (a def: to_static cannot convert a lambda's source here, IndexError)
        return fn(given, **args)
    return compiled.to_static(api, clip_step, grads)


def clip_grad_norm_(named: list, args: dict, form: str = "list", mode: str = "eager"):
    out = _in_place("paddle.nn.utils.clip_grad_norm_", paddle.nn.utils.clip_grad_norm_,
                    _given(named, form), args, mode)
    return {n: _grad(p, tr) for n, p, tr in named}, float(numpy(out).reshape(-1)[0])


def clip_grad_value_(named: list, args: dict, form: str = "list", mode: str = "eager"):
    _in_place("paddle.nn.utils.clip_grad_value_", paddle.nn.utils.clip_grad_value_,
              _given(named, form), args, mode)
    return {n: _grad(p, tr) for n, p, tr in named}, None


def _clip_object(cls: str, args: dict):
    return getattr(paddle.nn, cls)(**{k: v for k, v in args.items() if not (k == "min" and v is None)})


def on_pairs(cls: str):
    """``paddle.nn.<cls>`` called directly on ``[(param, grad), ...]``, as an optimizer calls it."""
    def call(named: list, args: dict, form: str = "list", mode: str = "eager"):  # (pairs: no bare-Tensor form)
        params = [p for _, p, _ in named]
        clip = _clip_object(cls, args)
        if mode == "compiled":
            present = [p for p in params if p.grad is not None]

            def clip_step(grads):
                pairs = []
                for p, g in zip(present, grads):  # p: the program's parameter; g: an input
                    pairs.append((p, g))
                return [g for _, g in clip(pairs)]
            clipped = compiled.to_static(f"paddle.nn.{cls}", clip_step, [p.grad for p in present])
            out = {id(p): g for p, g in zip(present, clipped)}
        else:
            pairs = [(p, p.grad) for p in params if p.grad is not None]
            out = {id(p): g for p, g in clip(pairs)}
        grads = {}
        for n, p, tr in named:
            g = numpy(out[id(p)]) if id(p) in out else numpy(p.grad)
            grads[n] = torch_layout(g, tr)
        return grads, None
    return call


def via_sgd(cls: str):
    """``paddle.nn.<cls>`` as ``paddle.optimizer.SGD(grad_clip=...)``: the clipped gradient is
    read off parameters zeroed before the step."""
    def call(named: list, args: dict, form: str = "list", mode: str = "eager"):  # (an optimizer: no bare-Tensor form)
        params = [p for _, p, _ in named]
        clip = _clip_object(cls, args)
        had = [p.grad is not None for p in params]
        if mode == "compiled":
            return _via_sgd_static(f"paddle.nn.{cls}{VIA_SGD}", named, clip), None
        for p in params:  # model weights are not zero: zero them now (the gradients are computed)
            p.set_value(paddle.zeros(p.shape, dtype=p.dtype))
        opt = paddle.optimizer.SGD(learning_rate=1.0, parameters=params, grad_clip=clip)
        opt.step()
        grads = {}
        for (n, p, tr), h in zip(named, had):
            # p was 0 before the step: p_new = 0 - 1.0 * clipped, exactly
            g = -numpy(p) if h else None
            grads[n] = torch_layout(g, tr)
        return grads, None
    return call


def _via_sgd_static(api: str, named: list, clip) -> dict:
    """The optimizer step as Paddle's classic static graph: zero parameters, the gradients fed
    as data, the loss ``sum((p * g).sum())`` (whose gradient is exactly g; float16/bfloat16
    through a float32 cast, mixed dtypes summed in float64, as ``injected_params``) and
    ``SGD(learning_rate=1.0, grad_clip=clip).minimize(loss)``; the clipped gradient is -p."""
    present = [(n, p) for n, p, _ in named if p.grad is not None]
    if not present:
        raise compiled.NotCompiled(f"{api}: no gradient at all, no loss to minimize: nothing was compiled")
    feed = {}  # (computed in dygraph, before the static program is built)
    for i, (n, p) in enumerate(present):
        dtype = str(p.dtype).split(".")[-1]
        feed[f"g{i}"] = p.grad.astype("float32" if dtype in ("float16", "bfloat16") else dtype).numpy()

    def build():
        loss, out = None, {}
        for i, (n, p) in enumerate(present):
            dtype = str(p.dtype).split(".")[-1]  # "float32", "bfloat16", ...
            wide = "float32" if dtype in ("float16", "bfloat16") else dtype
            w = paddle.static.create_parameter(list(p.shape), dtype, name=f"p{i}",
                                               default_initializer=paddle.nn.initializer.Constant(0.0))
            g = paddle.static.data(f"g{i}", list(p.shape), wide)
            term = ((w if wide == dtype else w.astype(wide)) * g).sum()
            if term.dtype != paddle.float64 and loss is not None and loss.dtype == paddle.float64:
                term = term.astype("float64")
            elif loss is not None and loss.dtype != term.dtype:
                loss = loss.astype(term.dtype)
            loss = term if loss is None else loss + term
            out[n] = w.astype("float32") if dtype == "bfloat16" else w  # numpy has no bfloat16
        paddle.optimizer.SGD(learning_rate=1.0, grad_clip=clip).minimize(loss)
        return out

    values = compiled.static_program(api, build, feed, [n for n, _ in present])
    got = dict(zip([n for n, _ in present], values))
    transposed = {n: tr for n, _, tr in named}
    return {n: (torch_layout(-np.asarray(got[n], dtype=np.float64), transposed[n]) if n in got else None)
            for n, _, _ in named}


CLIP_CLASSES = ("ClipGradByGlobalNorm", "ClipGradByNorm", "ClipGradByValue")
VIA_SGD = ".via_sgd"  # the suite-only suffix of the optimizer path

APIS = {
    "paddle.nn.utils.clip_grad_norm_": clip_grad_norm_,
    "paddle.nn.utils.clip_grad_value_": clip_grad_value_,
    **{f"paddle.nn.{cls}": on_pairs(cls) for cls in CLIP_CLASSES},
    **{f"paddle.nn.{cls}{VIA_SGD}": via_sgd(cls) for cls in CLIP_CLASSES},
}


def _from_paddle(e: BaseException) -> bool:
    """Whether ``e`` comes from Paddle's own code (its innermost frame is in the paddle
    package, or to_static reports it from the converted code), not from the suite's."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    home = os.path.dirname(paddle.__file__) + os.sep
    return (tb is not None and tb.tb_frame.f_code.co_filename.startswith(home)) or "In transformed code" in str(e)


def run(job: dict) -> dict:
    dtype = job["dtype"]
    check_dtype(dtype)
    set_device(job["device"])
    call = APIS[job["api"]]
    if "model" in job:
        try:
            named = model_params(job["model"], dtype)
        except Exception as e:  # e.g. a kernel without this dtype on this device
            return {"grads": {}, "raw_grads": None, "returned": None,
                    "raised": {"type": type(e).__name__,
                               "message": f"building/differentiating the model: {e}"}}
        raw = {n: _grad(p, tr) for n, p, tr in named}
    else:
        named = injected_params(job["params"], dtype)
        raw = None
    mode = job.get("mode", "eager")
    try:
        grads, returned = call(named, job["args"], job.get("form", "list"), mode)
    except NotImplementedError as e:
        if mode != "compiled" or not _from_paddle(e):
            raise
        # compiled: ClipGradByValue has no PIR implementation (ClipGradBase._pir_clip raises it)
        return {"grads": {n: _grad(p, tr) for n, p, tr in named}, "raw_grads": raw,
                "returned": None, "raised": {"type": type(e).__name__, "message": str(e)}}
    except Exception as e:  # the API under test raised: a behaviour, reported to the comparator
        return {"grads": {n: _grad(p, tr) for n, p, tr in named}, "raw_grads": raw,
                "returned": None, "raised": {"type": type(e).__name__, "message": str(e)}}
    return {"grads": grads, "raw_grads": raw, "returned": returned, "raised": None}
