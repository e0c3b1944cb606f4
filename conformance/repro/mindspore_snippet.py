"""MindSpore reproduction snippets (text only: mindspore is not imported here).

The snippet does what conformance/backends/mindspore_backend.py does for the cell: gradients as
a tuple of tensors (injected, or from ``mindspore.grad`` over a network of ``mindspore.nn``
cells), then the target API, in PyNative mode on the cell's device.
"""

from __future__ import annotations

from ..spec import tensor_data
from ..tensors import param_dtype
from . import _any_literal, _kwargs, _literal, array_expr, number, result_lines

_DT = {"float64": "ms.float64", "float32": "ms.float32", "float16": "ms.float16", "bfloat16": "ms.bfloat16"}


def _tensor(expr: str, dtype: str) -> str:
    """A MindSpore tensor of ``dtype`` from a numpy expression (float32 carries float16/bfloat16
    exactly; numpy has no bfloat16)."""
    if dtype == "float64":
        return f"ms.Tensor(np.asarray({expr}, dtype=np.float64), ms.float64)"
    cast = "" if dtype == "float32" else f".astype({_DT[dtype]})"
    return f"ms.Tensor(np.asarray({expr}, dtype=np.float32), ms.float32){cast}"


def snippet(cell, inputs) -> str:
    case = cell.case
    dt = _DT[cell.dtype]
    lines = [
        f"# {cell.id}",
        f"# case file: {cell.source.path}:{cell.source.line}",
        "import numpy as np",
        "import mindspore as ms",
        "from mindspore import nn, ops",
        "",
        "ms.set_context(mode=ms.PYNATIVE_MODE)",
        f"ms.set_device({'GPU' if cell.device == 'gpu' else 'CPU'!r})",
        "",
    ]
    if case.grads is not None:
        lines.append("grads = []  # MindSpore clips gradient tensors, not parameters")
        for name, value in case.grads.items():
            g = inputs.grads[name]
            if g is None:
                lines.append(f"# {name}: no gradient (left out of the tuple)")
                continue
            pdtype = param_dtype(tensor_data(value), cell.dtype)  # mixed dtypes
            lines.append(f"grads.append({_tensor(array_expr(value, g), pdtype)})  # {name}")
        lines.append("grads = tuple(grads)")
        names = [n for n in case.grads if inputs.grads[n] is not None]
        single = len(names) == 1
    else:
        lines += _model_lines(cell, inputs, dt)
        names, single = _param_names(cell), False
    lines += ["", *_call_lines(cell.api, dict(cell.target_args), case.model is not None, single), "",
              "def numpy64(t):  # numpy has no bfloat16: widen exactly through float32",
              "    return (t.astype(ms.float32) if t.dtype == ms.bfloat16 else t).asnumpy().astype(np.float64)",
              f"names = {names!r}",
              *result_lines("None if returned is None else float(returned.asnumpy())",
                            "{n: numpy64(g) for n, g in zip(names, out)}")]
    return "\n".join(lines) + "\n"


def _call_lines(api: str, args: dict, model: bool, single: bool) -> list[str]:
    """``out``: the clipped gradients, a tuple aligned with ``grads``; ``returned``: the norm
    the API returned, or None."""
    if api.endswith(".via_sgd"):  # suite-only name: the clipped tuple applied by nn.SGD
        lines = _call_lines(api[:-len(".via_sgd")], args, model, single)
        params = ("weights" if model else
                  "[ms.Parameter(ops.zeros_like(g), name=f'p{i}') for i, g in enumerate(grads)]")
        return lines + [f"params = {params}",
                        "for p in params:",
                        "    p.set_data(ops.zeros_like(p))",
                        "nn.SGD(params, learning_rate=1.0)(out)",
                        "out = tuple(-p.value() for p in params)  # the clipped gradients SGD applied"]
    short = api.replace("mindspore.", "", 1)
    if api == "mindspore.ops.vector_norm":
        order = args.get("ord", 2)
        o = _kwargs({"ord": order}).split("=", 1)[1]
        return [f"returned = ops.vector_norm(ops.stack([ops.vector_norm(g, {o}) for g in grads]), {o})",
                "out = grads  # a norm: the gradients are left alone"]
    if api == "mindspore.ops.clamp":
        call = f"tuple(ops.clamp(g, {_kwargs(args)}) for g in grads)"
    elif api == "mindspore.nn.ClipByNorm":
        call = (f"tuple(nn.ClipByNorm()(g, ms.Tensor(np.float32({number(args['clip_norm'])}))) "
                "for g in grads)")
    elif api == "mindspore.ops.clip_by_norm" and single:  # one gradient: the single-tensor form
        call = f"(ops.clip_by_norm(grads[0], {_kwargs(args)}),)"
    else:
        call = f"tuple({short}(grads, {_kwargs(args)}))"
    return [f"out = {call}", "returned = None"]


