"""MindSpore reproduction snippets, one writer per kind and API (text only: mindspore is not
imported here; safe in the main process).

``SNIPPETS[kind][api](cell, inputs)`` returns the whole snippet: what the worker modules of this
folder do for the cell, written out as a standalone script in PyNative mode on the cell's device.
Clipping: gradients as a tuple of tensors (injected, or from ``mindspore.grad`` over a network
of ``mindspore.nn`` cells), then the target API. Derivation: the case's function over
MindSpore tensors, ``mindspore.grad`` / ``value_and_grad`` and its nested result taken apart
into names. Training: the loop of ``training.py`` with the cell's weights and data as literals.
"""

from __future__ import annotations

from ...kinds.derivation.snippet import function_lines, ident, leaf_lines, names, parts
from ...kinds.derivation.snippet import result_lines as derivation_result
from ...kinds.training.snippet import ACTIVATIONS, groups, param_names, start
from ...snippets import (NoSnippet, array_expr, header, kwargs, layer_sources, literal, model_data, number,
                         result_lines, tensor_value)
from ...spec.models import layer_arrays
from ...spec.values import tensor_data
from ...tensors import is_tensor_arg, param_dtype

_DT = {"float64": "ms.float64", "float32": "ms.float32", "float16": "ms.float16", "bfloat16": "ms.bfloat16"}


# --- clipping ---------------------------------------------------------------------------------

def _tensor(expr: str, dtype: str) -> str:
    """A MindSpore tensor of ``dtype`` from a numpy expression (float32 carries float16/bfloat16
    exactly; numpy has no bfloat16)."""
    if dtype == "float64":
        return f"ms.Tensor(np.asarray({expr}, dtype=np.float64), ms.float64)"
    cast = "" if dtype == "float32" else f".astype({_DT[dtype]})"
    return f"ms.Tensor(np.asarray({expr}, dtype=np.float32), ms.float32){cast}"


