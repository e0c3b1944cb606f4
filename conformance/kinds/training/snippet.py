"""What every framework's training-step snippets share (text only): the data lines every
snippet starts with, and the pieces of the loop the writers in
``conformance/frameworks/<name>/snippets.py`` put together. A snippet is that framework's
training loop written out with the cell's weights and data as numpy literals; it prints what the
cell compares (the parameters after the steps, skipped steps, scale) and leaves them in
``result['params']`` (float64 numpy, torch's layout). Layers: linear and activations."""

from __future__ import annotations

from ...snippets import NoSnippet, header, literal

#: activation layer type -> the class name torch, Paddle and MindSpore all use
ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid"}


def start(cell, model) -> list:
    """The header and the data: ``x_all``, ``y_all``, ``input_scales`` and ``n`` (micro-batches).
    ``model`` is what the training kind hands a writer (``cell.Model``). Raises NoSnippet for a
    layer the training snippets cannot write."""
    bad = [lay["type"] for lay in model.layers if lay["type"] not in ("linear", *ACTIVATIONS)]
    if bad:
        raise NoSnippet(f"no training snippet for layers {bad} (linear and activations only)")
    x, y, st = model.inputs, model.targets, model.step
    return [*header(cell), "import numpy as np", f"x_all = {literal(x)}",
            f"y_all = {'None' if y is None else (repr(y.tolist()) if y.dtype.kind in 'iu' else literal(y))}",
            f"input_scales = {st['input_scales']!r}", f"n = {st['micro_batches']}  # micro-batches"]


def groups(st: dict, names: list, lr_key: str) -> str:
    """The optimizer's parameter groups as source: ``[{'params': [named['0.weight'], ...], ...}]``
    (``lr_key``: what the framework calls a group's learning rate)."""
    out = []
    for g in st["groups"] or [{"params": names}]:
        extra = "".join(f", '{k2}': {g[k]!r}" for k, k2 in (("lr", lr_key), ("weight_decay", "weight_decay"))
                        if g.get(k) is not None)
        out.append("{'params': [" + ", ".join(f"named['{p}']" for p in g["params"]) + "]" + extra + "}")
    return "[" + ", ".join(out) + "]"


def param_names(layers: list) -> list:
    """The network's parameter names (``<layer>.weight``, ``<layer>.bias``), in order."""
    return [f"{lay['name']}.{k}" for lay in layers if lay["type"] == "linear"
            for k in ("weight", "bias") if lay.get(k) is not None]


def loss_expr(cell, functional: str) -> str:
    """The loss of a micro-batch ``xb``, ``yb`` through ``net``, with the framework's functional
    losses named as torch's (``functional``: ``torch.nn.functional``)."""
    loss = cell.case.model.loss
    fn = {"cross_entropy": "cross_entropy", "mse": "mse_loss", "l1": "l1_loss"}.get(loss.type)
    if fn:
        return f"{functional}.{fn}(net(xb), yb, reduction='{loss.reduction}')"
    return f"net(xb).{'sum' if loss.reduction == 'sum' else 'mean'}()"
