"""Reproduction snippets for training-step cells, one writer per framework (text only).

Each snippet is the loop of that framework's ``conformance/backends/<fw>_train.py`` written out
with the cell's weights and data as numpy literals, and prints what the cell compares (the
parameters after the steps, skipped steps, scale); ``result['params']`` holds the parameters
(float64 numpy, torch's layout). Layers: linear, relu, tanh, sigmoid.
"""

from __future__ import annotations

from . import _kwargs, _literal, number

_ACT = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid"}


def snippet(cell, inputs) -> str:
    from ..runner import _layer_arrays  # the exact weights the cell used
    from ..train_runner import step_job

    layers = _layer_arrays(cell.case, cell.dtype)
    bad = [lay["type"] for lay in layers if lay["type"] not in ("linear", *_ACT)]
    if bad:
        return f"# no training snippet for layers {bad} (linear and activations only)\n"
    write = {"torch": _torch, "paddle": _paddle, "mindspore": _mindspore}.get(cell.backend)
    if write is None:
        return f"# no training snippet for {cell.backend}\n"
    st = step_job(cell)
    x, y = inputs.values["inputs"], inputs.values["targets"]
    head = [f"# {cell.id}", f"# case file: {cell.source.path}:{cell.source.line}",
            "import numpy as np", f"x_all = {_literal(x)}",
            f"y_all = {'None' if y is None else (repr(y.tolist()) if y.dtype.kind in 'iu' else _literal(y))}",
            f"input_scales = {st['input_scales']!r}", f"n = {st['micro_batches']}  # micro-batches"]
    return "\n".join(head + write(cell, layers, st)) + "\n"


def _groups(st, names, lr_key):
    groups = st["groups"] or [{"params": names}]
    out = []
    for g in groups:
        extra = "".join(f", '{k2}': {g[k]!r}" for k, k2 in (("lr", lr_key), ("weight_decay", "weight_decay"))
                        if g.get(k) is not None)
        out.append("{'params': [" + ", ".join(f"named['{p}']" for p in g["params"]) + "]" + extra + "}")
    return "[" + ", ".join(out) + "]"


def _names(layers):
    return [f"{lay['name']}.{k}" for lay in layers if lay["type"] == "linear"
            for k in ("weight", "bias") if lay.get(k) is not None]


def _loss(cell, functional):
    loss = cell.case.model.loss
    fn = {"cross_entropy": "cross_entropy", "mse": "mse_loss", "l1": "l1_loss"}.get(loss.type)
    if fn:
        return f"{functional}.{fn}(net(xb), yb, reduction='{loss.reduction}')"
    return f"net(xb).{'sum' if loss.reduction == 'sum' else 'mean'}()"


def _torch(cell, layers, st) -> list:
    dt = f"torch.{cell.dtype}"
    mods = []
    for lay in layers:
        if lay["type"] == "linear":
            mods.append(f"('{lay['name']}', torch.nn.Linear({lay['in']}, {lay['out']}, bias={lay['bias'] is not None}))")
        else:
            mods.append(f"('{lay['name']}', torch.nn.{_ACT[lay['type']]}())")
    lines = ["import torch", "from collections import OrderedDict",
             "net = torch.nn.Sequential(OrderedDict([" + ", ".join(mods) + f"])).to({dt})",
             "with torch.no_grad():"]
    for lay in layers:
        for k in ("weight", "bias"):
            if lay.get(k) is not None:
                lines.append(f"    net.get_submodule('{lay['name']}').{k}.copy_(torch.tensor({_literal(lay[k])}))")
    names = _names(layers)
    integer = cell.case.model.loss.type == "cross_entropy"
    lines += ["named = dict(net.named_parameters())",
              f"y = None if y_all is None else torch.tensor(y_all, dtype={'torch.long' if integer else dt})"]
    scaler = cell.api == "torch.amp.GradScaler"
    if scaler:
        lines += [f"opt = torch.optim.SGD({_groups(st, names, 'lr')}, lr={st['lr']!r})",
                  f"scaler = torch.amp.GradScaler('cpu', {_kwargs(cell.target_args)})"]
    else:
        lines.append(f"opt = torch.optim.SGD({_groups(st, names, 'lr')}, {_kwargs(cell.target_args)})")
    clip = st["clip_params"] or names
    lines += ["for k, s in enumerate(input_scales):",
              "    opt.zero_grad(set_to_none=True)",
              f"    x = torch.tensor(x_all * s, dtype={dt})",
              "    for xb, yb in zip(torch.chunk(x, n), torch.chunk(y, n) if y is not None else [None] * n):",
              f"        loss = {_loss(cell, 'torch.nn.functional')} / n",
              f"        {'scaler.scale(loss)' if scaler else 'loss'}.backward()"]
    if scaler:
        lines.append("    scaler.unscale_(opt)")
    if st["max_norm"] is not None:
        lines.append("    torch.nn.utils.clip_grad_norm_([" + ", ".join(f"named['{p}']" for p in clip)
                     + f"], {number(st['max_norm'])})")
    if scaler:
        lines += ["    scaler.step(opt)", "    scaler.update()", "    print('step', k, 'scale', scaler.get_scale())"]
    else:
        lines.append("    opt.step()")
    lines += ["result = {'params': {n: p.detach().double().numpy() for n, p in named.items()}}",
              "for name, a in result['params'].items():",
              "    print(name, a)"]
    return lines