def _clipping(call_lines):
    """The clipping writer of an API whose call is written by ``call_lines(args, model,
    single)``: lines that leave ``out`` (the clipped gradients, a tuple aligned with ``grads``)
    and ``returned`` (the norm the API returned, or None)."""

    def write(cell, inputs) -> str:
        case = cell.case
        dt = _DT[cell.dtype]
        lines = [
            *header(cell),
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
            grad_names = [n for n in case.grads if inputs.grads[n] is not None]
        else:
            lines += _model_lines(cell, inputs, dt)
            grad_names = _param_names(cell)
        single = cell.form == "tensor"  # the one gradient as a bare Tensor (`clip.form: tensor`)
        lines += ["", *call_lines(cell.call_args, case.model is not None, single), "",
                  "def numpy64(t):  # numpy has no bfloat16: widen exactly through float32",
                  "    return (t.astype(ms.float32) if t.dtype == ms.bfloat16 else t).asnumpy().astype(np.float64)",
                  f"names = {grad_names!r}",
                  *result_lines("None if returned is None else float(returned.asnumpy())",
                                "{n: numpy64(g) for n, g in zip(names, out)}")]
        return "\n".join(lines) + "\n"

    return write


def _returning(call: str) -> list:
    return [f"out = {call}", "returned = None"]


def _on_form(fn: str):
    """``ops.<fn>`` on the tuple, or on the one gradient as a bare Tensor (``form: tensor``)."""

    def lines(args: dict, model: bool, single: bool) -> list:
        if single:
            return _returning(f"(ops.{fn}(grads[0], {kwargs(args, _tensor_arg)}),)")
        return _returning(f"tuple(ops.{fn}(grads, {kwargs(args, _tensor_arg)}))")

    return lines


_clip_by_norm, _clip_by_global_norm, _clip_by_value = map(_on_form, ("clip_by_norm", "clip_by_global_norm",
                                                                     "clip_by_value"))


def _tensor_arg(value, dtype: str) -> str:
    """A tensor argument (a bound or clip norm given as a Tensor of its own dtype)."""
    return f"ms.Tensor(np.asarray({tensor_value(value)}, np.float64), ms.float64).astype(ms.{dtype})"


def _clamp(args: dict, model: bool, single: bool) -> list:
    return _returning(f"tuple(ops.clamp(g, {kwargs(args, _tensor_arg)}) for g in grads)")


def _clip_by_norm_cell(args: dict, model: bool, single: bool) -> list:
    norm = args["clip_norm"]
    norm = (_tensor_arg(norm["tensor"], norm["dtype"]) if is_tensor_arg(norm)
            else f"ms.Tensor(np.float32({number(norm)}))")
    return _returning(f"tuple(nn.ClipByNorm()(g, {norm}) for g in grads)")


def _vector_norm(args: dict, model: bool, single: bool) -> list:
    order = args.get("ord", 2)
    o = kwargs({"ord": order}).split("=", 1)[1]
    return [f"returned = ops.vector_norm(ops.stack([ops.vector_norm(g, {o}) for g in grads]), {o})",
            "out = grads  # a norm: the gradients are left alone"]


def _via_sgd(call_lines):
    """The suite-only ``<api>.via_sgd``: the clipped tuple applied by nn.SGD."""

    def lines(args: dict, model: bool, single: bool) -> list:
        params = ("weights" if model else
                  "[ms.Parameter(ops.zeros_like(g), name=f'p{i}') for i, g in enumerate(grads)]")
        return call_lines(args, model, single) + [
            f"params = {params}",
            "for p in params:",
            "    p.set_data(ops.zeros_like(p))",
            "nn.SGD(params, learning_rate=1.0)(out)",
            "out = tuple(-p.value() for p in params)  # the clipped gradients SGD applied"]

    return lines


def _param_names(cell) -> list:
    """A model's parameter names in ``weights`` order (torch's nn.Sequential naming)."""
    out = []
    for layer in layer_arrays(cell.case.model, cell.dtype):
        if layer["type"] in ("linear", "conv2d", "embedding"):
            out.append(f"{layer['name']}.weight")
            if layer["type"] != "embedding" and layer.get("bias") is not None:
                out.append(f"{layer['name']}.bias")
    return out


def _model_lines(cell, inputs, dt) -> list:
    model = cell.case.model
    lines = ["cells, weights = [], []"]
    for layer in layer_sources(model, cell.dtype):  # the exact weights the cell used
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
                      f"c.embedding_table = ms.Parameter({_tensor(layer['weight'], cell.dtype)}, "
                      "name='embedding_table')",
                      f"weights.append(c.embedding_table)  # {layer['name']}.weight"]
        else:
            cls = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "flatten": "Flatten"}[kind]
            lines.append(f"c = nn.{cls}()")
        if kind in ("linear", "conv2d"):
            lines += [f"c.weight.set_data({_tensor(layer['weight'], cell.dtype)})",
                      f"weights.append(c.weight)  # {layer['name']}.weight"]
            if has_bias:
                lines += [f"c.bias.set_data({_tensor(layer['bias'], cell.dtype)})",
                          f"weights.append(c.bias)  # {layer['name']}.bias"]
        lines.append("cells.append(c)")
    lines.append("net = nn.SequentialCell(cells)")
    x = inputs.values["inputs"]
    x_src, y_src = model_data(model, inputs)
    if x.dtype.kind in "iu":
        lines.append(f"x = ms.Tensor(np.array({x_src}, dtype=np.int32))")
    else:
        lines.append(f"x = {_tensor(x_src, cell.dtype)}")
    loss = model.loss
    if y_src is None:
        lines.append("y = None")
    elif loss.type == "cross_entropy":
        lines.append(f"y = ms.Tensor(np.array({y_src}, dtype=np.int32))  # int32 class indices")
    else:
        lines.append(f"y = {_tensor(y_src, cell.dtype)}")
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


