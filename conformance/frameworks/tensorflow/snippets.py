"""TensorFlow reproduction snippets (text only: tensorflow is not imported here), one writer per
kind and API: ``SNIPPETS[kind][api](cell, inputs) -> str``, the same API names as the worker's
``APIS`` tables (TF's own names, ``tf.clip_by_global_norm``).

Clipping mirrors ``clipping.py``: one intra-op thread set first (as the worker), gradients as a
list of tf tensors (injected; ``None`` for a parameter without one), or ``tf.GradientTape``
gradients of a network of plain tf ops (torch layout weights); then the call. The Keras forms
apply ``SGD(learning_rate=1.0, <clip>=v)`` to zero variables and read the update back as ``-v``.
"""

from __future__ import annotations

from ...kinds.derivation.ops import evaluate
from ...kinds.derivation.snippet import Text, ident, leaf_lines, names, parts
from ...kinds.derivation.snippet import result_lines as derive_result_lines
from ...snippets import array_expr, header, kwargs, layer_sources, model_data, number, result_lines, tensor_value
from ...spec.values import tensor_data
from ...tensors import param_dtype


def _tensor(value: str, dtype: str) -> str:
    return f"tf.cast(tf.constant({value}, dtype=tf.float64), tf.{dtype})"


def _tensor_arg(value, dtype: str) -> str:
    return _tensor(tensor_value(value), dtype)


def _model_lines(cell, inputs) -> tuple:
    model = cell.case.model
    lines = ["params = {}"]
    body = []
    names = []
    for layer in layer_sources(model, cell.dtype):  # the exact weights the cell used (torch layout)
        name, kind = layer["name"], layer["type"]
        w, b = f"p['{name}.weight']", f"p['{name}.bias']"
        if kind in ("linear", "conv2d", "embedding"):
            lines.append(f"params['{name}.weight'] = tf.Variable({_tensor(layer['weight'], cell.dtype)})")
            names.append(f"{name}.weight")
            has_bias = kind != "embedding" and layer.get("bias") is not None
            if has_bias:
                lines.append(f"params['{name}.bias'] = tf.Variable({_tensor(layer['bias'], cell.dtype)})")
                names.append(f"{name}.bias")
            if kind == "linear":
                body.append(f"    x = tf.linalg.matmul(x, {w}, transpose_b=True)" + (f" + {b}" if has_bias else ""))
            elif kind == "conv2d":
                (ph, pw), (sh, sw) = layer["padding"], layer["stride"]
                body.append(f"    x = tf.nn.conv2d(tf.transpose(x, [0, 2, 3, 1]), tf.transpose({w}, [2, 3, 1, 0]), "
                            f"strides=[1, {sh}, {sw}, 1], padding=[[0, 0], [{ph}, {ph}], [{pw}, {pw}], [0, 0]])"
                            + (f" + {b}" if has_bias else ""))
                body.append("    x = tf.transpose(x, [0, 3, 1, 2])  # NHWC (TF's CPU conv2d) back to NCHW")
            else:
                body.append(f"    x = tf.gather({w}, x)")
        else:
            body.append({"relu": "    x = tf.nn.relu(x)", "tanh": "    x = tf.math.tanh(x)",
                         "sigmoid": "    x = tf.math.sigmoid(x)",
                         "flatten": "    x = tf.reshape(x, [x.shape[0], -1])"}[kind])
    loss = model.loss
    per = {"cross_entropy": "tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.reshape(y, [-1]), logits=x)",
           "mse": "tf.math.square(x - y)", "l1": "tf.math.abs(x - y)"}.get(loss.type, "x")
    red = "tf.reduce_sum" if loss.reduction == "sum" else "tf.reduce_mean"
    x = inputs.values["inputs"]
    y = inputs.values["targets"]
    x_src, y_src = model_data(model, inputs)
    integer_y = y is not None and y.dtype.kind in "iu"
    lines += ["", "def loss_fn(p, x, y):", *body, f"    return {red}({per})", "",
              f"x = {'tf.constant(' + x_src + ', dtype=tf.int64)' if x.dtype.kind in 'iu' else _tensor(x_src, cell.dtype)}",
              "y = None" if y is None else
              f"y = {'tf.constant(' + y_src + ', dtype=tf.int64)' if integer_y else _tensor(y_src, cell.dtype)}",
              "with tf.GradientTape() as tape:",
              "    loss = loss_fn(params, x, y)",
              "grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, list(params.values()))]"]
    return lines, names


def _start(cell, inputs) -> tuple:
    case = cell.case
    lines = [*header(cell),
             "import numpy as np",
             "import tensorflow as tf",
             "",
             "tf.config.threading.set_intra_op_parallelism_threads(1)  # as the suite's worker: big float32 sums depend on it",
             ""]
    if case.grads is not None:
        lines.append("grads = []  # None: a parameter without a gradient")
        for name, value in case.grads.items():
            g = inputs.grads[name]
            if g is None:
                lines.append(f"grads.append(None)  # {name}")
                continue
            pdtype = param_dtype(tensor_data(value), cell.dtype)  # mixed dtypes
            lines.append(f"grads.append({_tensor(array_expr(value, g), pdtype)})  # {name}")
        names = list(case.grads)
    else:
        more, names = _model_lines(cell, inputs)
        lines += more
    return lines, names


