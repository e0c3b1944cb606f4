"""Copy-paste reproduction snippets: the helpers every framework's writers share, and
``snippet(cell, inputs)``, which finds the writer of the cell's framework, kind and API in
``conformance/frameworks/<name>/snippets.py`` (``SNIPPETS[kind][api]``). Text only: no framework
is imported here. Values are embedded as numpy literals when small, else as the numpy
expression of the case's generator, so a snippet runs without this suite installed.
"""

from __future__ import annotations

import numpy as np

from . import frameworks
from .spec.models import layer_arrays, layer_param_specs
from .spec.values import tensor_data
from .tensors import is_tensor_arg

_INLINE_LIMIT = 16  # elements: a larger generated array is written as its generator expression


def number(v) -> str:
    """Python source for a number: ``float('inf')``, ``-float('inf')`` and ``float('nan')`` where
    ``repr`` would write ``inf``/``nan``, names a pasted snippet does not have."""
    if isinstance(v, float) and not np.isfinite(v):
        return "float('nan')" if np.isnan(v) else ("float('inf')" if v > 0 else "-float('inf')")
    return repr(v)


def literal(a: np.ndarray) -> str:
    if a.size == 0:  # "[]" would lose the shape ([0, 10], say)
        return f"np.zeros({tuple(a.shape)!r})"
    body = np.array2string(np.asarray(a, dtype=np.float64), separator=", ", threshold=10**9,
                           floatmode="unique", max_line_width=100)
    body = body.replace("nan", "np.nan").replace("inf", "np.inf")
    return f"np.array({body})"


def tensor_value(value) -> str:
    """Python source of a tensor argument's value (``{"tensor": v, ...}``): a number, or a numpy
    array of a list's shape (``[1.0]``: a bound of shape [1])."""
    a = np.asarray(value, dtype=np.float64)
    return number(float(a)) if a.ndim == 0 else literal(a)


def any_literal(a: np.ndarray) -> str:
    return repr(a.tolist()) if a.dtype.kind in "iu" else literal(a)


def _generator_expr(spec: dict) -> str:
    shape = tuple(spec.get("shape") or ())
    scale = f" * {number(spec['scale'])}" if spec.get("scale", 1.0) != 1.0 else ""
    if "random" in spec:
        rng = f"np.random.default_rng({spec.get('seed', 0)})"
        if spec["random"] == "normal":
            return f"{rng}.normal({number(spec.get('mean', 0.0))}, {number(spec.get('std', 1.0))}, size={shape}){scale}"
        if spec["random"] == "uniform":
            return f"{rng}.uniform({number(spec.get('low', -1.0))}, {number(spec.get('high', 1.0))}, size={shape}){scale}"
        return f"{rng}.integers({int(spec['low'])}, {int(spec['high'])}, size={shape})"
    if "fill" in spec:
        return f"np.full({shape}, {number(float(spec['fill']))}){scale}"
    start, stop = spec["arange"]
    reshape = f".reshape({shape})" if shape else ""
    return f"np.arange({start!r}, {stop!r}, dtype=np.float64){reshape}{scale}"


def _source(spec, a: np.ndarray) -> str:
    """numpy source for array ``a`` made from ``spec`` (a generator dict, or the values): the
    generator's expression, with ``a``'s shape, when ``a`` is large; else a literal."""
    if (isinstance(spec, dict) and not spec.get("put") and a.size > _INLINE_LIMIT
            and list(spec.get("shape") or a.shape) == list(a.shape)):
        return _generator_expr(dict(spec, shape=list(a.shape)))
    return literal(a)


def array_expr(value, materialised: np.ndarray) -> str:
    """numpy source for a case tensor value: literal when small, generator expression else."""
    return _source(tensor_data(value), np.asarray(materialised))


def layer_sources(model, dtype: str) -> list[dict]:
    """``layer_arrays(model, dtype)`` with each weight and bias as numpy source: a literal when
    small, else its generator's expression (a 784x32 layer as a literal made 700 KB snippets)."""
    out = []
    for arrays, specs in zip(layer_arrays(model, dtype), layer_param_specs(model)):
        layer = dict(arrays)
        for key in ("weight", "bias"):
            if layer.get(key) is not None:
                spec, shape = specs[key]  # a default init has no shape of its own: the layer's
                layer[key] = _source(dict(spec, shape=spec.get("shape") or shape) if isinstance(spec, dict)
                                     else spec, layer[key])
        out.append(layer)
    return out