# --- derivation -------------------------------------------------------------------------------

_NUMPY64 = ["def numpy64(t):",
            "    return None if t is None else (t.astype(ms.float32) if t.dtype == ms.bfloat16 else t).asnumpy().astype(np.float64)"]


def _leaf(literal_: str, name: str, weight: bool, dtype: str) -> str:
    t = f"ms.Tensor({literal_}, ms.{dtype})"
    return f"ms.Parameter({t}, name={name!r})" if weight else t


def _derivation(function_name: str, call_lines):
    """The derivation writer of ``mindspore.<function_name>``; ``call_lines(call, args,
    outputs)`` is (the line making the call, the source of ``result['values']``)."""

    def write(cell, function) -> str:
        p = parts(cell, function, ["import mindspore as ms"])
        lines = p.lines + leaf_lines(p, lambda lit, name, weight: _leaf(lit, name, weight, cell.dtype))
        lines += ["ms.set_context(mode=ms.PYNATIVE_MODE)", ""]
        lines += function_lines("net", p.inputs, p.fn, p.outputs, "ms.ops.tanh")
        args = p.args
        gp = args["grad_position"]
        gp = tuple(gp) if isinstance(gp, list) else gp
        w = None if args["weights"] is None else "[" + ", ".join(ident(n) for n in args["weights"]) + "]"
        call = (f"ms.{function_name}(net, grad_position={gp!r}, weights={w}, has_aux={args['has_aux']!r})"
                f"({', '.join(ident(n) for n in p.inputs)})")
        return "\n".join(lines + _unpack(call_lines, call, gp, args, p.inputs, p.outputs)) + "\n"

    return write


def _grad_call(call: str, args: dict, outputs: list) -> tuple:
    if args["has_aux"]:
        return f"grads, aux = {call}", f"{{n: numpy64(v) for n, v in zip({names(outputs[1:])}, aux)}}"
    return f"grads = {call}", "None"


def _value_and_grad_call(call: str, args: dict, outputs: list) -> tuple:
    return (f"value, grads = {call}",
            f"{{n: numpy64(v) for n, v in zip({names(outputs)}, {'value' if len(outputs) > 1 else '[value]'})}}")


def _unpack(call_lines, call, gp, args, inputs, outputs) -> list:
    """The call, then its nested result taken apart into names: value_and_grad returns
    (value, gradients), grad with has_aux (gradients, aux outputs); the gradients are
    (input gradients, weight gradients) when both are asked for, else one of them (a bare
    tensor for an int grad_position)."""
    wnames = list(args["weights"] or [])
    picked = [inputs[i] for i in ((gp,) if isinstance(gp, int) else (gp or ()))]
    first, values = call_lines(call, args, outputs)
    lines = ["", first]
    if gp is not None and wnames:
        lines.append("input_grads, weight_grads = grads")
        if isinstance(gp, int):
            lines.append("input_grads = (input_grads,)")
        flat = "[*input_grads, *weight_grads]"
    elif gp is not None:
        flat = "[grads]" if isinstance(gp, int) else "list(grads)"  # an int position: a bare tensor
    else:
        flat = "list(grads)"
    return lines + derivation_result(_NUMPY64, f"zip({names(picked + wnames)}, {flat})", values)


# --- training ---------------------------------------------------------------------------------

def _training(scaler: bool):
    """The training writer of an API that is a loss scaler (``scaler``) or the optimizer."""

    def write(cell, model) -> str:
        return "\n".join(start(cell, model) + _training_lines(cell, model.layers, model.step, scaler)) + "\n"

    return write


