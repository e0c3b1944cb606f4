"""Paddle reproduction snippets (text only: paddle is not imported here), one writer per kind
and API: ``SNIPPETS[kind][api](cell, inputs) -> str``, the same API names as the worker's
``APIS`` tables.

Clipping mirrors ``clipping.py``: injected gradients are produced by back-propagating
``(p * g).sum()`` from zero parameters (float16/bfloat16 through a float32 cast, as Paddle's CPU
build has no half-precision multiply); ``paddle.nn.Linear`` weights are ``[in, out]``, so the
torch-layout arrays are transposed; the ``*.via_sgd`` suite names become an
``paddle.optimizer.SGD(learning_rate=1.0, grad_clip=...)`` step on zeroed parameters.
Compiled cells (``cell.mode``, docs/modes.md) show what ``compiled.py`` runs: the clip inside
``paddle.jit.to_static(clip_step, full_graph=True)`` with the parameters closed over and the
gradients as its input, and for ``*.via_sgd`` a ``paddle.static.Program`` whose
``SGD(grad_clip=...).minimize`` of ``sum((p * g).sum())`` an Executor runs.
Derivation writes the case's function out over Paddle tensors and calls ``paddle.grad`` /
``Tensor.backward``; training writes out the loop of ``training.py``.
"""

from __future__ import annotations

from ...kinds.derivation.snippet import function_lines, ident, leaf_lines, names as _names, parts
from ...kinds.derivation.snippet import result_lines as derivation_result_lines
from ...kinds.training.snippet import ACTIVATIONS, groups, loss_expr, param_names, start
from ...kinds.distributed.snippet import constants as distributed_constants
from ...snippets import NoSnippet, array_expr, data_and_loss_lines, header, kwargs, layer_sources, literal, number, result_lines
from ...spec.values import tensor_data
from ...tensors import param_dtype

# --- clipping ------------------------------------------------------------------------------------