def _paddle(cell, layers, st) -> list:
    dt = cell.dtype
    lines = ["import paddle", "paddle.set_device('cpu')", "layers = []"]
    for lay in layers:
        if lay["type"] == "linear":
            lines += [f"m = paddle.nn.Linear({lay['in']}, {lay['out']}, bias_attr={None if lay['bias'] is not None else False})",
                      f"m.to(dtype='{dt}')" if dt != "float32" else "",
                      # torch layout [out, in] -> Paddle's [in, out]
                      f"m.weight.set_value(paddle.to_tensor({_literal(lay['weight'])}.T).astype('{dt}'))"]
            if lay["bias"] is not None:
                lines.append(f"m.bias.set_value(paddle.to_tensor({_literal(lay['bias'])}).astype('{dt}'))")
            lines.append(f"layers.append(('{lay['name']}', m))")
        else:
            lines.append(f"layers.append(('{lay['name']}', paddle.nn.{_ACT[lay['type']]}()))")
    lines = [ln for ln in lines if ln]
    names = _names(layers)
    lines += ["net = paddle.nn.Sequential(*layers)",
              "named = {n + '.' + k: getattr(m, k) for n, m in layers if isinstance(m, paddle.nn.Linear)"
              " for k in ('weight', 'bias') if getattr(m, k) is not None}",
              f"y = None if y_all is None else paddle.to_tensor(np.asarray(y_all){'' if cell.case.model.loss.type == 'cross_entropy' else f'.astype(np.{dt})'})"]
    clip = st["clip_params"] or names
    in_opt = cell.api == "paddle.optimizer.SGD.grad_clip"
    scaler = cell.api == "paddle.amp.GradScaler"
    if in_opt:
        lines += ["for name, p in named.items():", f"    p.need_clip = name in {clip!r}",
                  f"clip = paddle.nn.ClipGradByGlobalNorm(clip_norm={number(st['max_norm'])})" if st["max_norm"] is not None
                  else "clip = None",
                  f"opt = paddle.optimizer.SGD(parameters={_groups(st, names, 'learning_rate')}, grad_clip=clip, "
                  f"{_kwargs(cell.target_args)})"]
    elif scaler:
        lines += [f"opt = paddle.optimizer.SGD(learning_rate={st['lr']!r}, parameters={_groups(st, names, 'learning_rate')})",
                  f"scaler = paddle.amp.GradScaler({_kwargs(cell.target_args)})",
                  "print('scaler enabled:', scaler.is_enable())"]
    else:
        lines.append(f"opt = paddle.optimizer.SGD(parameters={_groups(st, names, 'learning_rate')}, "
                     f"{_kwargs(cell.target_args)})")
    lines += ["for k, s in enumerate(input_scales):",
              "    opt.clear_grad(set_to_zero=False)",
              f"    xs = paddle.split(paddle.to_tensor(x_all * s).astype('{dt}'), n)",
              "    ys = paddle.split(y, n) if y is not None else [None] * n",
              "    for xb, yb in zip(xs, ys):",
              f"        loss = {_loss(cell, 'paddle.nn.functional')} / n",
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
    return lines


def _mindspore(cell, layers, st) -> list:
    dt = f"ms.{cell.dtype}"
    lines = ["import mindspore", "import mindspore as ms", "from mindspore import amp, nn, ops",
             "ms.set_context(mode=ms.PYNATIVE_MODE)", "cells, named = [], {}"]
    for lay in layers:
        if lay["type"] == "linear":
            has_bias = lay["bias"] is not None
            lines += [f"c = nn.Dense({lay['in']}, {lay['out']}, has_bias={has_bias}, dtype={dt})",
                      f"c.weight.set_data(ms.Tensor({_literal(lay['weight'])}.astype(np.float32)).astype({dt}))",
                      f"named['{lay['name']}.weight'] = c.weight"]
            if has_bias:
                lines += [f"c.bias.set_data(ms.Tensor({_literal(lay['bias'])}.astype(np.float32)).astype({dt}))",
                          f"named['{lay['name']}.bias'] = c.bias"]
            lines.append("cells.append(c)")
        else:
            lines.append(f"cells.append(nn.{_ACT[lay['type']]}())")
    names = _names(layers)
    loss = cell.case.model.loss
    loss_cell = {"cross_entropy": "nn.CrossEntropyLoss", "mse": "nn.MSELoss", "l1": "nn.L1Loss"}.get(loss.type)
    lines += ["net = nn.SequentialCell(cells)",
              f"loss_fn = {loss_cell}(reduction='{loss.reduction}')" if loss_cell else
              f"loss_fn = lambda out, _y: out.{'sum' if loss.reduction == 'sum' else 'mean'}()"]
    scaler = cell.api in ("mindspore.amp.DynamicLossScaler", "mindspore.amp.StaticLossScaler")
    if scaler:
        lines += [f"opt = nn.SGD({_groups(st, names, 'lr')}, learning_rate={st['lr']!r})",
                  f"scaler = {cell.api}({_kwargs(cell.target_args)})"]
    else:
        lines.append(f"opt = nn.SGD({_groups(st, names, 'lr')}, {_kwargs(cell.target_args)})")
    clip = st["clip_params"] or names
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