def _training_lines(cell, layers, st, scaler: bool) -> list:
    dt = f"ms.{cell.dtype}"
    lines = ["import mindspore", "import mindspore as ms", "from mindspore import amp, nn, ops",
             "ms.set_context(mode=ms.PYNATIVE_MODE)", "cells, named = [], {}"]
    for lay in layers:
        if lay["type"] == "linear":
            has_bias = lay["bias"] is not None
            lines += [f"c = nn.Dense({lay['in']}, {lay['out']}, has_bias={has_bias}, dtype={dt})",
                      f"c.weight.set_data(ms.Tensor({literal(lay['weight'])}.astype(np.float32)).astype({dt}))",
                      f"named['{lay['name']}.weight'] = c.weight"]
            if has_bias:
                lines += [f"c.bias.set_data(ms.Tensor({literal(lay['bias'])}.astype(np.float32)).astype({dt}))",
                          f"named['{lay['name']}.bias'] = c.bias"]
            lines.append("cells.append(c)")
        else:
            lines.append(f"cells.append(nn.{ACTIVATIONS[lay['type']]}())")
    pnames = param_names(layers)
    loss = cell.case.model.loss
    loss_cell = {"cross_entropy": "nn.CrossEntropyLoss", "mse": "nn.MSELoss", "l1": "nn.L1Loss"}.get(loss.type)
    lines += ["net = nn.SequentialCell(cells)",
              f"loss_fn = {loss_cell}(reduction='{loss.reduction}')" if loss_cell else
              f"loss_fn = lambda out, _y: out.{'sum' if loss.reduction == 'sum' else 'mean'}()"]
    if scaler:
        lines += [f"opt = nn.SGD({groups(st, pnames, 'lr')}, learning_rate={st['lr']!r})",
                  f"scaler = {cell.api}({kwargs(cell.target_args)})"]
    else:
        lines.append(f"opt = nn.SGD({groups(st, pnames, 'lr')}, {kwargs(cell.target_args)})")
    clip = st["clip_params"] or pnames
    integer = loss.type == "cross_entropy"
    lines += ["def forward(x, y):",
              "    loss = loss_fn(net(x), y) / n",
              f"    return {'scaler.scale(loss)' if scaler else 'loss'}",
              "grad_fn = ms.grad(forward, grad_position=None, weights=list(named.values()))",
              "names = list(named)",
              "for k, s in enumerate(input_scales):",
              "    acc = None",
              "    ys = np.split(np.asarray(y_all), n) if y_all is not None else [None] * n",
              "    for xb, yb in zip(np.split(x_all * s, n), ys):",
              f"        yt = None if yb is None else ms.Tensor(yb.astype({'np.int32' if integer else 'np.float32'}))"
              + ("" if integer else f".astype({dt})"),
              f"        g = grad_fn(ms.Tensor(xb.astype(np.float32)).astype({dt}), yt)",
              "        acc = tuple(g) if acc is None else tuple(a + b for a, b in zip(acc, g))",
              "    finite = True"]
    if scaler:
        lines += ["    finite = bool(amp.all_finite(acc))", "    acc = tuple(scaler.unscale(acc))"]
    lines.append("    grads = list(acc)")
    if st["max_norm"] is not None:
        lines += [f"    idx = [names.index(p) for p in {clip!r}]",
                  f"    for i, c in zip(idx, ops.clip_by_global_norm(tuple(grads[i] for i in idx), {number(st['max_norm'])})):",
                  "        grads[i] = c"]
    lines += ["    if finite:", "        opt(tuple(grads))"]
    if scaler:
        lines += ["    scaler.adjust(ms.Tensor(finite))",
                  "    print('step', k, 'finite', finite, 'scale', float(scaler.scale_value.asnumpy()))"]
    lines += ["result = {'params': {n: p.value().asnumpy().astype(np.float64) for n, p in named.items()}}",
              "for name, a in result['params'].items():",
              "    print(name, a)"]
    return lines


# --- distributed ------------------------------------------------------------------------------