_END = ["def numpy64(t):  # numpy has no bfloat16: widen exactly through float32",
        "    return None if t is None else np.asarray(tf.cast(t, tf.float32) if t.dtype == tf.bfloat16 else t, dtype=np.float64)"]


def _clipping(call: str):
    """``call``: ``global`` (tf.clip_by_global_norm), ``per_tensor`` (the function on each
    gradient) or ``keras`` (one Keras SGD step with the clip option)."""
    def write(cell, inputs) -> str:
        lines, names = _start(cell, inputs)
        args = kwargs(dict(cell.call_args), _tensor_arg)
        fn = cell.api  # TF's own names: tf.clip_by_global_norm, ...
        returned = "None"
        compiled = getattr(cell, "mode", "eager") == "compiled"
        wrap = "tf.function(step)" if compiled else "step"
        note = "  # compiled: the clip inside tf.function" if compiled else ""
        if call == "global":
            lines += [f"step = lambda gs: {fn}(gs, {args})", f"out, norm = {wrap}(grads){note}"]
            returned = "float(tf.cast(norm, tf.float64))"
        elif call == "per_tensor":
            lines += [f"step = lambda gs: [None if g is None else {fn}(g, {args}) for g in gs]",
                      f"out = {wrap}(grads){note}"]
        else:
            lines += ["zeros = [tf.Variable(tf.zeros_like(g) if g is not None else tf.zeros([1])) for g in grads]",
                      f"opt = tf.keras.optimizers.SGD(learning_rate=1.0, {args})",
                      "opt.build(zeros)",
                      "step = lambda gs: opt.apply_gradients(zip(gs, zeros))  # Keras drops None gradients (with a warning)",
                      f"{wrap}(grads){note}",
                      "out = [None if g is None else -v for g, v in zip(grads, zeros)]  # the update is -clipped"]
        lines += ["", *_END, f"names = {names!r}",
                  *result_lines(returned, "{n: numpy64(g) for n, g in zip(names, out)}")]
        return "\n".join(lines) + "\n"
    return write


# --- derivation ---------------------------------------------------------------------------------

#: ops.PRIMS written as TF calls (tf.Tensor has no .T / .sum() / .mean() methods)
_TEXT_PRIMS = {"t": lambda a: Text(f"tf.transpose({a})"), "tanh": lambda a: Text(f"tf.math.tanh({a})"),
               "sum": lambda a: Text(f"tf.reduce_sum({a})"), "mean": lambda a: Text(f"tf.reduce_mean({a})"),
               "squeeze": lambda a: Text(f"tf.squeeze({a})")}

_NUMPY64_TF = ["def numpy64(t):  # numpy has no bfloat16: widen exactly through float32",
               "    return None if t is None else np.asarray(tf.cast(t, tf.float32) if t.dtype == tf.bfloat16 else t, "
               "dtype=np.float64)"]


def _gradient(unconnected: str):
    """``tf.GradientTape().gradient`` of the case's function: inputs watched constants, weights
    variables; ``unconnected``: the ``tf.UnconnectedGradients`` member."""
    def write(cell, function) -> str:
        p = parts(cell, function, ["import tensorflow as tf"])
        lines = p.lines + leaf_lines(
            p, lambda lit, name, weight: (f"tf.Variable(tf.cast(tf.constant({lit}, dtype=tf.float64), tf.{cell.dtype}))"
                                          if weight else
                                          f"tf.cast(tf.constant({lit}, dtype=tf.float64), tf.{cell.dtype})"))
        env = {n: Text(ident(n)) for n, _ in [*p.fn["inputs"], *p.fn["weights"]]}
        lines += ["with tf.GradientTape() as tape:"]
        lines += [f"    tape.watch({ident(n)})" for n in p.inputs]
        for op in p.fn["ops"]:
            value = evaluate([op], env, _TEXT_PRIMS, number=lambda x: Text(number(float(x))))[op["out"]]
            lines.append(f"    {ident(op['out'])} = {value}")
            env[op["out"]] = Text(ident(op["out"]))
        outs = ", ".join(ident(o) for o in p.args["outputs"])
        ins = ", ".join(ident(n) for n in p.args["inputs"])
        lines += [f"grads = tape.gradient([{outs}], [{ins}], unconnected_gradients=tf.UnconnectedGradients.{unconnected})",
                  *derive_result_lines(_NUMPY64_TF, f"zip({names(p.args['inputs'])}, grads)")]
        return "\n".join(lines) + "\n"
    return write


SNIPPETS = {
    "derivation": {
        "tf.GradientTape.gradient": _gradient("NONE"),
        "tf.GradientTape.gradient.unconnected_zero": _gradient("ZERO"),
    },
    "clipping": {
        "tf.clip_by_global_norm": _clipping("global"),
        "tf.clip_by_norm": _clipping("per_tensor"),
        "tf.clip_by_average_norm": _clipping("per_tensor"),
        "tf.clip_by_value": _clipping("per_tensor"),
        "tf.keras.optimizers.SGD.global_clipnorm": _clipping("keras"),
        "tf.keras.optimizers.SGD.clipnorm": _clipping("keras"),
        "tf.keras.optimizers.SGD.clipvalue": _clipping("keras"),
    },
}