def _clipping(cell, inputs, call_lines) -> str:
    case = cell.case
    dt = f"'{cell.dtype}'"
    wide = "'float32'" if cell.dtype in ("float16", "bfloat16") else dt
    lines = [
        *header(cell),
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
    lines += ["", *call_lines(cell), "",
              "def numpy64(t):  # numpy has no bfloat16: widen exactly through float32",
              "    return None if t is None else (t.astype('float32') if t.dtype == paddle.bfloat16 else t).numpy().astype(np.float64)",
              "grads = [numpy64(g) for g in grads]"]
    if transposed:
        lines += [f"for i in {transposed!r}:  # Linear weights: Paddle's [in, out] -> torch's [out, in]",
                  "    grads[i] = grads[i].T"]
    lines += [f"names = {names!r}",
              *result_lines("None if out is None else float(out)", "dict(zip(names, grads))")]
    return "\n".join(lines) + "\n"


def _clip_ctor(cls: str, args: dict) -> str:
    kept = {k: v for k, v in args.items() if not (k == "min" and v is None)}
    return f"paddle.nn.{cls}({kwargs(kept)})"


def _compiled(cell) -> bool:
    return getattr(cell, "mode", "eager") == "compiled"


def _in_place_call(cell) -> list:
    """``paddle.nn.utils.clip_grad_norm_`` / ``clip_grad_value_``: in place on ``.grad``."""
    given = "params[0]" if cell.form == "tensor" else "params"  # `clip.form: tensor`: one bare Tensor
    call = f"{cell.api}({given}, {kwargs(dict(cell.target_args))})"
    if _compiled(cell):
        return ["def clip_step(grads):  # compiled: the call inside paddle.jit.to_static",
                f"    return {call}",
                "static = paddle.jit.to_static(clip_step, full_graph=True)  # AST conversion, no fallback to dygraph",
                "out = static([p.grad for p in params if p.grad is not None])",
                "grads = [p.grad for p in params]"]
    return [f"out = {call}",
            "grads = [p.grad for p in params]"]


def _via_sgd_static(cls: str, cell) -> list:
    """Compiled ``*.via_sgd``: to_static cannot convert the step (``loss.backward()`` raises), so
    Paddle's classic static graph: a Program with ``SGD(grad_clip=...).minimize``, an Executor."""
    return [f"clip = {_clip_ctor(cls, dict(cell.target_args))}",
            "present = [p for p in params if p.grad is not None]",
            "wide = lambda d: 'float32' if d in ('float16', 'bfloat16') else d",
            "kinds = [str(p.dtype).split('.')[-1] for p in present]",
            "feed = {f'g{i}': p.grad.astype(wide(d)).numpy() for i, (p, d) in enumerate(zip(present, kinds))}",
            "# compiled: to_static cannot convert a step with loss.backward() (AttributeError:",
            "# 'paddle.base.libpaddle.pir.Value' object has no attribute 'backward'): a static Program",
            "main, startup = paddle.static.Program(), paddle.static.Program()",
            "paddle.enable_static()",
            "with paddle.static.program_guard(main, startup):",
            "    loss, weights = None, []",
            "    for i, (p, d) in enumerate(zip(present, kinds)):",
            "        w = paddle.static.create_parameter(list(p.shape), d, name=f'p{i}', default_initializer=zero)",
            "        g = paddle.static.data(f'g{i}', list(p.shape), wide(d))",
            "        term = ((w if wide(d) == d else w.astype(wide(d))) * g).sum()  # its gradient is exactly g",
            "        if term.dtype != paddle.float64 and loss is not None and loss.dtype == paddle.float64:",
            "            term = term.astype('float64')",
            "        elif loss is not None and loss.dtype != term.dtype:",
            "            loss = loss.astype(term.dtype)",
            "        loss = term if loss is None else loss + term",
            "        weights.append(w.astype('float32') if d == 'bfloat16' else w)",
            "    paddle.optimizer.SGD(learning_rate=1.0, grad_clip=clip).minimize(loss)",
            "exe = paddle.static.Executor(paddle.CPUPlace())",
            "exe.run(startup)",
            "values = exe.run(main, feed=feed, fetch_list=weights)  # the parameters after the step",
            "paddle.disable_static()",
            "after = dict(zip(map(id, present), values))",
            "out = None",
            "grads = [paddle.to_tensor(-after[id(p)]) if id(p) in after else None for p in params]  # -p: the clipped gradient"]


def _via_sgd_call(cls: str):
    def call(cell) -> list:
        if _compiled(cell):
            return _via_sgd_static(cls, cell)
        return [f"clip = {_clip_ctor(cls, dict(cell.target_args))}",
                "had = [p.grad is not None for p in params]",
                "for p in params:  # start the step from zero: the clipped gradient is then -p",
                "    p.set_value(paddle.zeros(p.shape, dtype=p.dtype))",
                "opt = paddle.optimizer.SGD(learning_rate=1.0, parameters=params, grad_clip=clip)",
                "opt.step()",
                "out = None",
                "grads = [-p if h else None for p, h in zip(params, had)]"]
    return call


def _pairs_call(cls: str):
    def call(cell) -> list:
        if _compiled(cell):
            return [f"clip = {_clip_ctor(cls, dict(cell.target_args))}",
                    "present = [p for p in params if p.grad is not None]",
                    "def clip_step(grads):  # compiled: the clip inside paddle.jit.to_static",
                    "    pairs = []",
                    "    for p, g in zip(present, grads):  # p closed over: the program's parameter (need_clip)",
                    "        pairs.append((p, g))",
                    "    return [g for _, g in clip(pairs)]",
                    "static = paddle.jit.to_static(clip_step, full_graph=True)  # AST conversion, no fallback to dygraph",
                    "clipped = static([p.grad for p in present])",
                    "print(static.program_cache.last()[1][0].main_program)  # the static program that ran",
                    "by_param = dict(zip(map(id, present), clipped))",
                    "out = None",
                    "grads = [by_param.get(id(p), p.grad) for p in params]"]
        return [f"clip = {_clip_ctor(cls, dict(cell.target_args))}",
                "pairs = clip([(p, p.grad) for p in params if p.grad is not None])",
                "by_param = {id(p): g for p, g in pairs}",
                "out = None",
                "grads = [by_param.get(id(p), p.grad) for p in params]"]
    return call


def _model_lines(cell, inputs, dt) -> tuple:
    model = cell.case.model
    lines, mods, transposed, setup, names = [], [], [], [], []
    index = 0
    for layer in layer_sources(model, cell.dtype):  # the exact weights the cell used
        name, kind = layer["name"], layer["type"]
        if kind in ("linear", "conv2d", "embedding"):
            has_bias = layer.get("bias") is not None
            bias = "" if has_bias or kind == "embedding" else ", bias_attr=False"
            if kind == "linear":
                mods.append(f"('{name}', paddle.nn.Linear({layer['in']}, {layer['out']}{bias}))")
                w = f"({layer['weight']}).T"  # torch [out, in] -> paddle [in, out]
                transposed.append(index)
            elif kind == "conv2d":
                mods.append(f"('{name}', paddle.nn.Conv2D({layer['in']}, {layer['out']}, {tuple(layer['kernel'])}, "
                            f"stride={tuple(layer['stride'])}, padding={tuple(layer['padding'])}{bias}))")
                w = layer["weight"]
            else:
                mods.append(f"('{name}', paddle.nn.Embedding({layer['num']}, {layer['dim']}))")
                w = layer["weight"]
            setup.append(f"layers['{name}'].weight.set_value(paddle.to_tensor({w}).astype({dt}))")
            names.append(f"{name}.weight")
            index += 1
            if has_bias and kind != "embedding":
                setup.append(f"layers['{name}'].bias.set_value(paddle.to_tensor({layer['bias']}).astype({dt}))")
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
        model, inputs,
        lambda lit, integer: f"paddle.to_tensor({lit}).astype({repr('int64') if integer else dt})",
        "paddle.nn.functional")
    lines += ["loss.backward()", "params = list(net.parameters())"]
    return lines, transposed, names