def _distributed(cell, inputs) -> str:
    """A script for ``msrun`` (MindSpore's launcher: a scheduler and ``world_size`` workers on
    CPU): replicated, every rank calls the API on the whole gradients; sharded, every rank
    compiles the semi-auto-parallel network ``distributed.py`` compiles, which MindSpore refuses
    on CPU. Each rank prints what it holds (the suite compares it with the oracle)."""
    case, d = cell.case, cell.case.distributed
    if case.grads is None:
        raise NoSnippet("a distributed model cell has no reproduction snippet yet (its gradients come "
                        "from nn.DistributedGradReducer: distributed.py)")
    world = d.world_size
    lines = [*header(cell),
             f"# run: msrun --worker_num={world} --local_worker_num={world} --join=True THIS_FILE.py",
             "# (with the environment's bin/ first on PATH: msrun starts `python` from PATH)",
             "import numpy as np",
             "import mindspore as ms",
             "from mindspore import nn, ops",
             "from mindspore.communication import get_rank, init",
             "",
             "ms.set_context(mode=ms.PYNATIVE_MODE)",
             "ms.set_device('CPU')",
             "init()",
             "rank = get_rank()"]
    if d.strategy == "sharded":
        lines += ["",
                  "",
                  "class Sharded(nn.Cell):  # a parameter's input cut across the ranks: semi-auto parallel",
                  "    def __init__(self):",
                  "        super().__init__()",
                  "        self.w = ms.Parameter(ms.Tensor(np.ones((4, 3), np.float32)), name='w')",
                  f"        self.mm = ops.MatMul().shard((({world}, 1), (1, 1)))",
                  "",
                  "    def construct(self, x):",
                  "        return self.mm(x, self.w)",
                  "",
                  "",
                  "ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.SEMI_AUTO_PARALLEL)",
                  "ms.set_context(mode=ms.GRAPH_MODE)",
                  f"Sharded()(ms.Tensor(np.ones(({2 * world}, 4), np.float32)))  # on CPU: RuntimeError",
                  "print(f'rank {rank}: compiled')"]
        return "\n".join(lines) + "\n"
    present = [n for n in case.grads if inputs.grads[n] is not None]
    lines += [f"{ident(n)} = {_tensor(array_expr(case.grads[n], inputs.grads[n]), param_dtype(tensor_data(case.grads[n]), cell.dtype))}"
              for n in present]
    lines += [f"clipped = ops.clip_by_global_norm(({', '.join(ident(n) for n in present)},), {kwargs(cell.call_args)})",
              f"for name, g in zip({present!r}, clipped):",
              "    print(f'rank {rank}: {name} {g.asnumpy().astype(np.float64).tolist()}')"]
    return "\n".join(lines) + "\n"


SNIPPETS = {
    "clipping": {
        "mindspore.ops.clip_by_norm": _clipping(_clip_by_norm),
        "mindspore.ops.clip_by_global_norm": _clipping(_clip_by_global_norm),
        "mindspore.ops.clip_by_value": _clipping(_clip_by_value),
        "mindspore.ops.clamp": _clipping(_clamp),
        "mindspore.ops.vector_norm": _clipping(_vector_norm),
        "mindspore.nn.ClipByNorm": _clipping(_clip_by_norm_cell),
        "mindspore.ops.clip_by_norm.via_sgd": _clipping(_via_sgd(_clip_by_norm)),
        "mindspore.ops.clip_by_global_norm.via_sgd": _clipping(_via_sgd(_clip_by_global_norm)),
    },
    "derivation": {
        "mindspore.grad": _derivation("grad", _grad_call),
        "mindspore.value_and_grad": _derivation("value_and_grad", _value_and_grad_call),
    },
    "distributed": {"mindspore.ops.clip_by_global_norm.distributed": _distributed},
    "training": {
        "mindspore.amp.DynamicLossScaler": _training(scaler=True),
        "mindspore.amp.StaticLossScaler": _training(scaler=True),
        "mindspore.nn.SGD": _training(scaler=False),
    },
}