def kwargs(args: dict, tensor=None) -> str:
    """Keyword arguments as source. ``tensor(value, dtype)`` writes a tensor argument
    (``{"tensor": v, "dtype": d}``, conformance.tensors) as the framework's constructor; a
    framework whose snippet may meet one passes it."""
    def one(v) -> str:
        if is_tensor_arg(v):
            if tensor is None:
                raise ValueError("a tensor argument in a snippet without the framework's tensor writer")
            return tensor(v["tensor"], v["dtype"])
        return number(v)
    return ", ".join(f"{k}={one(v)}" for k, v in args.items() if v is not None)


def model_data(model, inputs) -> tuple:
    """numpy source of a model's ``(inputs, targets)`` (None where it has no targets): integer
    arrays (class and embedding indices) as literals, float ones by ``array_expr``."""
    def source(value, a):
        if a is None:
            return None
        return any_literal(a) if a.dtype.kind in "iu" else array_expr(value, a)
    return (source(model.inputs, inputs.values["inputs"]),
            source(model.targets, inputs.values["targets"]))


def data_and_loss_lines(model, inputs, tensor, functional: str) -> list[str]:
    """``x``, ``y`` and ``loss`` lines of a model snippet, shared by frameworks whose functional
    losses are named like torch's (``cross_entropy``, ``mse_loss``, ``l1_loss``).

    ``tensor(source, integer) -> str`` writes the framework's tensor constructor;
    ``functional`` is the module holding the losses (``torch.nn.functional``).
    """
    loss = model.loss
    x_src, y_src = model_data(model, inputs)
    lines = [f"x = {tensor(x_src, inputs.values['inputs'].dtype.kind in 'iu')}"]
    if y_src is not None:
        lines.append(f"y = {tensor(y_src, loss.type == 'cross_entropy')}")
    fn = {"cross_entropy": "cross_entropy", "mse": "mse_loss", "l1": "l1_loss"}.get(loss.type)
    if fn:
        lines.append(f"loss = {functional}.{fn}(net(x), y, reduction='{loss.reduction}')")
    else:
        lines.append(f"loss = net(x).{'sum' if loss.reduction == 'sum' else 'mean'}()")
    return lines


def result_lines(returned: str, grads: str) -> list[str]:
    """The end of every clipping snippet: ``result``, what the suite compared for the cell, in
    float64 numpy and torch's layout (``returned``: the norm the API returned or None;
    ``grads``: parameter name -> clipped gradient or None), then printed."""
    return [f"result = {{'returned': {returned},",
            f"          'grads': {grads}}}",
            "print('returned:', result['returned'])",
            "for name, g in result['grads'].items():",
            "    print(name, g)"]


class NoSnippet(ValueError):
    """A writer cannot write this cell (its message becomes the snippet's one comment line)."""


def comment(text: str) -> str:
    """A ``#`` comment line holding ``text`` with every newline, control character, backslash and
    non-ASCII character escaped: text from a case file (its path, a sweep value in a cell id) can
    never end the comment and become code."""
    return "# " + str(text).encode("unicode_escape").decode("ascii")


def header(cell) -> list[str]:
    """The first lines of every snippet: the cell and the case file it comes from."""
    return [comment(cell.id), comment(f"case file: {cell.source.path}:{cell.source.line}")]


def snippet(cell, inputs) -> str:
    """A copy-paste reproduction of ``cell`` in its target framework. ``inputs`` is what the
    cell's kind materialised (the writers of that kind know its shape)."""
    try:
        table = frameworks.part(cell.framework, "snippets").SNIPPETS.get(cell.kind.name, {})
        write = table.get(cell.api)
        if write is None:
            return f"# no reproduction snippet for {cell.api} yet\n"
        return write(cell, inputs)
    except NoSnippet as e:
        return f"# {e}\n"
    except Exception as e:  # a snippet must never break a run
        return f"# could not build a reproduction snippet: {type(e).__name__}: {e}\n"
