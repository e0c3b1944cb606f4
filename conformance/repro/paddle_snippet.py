"""Paddle reproduction snippets (text only: paddle is not imported here).

Mirrors conformance/backends/paddle_backend.py: injected gradients are produced by
back-propagating ``(p * g).sum()`` from zero parameters (float16/bfloat16 through a float32
cast, as Paddle's CPU build has no half-precision multiply); ``paddle.nn.Linear`` weights are
``[in, out]``, so the torch-layout arrays are transposed; the ``*.via_sgd`` suite names become
an ``paddle.optimizer.SGD(learning_rate=1.0, grad_clip=...)`` step on zeroed parameters.
"""

from __future__ import annotations

from ..spec import tensor_data
from ..tensors import param_dtype
from . import _kwargs, _literal, array_expr, data_and_loss_lines, result_lines

_VIA_SGD = ".via_sgd"


def snippet(cell, inputs) -> str:
    case = cell.case
    dt = f"'{cell.dtype}'"
    wide = "'float32'" if cell.dtype in ("float16", "bfloat16") else dt
    lines = [
        f"# {cell.id}",
        f"# case file: {cell.source.path}:{cell.source.line}",
        "import numpy as np",
        "import paddle",
        "",
        f"paddle.set_device({'gpu' if cell.device == 'gpu' else 'cpu'!r})",
        "zero = paddle.nn.initializer.Constant(0.0)",
    ]
    if case.grads is not None:
        lines += ["params, loss = [], None"]
        for name, value in case.grads.items():
            g = inputs.grads[name]
            shape = [1] if g is None else list(g.shape)
            pdtype = param_dtype(None if value is None else tensor_data(value), cell.dtype)
            dt = repr(pdtype)  # mixed dtypes: this parameter's own
            wide = "'float32'" if pdtype in ("float16", "bfloat16") else dt
            lines.append(f"p = paddle.create_parameter({shape}, {dt}, default_initializer=zero)  # {name}")
            if g is None:
                lines.append("p.stop_gradient = True  # no gradient")
            else:
                cast = "p" if wide == dt else f"p.astype({wide})"
                lines += [f"g = paddle.to_tensor({array_expr(value, g)}).astype({wide})",
                          f"term = ({cast} * g).sum()  # p.grad becomes exactly g",
                          "loss = term if loss is None else loss + term"]
            lines.append("params.append(p)")
        if any(g is not None for g in inputs.grads.values()):
            lines.append("loss.backward()")
        else:
            lines.append("# no gradients at all: nothing to back-propagate")
        lines += ["for p in params:", "    p.stop_gradient = False"]
        transposed = []
        names = list(case.grads)
    else:
        more, transposed, names = _model_lines(cell, inputs, dt)
        lines += more
    lines += ["", *_call_lines(cell), "",
              "def numpy64(t):  # numpy has no bfloat16: widen exactly through float32",
              "    return None if t is None else (t.astype('float32') if t.dtype == paddle.bfloat16 else t).numpy().astype(np.float64)",
              "grads = [numpy64(g) for g in grads]"]
    if transposed:
        lines += [f"for i in {transposed!r}:  # Linear weights: Paddle's [in, out] -> torch's [out, in]",
                  "    grads[i] = grads[i].T"]
    lines += [f"names = {names!r}",
              *result_lines("None if out is None else float(out)", "dict(zip(names, grads))")]
    return "\n".join(lines) + "\n"


def _clip_ctor(api: str, args: dict) -> str:
    cls = api.rsplit(".", 1)[1]
    kept = {k: v for k, v in args.items() if not (k == "min" and v is None)}
    return f"paddle.nn.{cls}({_kwargs(kept)})"


def _call_lines(cell) -> list[str]:
    api, args = cell.api, dict(cell.target_args)
    if api in ("paddle.nn.utils.clip_grad_norm_", "paddle.nn.utils.clip_grad_value_"):
        return [f"out = {api}(params, {_kwargs(args)})",
                "grads = [p.grad for p in params]"]
    if api.endswith(_VIA_SGD):
        return [f"clip = {_clip_ctor(api[: -len(_VIA_SGD)], args)}",
                "had = [p.grad is not None for p in params]",
                "for p in params:  # start the step from zero: the clipped gradient is then -p",
                "    p.set_value(paddle.zeros(p.shape, dtype=p.dtype))",
                "opt = paddle.optimizer.SGD(learning_rate=1.0, parameters=params, grad_clip=clip)",
                "opt.step()",
                "out = None",
                "grads = [-p if h else None for p, h in zip(params, had)]"]
    return [f"clip = {_clip_ctor(api, args)}",
            "pairs = clip([(p, p.grad) for p in params if p.grad is not None])",
            "by_param = {id(p): g for p, g in pairs}",
            "out = None",
            "grads = [by_param.get(id(p), p.grad) for p in params]"]


def _model_lines(cell, inputs, dt) -> tuple[list[str], list[int], list[str]]:
    from ..runner import _layer_arrays  # the exact weights the cell used

    model = cell.case.model
    lines, mods, transposed, setup, names = [], [], [], [], []
    index = 0
    for layer in _layer_arrays(cell.case, cell.dtype):
        name, kind = layer["name"], layer["type"]
        if kind in ("linear", "conv2d", "embedding"):
            has_bias = layer.get("bias") is not None
            bias = "" if has_bias or kind == "embedding" else ", bias_attr=False"
            if kind == "linear":
                mods.append(f"('{name}', paddle.nn.Linear({layer['in']}, {layer['out']}{bias}))")
                w = f"{_literal(layer['weight'])}.T"  # torch [out, in] -> paddle [in, out]
                transposed.append(index)
            elif kind == "conv2d":
                mods.append(f"('{name}', paddle.nn.Conv2D({layer['in']}, {layer['out']}, {tuple(layer['kernel'])}, "
                            f"stride={tuple(layer['stride'])}, padding={tuple(layer['padding'])}{bias}))")
                w = _literal(layer["weight"])
            else:
                mods.append(f"('{name}', paddle.nn.Embedding({layer['num']}, {layer['dim']}))")
                w = _literal(layer["weight"])
            setup.append(f"layers['{name}'].weight.set_value(paddle.to_tensor({w}).astype({dt}))")
            names.append(f"{name}.weight")
            index += 1
            if has_bias and kind != "embedding":
                setup.append(f"layers['{name}'].bias.set_value(paddle.to_tensor({_literal(layer['bias'])}).astype({dt}))")
                names.append(f"{name}.bias")
                index += 1
        else:
            cls = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "flatten": "Flatten"}[kind]
            mods.append(f"('{name}', paddle.nn.{cls}())")
    lines.append("net = paddle.nn.Sequential(" + ", ".join(mods) + ")")
    lines.append(f"net.to(dtype={dt})")
    lines.append("layers = dict(net.named_children())")
    lines += setup
    lines += data_and_loss_lines(
        inputs, model.loss,
        lambda lit, integer: f"paddle.to_tensor({lit}).astype({repr('int64') if integer else dt})",
        "paddle.nn.functional")
    lines += ["loss.backward()", "params = list(net.parameters())"]
    return lines, transposed, names