def _clipping_writer(call_lines):
    def write(cell, inputs) -> str:
        return _clipping(cell, inputs, call_lines)
    return write


_CLIP_CLASSES = ("ClipGradByGlobalNorm", "ClipGradByNorm", "ClipGradByValue")

CLIPPING = {
    "paddle.nn.utils.clip_grad_norm_": _clipping_writer(_in_place_call),
    "paddle.nn.utils.clip_grad_value_": _clipping_writer(_in_place_call),
    **{f"paddle.nn.{cls}": _clipping_writer(_pairs_call(cls)) for cls in _CLIP_CLASSES},
    **{f"paddle.nn.{cls}.via_sgd": _clipping_writer(_via_sgd_call(cls)) for cls in _CLIP_CLASSES},
}


# --- derivation ----------------------------------------------------------------------------------

_NUMPY64 = ["def numpy64(t):",  # a tensor as float64 numpy (numpy has no bfloat16: widen exactly through float32)
            "    return None if t is None else (t.astype('float32') if t.dtype == paddle.bfloat16 else t).numpy().astype(np.float64)"]


def _derivation_start(cell, function):
    """The leaves (every input and weight a tensor with ``stop_gradient=False``), the function
    ``f`` and its call: what ``paddle.grad`` and ``Tensor.backward`` snippets share."""
    p = parts(cell, function, ["import paddle"])
    lines = p.lines + leaf_lines(
        p, lambda lit, name, weight: f"paddle.to_tensor({lit}, dtype={cell.dtype!r}, stop_gradient=False)")
    leaves = p.inputs + p.weights
    lines += function_lines("f", leaves, p.fn, p.outputs, "paddle.tanh")
    lines += ["", f"{', '.join(ident(o) for o in p.outputs)} = "
                  f"f({', '.join(ident(n) for n in leaves)})"]
    return p, lines


def _grad(cell, function) -> str:
    p, lines = _derivation_start(cell, function)
    args = p.args
    outs = ", ".join(ident(o) for o in args["outputs"])
    ins = ", ".join(ident(n) for n in args["inputs"])
    lines += [f"grads = {cell.api}([{outs}], [{ins}], allow_unused={args['allow_unused']!r})",
              *derivation_result_lines(_NUMPY64, f"zip({_names(args['inputs'])}, grads)")]
    return "\n".join(lines) + "\n"


def _backward(cell, function) -> str:
    p, lines = _derivation_start(cell, function)
    leaves = p.inputs + p.weights
    lines += [f"for _ in range({p.repeat}):", f"    {ident(p.args['output'])}.backward(retain_graph=True)"]
    lines += derivation_result_lines(_NUMPY64, f"zip({_names(leaves)}, [{', '.join(ident(n) for n in leaves)}])",
                                     grad="g.grad")
    return "\n".join(lines) + "\n"