def _param_names(cell) -> list[str]:
    """A model's parameter names in ``weights`` order (torch's nn.Sequential naming)."""
    from ..runner import _layer_arrays

    names = []
    for layer in _layer_arrays(cell.case, cell.dtype):
        if layer["type"] in ("linear", "conv2d", "embedding"):
            names.append(f"{layer['name']}.weight")
            if layer["type"] != "embedding" and layer.get("bias") is not None:
                names.append(f"{layer['name']}.bias")
    return names


def _model_lines(cell, inputs, dt) -> list[str]:
    from ..runner import _layer_arrays  # the exact weights the cell used

    model = cell.case.model
    lines = ["cells, weights = [], []"]
    for layer in _layer_arrays(cell.case, cell.dtype):
        kind = layer["type"]
        has_bias = layer.get("bias") is not None
        if kind == "linear":
            lines.append(f"c = nn.Dense({layer['in']}, {layer['out']}, has_bias={has_bias}, dtype={dt})")
        elif kind == "conv2d":
            (kh, kw), (sh, sw), (ph, pw) = layer["kernel"], layer["stride"], layer["padding"]
            lines.append(f"c = nn.Conv2d({layer['in']}, {layer['out']}, ({kh}, {kw}), stride=({sh}, {sw}), "
                         f"pad_mode='pad', padding=({ph}, {ph}, {pw}, {pw}), has_bias={has_bias}, dtype={dt})")
        elif kind == "embedding":
            lines += [f"c = nn.Embedding({layer['num']}, {layer['dim']})",
                      "# nn.Embedding's table is float32 whatever dtype= says: replace it",
                      f"c.embedding_table = ms.Parameter({_tensor(_literal(layer['weight']), cell.dtype)}, "
                      "name='embedding_table')",
                      f"weights.append(c.embedding_table)  # {layer['name']}.weight"]
        else:
            cls = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "flatten": "Flatten"}[kind]
            lines.append(f"c = nn.{cls}()")
        if kind in ("linear", "conv2d"):
            lines += [f"c.weight.set_data({_tensor(_literal(layer['weight']), cell.dtype)})",
                      f"weights.append(c.weight)  # {layer['name']}.weight"]
            if has_bias:
                lines += [f"c.bias.set_data({_tensor(_literal(layer['bias']), cell.dtype)})",
                          f"weights.append(c.bias)  # {layer['name']}.bias"]
        lines.append("cells.append(c)")
    lines.append("net = nn.SequentialCell(cells)")
    x = inputs.values["inputs"]
    if x.dtype.kind in "iu":
        lines.append(f"x = ms.Tensor(np.array({_any_literal(x)}, dtype=np.int32))")
    else:
        lines.append(f"x = {_tensor(_literal(x), cell.dtype)}")
    y = inputs.values["targets"]
    loss = model.loss
    if y is None:
        lines.append("y = None")
    elif loss.type == "cross_entropy":
        lines.append(f"y = ms.Tensor(np.array({_any_literal(y)}, dtype=np.int32))  # int32 class indices")
    else:
        lines.append(f"y = {_tensor(_literal(y), cell.dtype)}")
    cls = {"cross_entropy": "CrossEntropyLoss", "mse": "MSELoss", "l1": "L1Loss"}.get(loss.type)
    if cls:
        lines += [f"loss_fn = nn.{cls}(reduction={loss.reduction!r})",
                  "def forward(x, y):", "    return loss_fn(net(x), y)"]
    else:
        red = "sum" if loss.reduction == "sum" else "mean"
        lines += ["def forward(x, y):", f"    return net(x).{red}()"]
    lines += ["grads = ms.grad(forward, grad_position=None, weights=weights)(x, y)",
              "print('gradients before clipping:', grads)"]
    return lines