DERIVATION = {"paddle.grad": _grad, "paddle.Tensor.backward": _backward}


# --- training ------------------------------------------------------------------------------------

def _training(cell, model) -> str:
    """The loop of ``training.py`` written out (the API decides scaler / clip in the optimizer)."""
    head = start(cell, model)
    layers, st = model.layers, model.step
    dt = cell.dtype
    lines = ["import paddle", "paddle.set_device('cpu')", "layers = []"]
    for lay in layers:
        if lay["type"] == "linear":
            lines += [f"m = paddle.nn.Linear({lay['in']}, {lay['out']}, bias_attr={None if lay['bias'] is not None else False})",
                      f"m.to(dtype='{dt}')" if dt != "float32" else "",
                      # torch layout [out, in] -> Paddle's [in, out]
                      f"m.weight.set_value(paddle.to_tensor({literal(lay['weight'])}.T).astype('{dt}'))"]
            if lay["bias"] is not None:
                lines.append(f"m.bias.set_value(paddle.to_tensor({literal(lay['bias'])}).astype('{dt}'))")
            lines.append(f"layers.append(('{lay['name']}', m))")
        else:
            lines.append(f"layers.append(('{lay['name']}', paddle.nn.{ACTIVATIONS[lay['type']]}()))")
    lines = [ln for ln in lines if ln]
    names = param_names(layers)
    lines += ["net = paddle.nn.Sequential(*layers)",
              "named = {n + '.' + k: getattr(m, k) for n, m in layers if isinstance(m, paddle.nn.Linear)"
              " for k in ('weight', 'bias') if getattr(m, k) is not None}",
              f"y = None if y_all is None else paddle.to_tensor(np.asarray(y_all){'' if cell.case.model.loss.type == 'cross_entropy' else f'.astype(np.{dt})'})"]
    clip = st["clip_params"] or names
    in_opt, scaler = _TRAINING_FORMS[cell.api]
    if in_opt:
        lines += ["for name, p in named.items():", f"    p.need_clip = name in {clip!r}",
                  f"clip = paddle.nn.ClipGradByGlobalNorm(clip_norm={number(st['max_norm'])})" if st["max_norm"] is not None
                  else "clip = None",
                  f"opt = paddle.optimizer.SGD(parameters={groups(st, names, 'learning_rate')}, grad_clip=clip, "
                  f"{kwargs(cell.target_args)})"]
    elif scaler:
        lines += [f"opt = paddle.optimizer.SGD(learning_rate={st['lr']!r}, parameters={groups(st, names, 'learning_rate')})",
                  f"scaler = paddle.amp.GradScaler({kwargs(cell.target_args)})",
                  "print('scaler enabled:', scaler.is_enable())"]
    else:
        lines.append(f"opt = paddle.optimizer.SGD(parameters={groups(st, names, 'learning_rate')}, "
                     f"{kwargs(cell.target_args)})")
    lines += ["for k, s in enumerate(input_scales):",
              "    opt.clear_grad(set_to_zero=False)",
              f"    xs = paddle.split(paddle.to_tensor(x_all * s).astype('{dt}'), n)",
              "    ys = paddle.split(y, n) if y is not None else [None] * n",
              "    for xb, yb in zip(xs, ys):",
              f"        loss = {loss_expr(cell, 'paddle.nn.functional')} / n",
              f"        {'scaler.scale(loss)' if scaler else 'loss'}.backward()"]
    if scaler:
        lines.append("    scaler.unscale_(opt)")
    if st["max_norm"] is not None and not in_opt:
        lines.append("    paddle.nn.utils.clip_grad_norm_([" + ", ".join(f"named['{p}']" for p in clip)
                     + f"], {number(st['max_norm'])})")
    if scaler:
        lines += ["    scaler.step(opt)", "    scaler.update()"]
    else:
        lines.append("    opt.step()")
    lines += ["result = {'params': {}}  # Linear weights in torch's [out, in] layout",
              "for name, p in named.items():",
              "    a = p.numpy().astype(np.float64)",
              "    result['params'][name] = a.T if name.endswith('weight') else a",
              "for name, a in result['params'].items():",
              "    print(name, a)"]
    return "\n".join(head + lines) + "\n"


#: training API -> (the clip inside the optimizer, a GradScaler)
_TRAINING_FORMS = {"paddle.amp.GradScaler": (False, True), "paddle.optimizer.SGD": (False, False),
                   "paddle.optimizer.SGD.grad_clip": (True, False)}

TRAINING = {api: _training for api in _TRAINING_FORMS}


# --- distributed ------------------------------------------------------------------------------

def _distributed(cell, inputs) -> str:
    """A standalone script: ``world_size`` ranks (``paddle.distributed.spawn``, gloo on CPU)
    each make the clipping call on its shard (auto-parallel ``Shard(dim)`` DistTensors, the
    gradients from ``(p * g).sum()`` as in ``distributed.py``) and print what each rank
    returned and holds afterwards (the suite compares each rank's shard with the oracle's slice)."""
    case = cell.case
    if case.grads is None:
        raise NoSnippet("a distributed model cell has no reproduction snippet yet (its gradients come "
                        "from paddle.DataParallel or auto-parallel: distributed.py)")
    if cell.api == "paddle.nn.ClipGradByGlobalNorm.distributed":
        call = [f"    clip = paddle.nn.ClipGradByGlobalNorm({kwargs(cell.call_args)})",
                "    clipped = dict((id(p), g) for p, g in clip([(p, p.grad) for p in params if p.grad is not None]))",
                "    out = None"]
    else:
        call = [f"    out = paddle.nn.utils.clip_grad_norm_(params, {kwargs(cell.call_args)})",
                "    clipped = {}"]
    lines = [
        *header(cell),
        "import numpy as np",
        "import paddle",
        "import paddle.distributed as dist",
        "",
        *distributed_constants(cell, inputs, repr),
        "",
        "",
        "def local(t):",
        "    return t._local_value() if t is not None and t.is_dist() else t",
        "",
        "",
        "def rank_main():",
        "    dist.init_parallel_env()",
        "    rank, mesh = dist.get_rank(), dist.ProcessMesh(list(range(WORLD)), dim_names=['x'])",
        "    params, loss = [], None",
        "    for name, g in GRADS.items():",
        "        p = paddle.create_parameter(shape=list(g.shape if g is not None else (1,)), dtype=DTYPES[name],",
        "                                    default_initializer=paddle.nn.initializer.Constant(0.0))",
        "        if name in SPLIT:",
        "            p = dist.shard_tensor(p, mesh, [dist.Shard(SPLIT[name])])",
        "        if g is not None:  # (p * g).sum() back-propagated: p.grad is g (its shard)",
        "            t = paddle.to_tensor(g).astype(DTYPES[name])",
        "            t = dist.shard_tensor(t, mesh, [dist.Shard(SPLIT[name])]) if name in SPLIT else t",
        "            t.stop_gradient = True",
        "            term = (p * t).sum().astype('float64')",
        "            loss = term if loss is None else loss + term",
        "        params.append(p)",
        "    if loss is not None:",
        "        loss.backward()",
        *call,
        "    if out is not None and out.is_dist():  # a Partial norm is reduced when resharded",
        "        out = dist.reshard(out, mesh, [dist.Replicate()])",
        "    lines = [f'rank {rank}: returned {None if out is None else float(local(out).numpy().reshape(-1)[0])!r}']",
        "    for name, p in zip(GRADS, params):",
        "        g = local(clipped.get(id(p), p.grad))",
        "        lines.append(f'rank {rank}: {name} {None if g is None else g.astype(\"float64\").numpy()}')",
        "    for r in range(WORLD):  # the ranks' printouts one after the other, not interleaved",
        "        if r == rank:",
        "            print('\\n'.join(lines), flush=True)",
        "        dist.barrier()",
        "",
        "",
        "if __name__ == '__main__':",
        "    paddle.set_device('cpu')",
        "    dist.spawn(rank_main, nprocs=WORLD)",
    ]
    return "\n".join(lines) + "\n"


DISTRIBUTED = {"paddle.nn.utils.clip_grad_norm_.distributed": _distributed,
               "paddle.nn.ClipGradByGlobalNorm.distributed": _distributed}


SNIPPETS = {"clipping": CLIPPING, "derivation": DERIVATION, "distributed": DISTRIBUTED, "training": TRAINING}
