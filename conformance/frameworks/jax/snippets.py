"""JAX / optax reproduction snippets (text only: jax is not imported here), one writer per kind
and API: ``SNIPPETS[kind][api](cell, inputs) -> str``, the same API names as the worker's
``APIS`` tables.

Clipping mirrors ``clipping.py``: float64 switched on first (``jax_enable_x64``), gradients as a
dict of ``jnp`` arrays (injected; a null gradient is left out of the dict), or ``jax.grad`` of the
loss of a plain ``jax.numpy`` network with respect to its params dict; then the transformation's
``update``. ``*.via_sgd``: ``optax.chain(clip, optax.sgd(1.0))`` applied to zero parameters.
"""

from __future__ import annotations

from ...kinds.derivation.snippet import function_lines, ident, leaf_lines, names, parts
from ...kinds.derivation.snippet import result_lines as derive_result_lines
from ...snippets import array_expr, header, kwargs, layer_sources, model_data, result_lines, tensor_value
from ...spec.values import tensor_data
from ...tensors import param_dtype

_DT = {"float64": "jnp.float64", "float32": "jnp.float32", "float16": "jnp.float16", "bfloat16": "jnp.bfloat16"}


def _array(value: str, dtype: str) -> str:
    return f"jnp.asarray({value}, dtype={_DT[dtype]})"


def _tensor_arg(value, dtype: str) -> str:
    return _array(tensor_value(value), dtype)


def _model_lines(cell, inputs) -> tuple:
    model = cell.case.model
    lines = ["params = {}"]
    body = []
    names = []
    for layer in layer_sources(model, cell.dtype):  # the exact weights the cell used (torch layout)
        name, kind = layer["name"], layer["type"]
        w, b = f"p['{name}.weight']", f"p['{name}.bias']"
        if kind in ("linear", "conv2d", "embedding"):
            lines.append(f"params['{name}.weight'] = {_array(layer['weight'], cell.dtype)}")
            names.append(f"{name}.weight")
            has_bias = kind != "embedding" and layer.get("bias") is not None
            if has_bias:
                lines.append(f"params['{name}.bias'] = {_array(layer['bias'], cell.dtype)}")
                names.append(f"{name}.bias")
            if kind == "linear":
                body.append(f"    x = x @ {w}.T" + (f" + {b}" if has_bias else ""))
            elif kind == "conv2d":
                (ph, pw), stride = layer["padding"], tuple(layer["stride"])
                body.append(f"    x = jax.lax.conv_general_dilated(x, {w}, {stride}, [({ph}, {ph}), ({pw}, {pw})], "
                            "dimension_numbers=('NCHW', 'OIHW', 'NCHW'))"
                            + (f" + {b}[None, :, None, None]" if has_bias else ""))
            else:
                body.append(f"    x = {w}[x]")
        else:
            body.append({"relu": "    x = jax.nn.relu(x)", "tanh": "    x = jnp.tanh(x)",
                         "sigmoid": "    x = jax.nn.sigmoid(x)",
                         "flatten": "    x = x.reshape(x.shape[0], -1)"}[kind])
    loss = model.loss
    per = {"cross_entropy": "-jnp.take_along_axis(jax.nn.log_softmax(x, axis=-1), y.reshape(-1, 1), axis=-1)[:, 0]",
           "mse": "(x - y) ** 2", "l1": "jnp.abs(x - y)"}.get(loss.type, "x")
    red = "sum" if loss.reduction == "sum" else "mean"
    x = inputs.values["inputs"]
    x_src, y_src = model_data(model, inputs)
    lines += ["", "def loss_fn(p, x, y):", *body, f"    return ({per}).{red}()", "",
              f"x = {_array(x_src, cell.dtype) if x.dtype.kind not in 'iu' else 'jnp.asarray(' + x_src + ')'}",
              "y = None" if y_src is None else
              f"y = {'jnp.asarray(' + y_src + ')' if loss.type == 'cross_entropy' else _array(y_src, cell.dtype)}",
              "grads = jax.grad(loss_fn)(params, x, y)"]
    return lines, names


def _clipping(make: str, via_sgd: bool = False, norm: bool = False):
    def write(cell, inputs) -> str:
        case = cell.case
        lines = [*header(cell),
                 "import jax",
                 "jax.config.update('jax_enable_x64', True)  # float64 (else float64 arrays become float32)",
                 "import jax.numpy as jnp",
                 "import numpy as np",
                 "import optax",
                 ""]
        if case.grads is not None:
            lines.append("grads = {}  # a pytree; a parameter without a gradient is left out")
            for name, value in case.grads.items():
                g = inputs.grads[name]
                if g is None:
                    lines.append(f"# {name}: no gradient (left out of the tree)")
                    continue
                pdtype = param_dtype(tensor_data(value), cell.dtype)  # mixed dtypes
                lines.append(f"grads[{name!r}] = {_array(array_expr(value, g), pdtype)}")
            names = list(case.grads)
        else:
            more, names = _model_lines(cell, inputs)
            lines += more
        given = "next(iter(grads.values()))" if cell.form == "tensor" else "grads"
        tx = f"{make}({kwargs(dict(cell.call_args), _tensor_arg)})"
        args = kwargs(dict(cell.call_args), _tensor_arg)
        if norm:  # the norm alone: the gradients stay as they are
            body = [f"    return g, {make}(g, {args})"]
        elif via_sgd:
            body = [f"    tx = optax.chain({tx}, optax.sgd(learning_rate=1.0))",
                    "    zeros = jax.tree.map(jnp.zeros_like, g)  # start from zero: the clipped gradient is -p",
                    "    updates, _ = tx.update(g, tx.init(zeros), zeros)",
                    "    return jax.tree.map(lambda p: -p, optax.apply_updates(zeros, updates)), None"]
        else:
            body = [f"    tx = {tx}", "    out, _ = tx.update(g, tx.init(g))", "    return out, None"]
        compiled = getattr(cell, "mode", "eager") == "compiled"
        lines += ["", "def step(g):", *body, "",
                  f"out, returned = {'jax.jit(step)' if compiled else 'step'}({given})"
                  + ("  # compiled: the clip inside jax.jit" if compiled else "")]
        returned = "None" if not norm else \
            "float(np.asarray(returned.astype(jnp.float32) if returned.dtype == jnp.bfloat16 else returned, dtype=np.float64))"
        if cell.form == "tensor":
            lines.append("out = {next(iter(grads)): out}")
        lines += ["",
                  "def numpy64(a):  # numpy has no bfloat16: widen exactly through float32",
                  "    return None if a is None else np.asarray(a.astype(jnp.float32) if a.dtype == jnp.bfloat16 else a, dtype=np.float64)",
                  f"names = {names!r}",
                  *result_lines(returned, "{n: numpy64(out.get(n)) for n in names}")]
        return "\n".join(lines) + "\n"
    return write


# --- derivation -------------------------------------------------------------------------------

_NUMPY64 = ["def numpy64(a):  # numpy has no bfloat16: widen exactly through float32",
            "    return None if a is None else np.asarray(a.astype(jnp.float32) if a.dtype == jnp.bfloat16 else a, dtype=np.float64)"]


def _derivation(value_and_grad: bool):
    def write(cell, function) -> str:
        p = parts(cell, function, ["import jax", "jax.config.update('jax_enable_x64', True)",
                                   "import jax.numpy as jnp"])
        p.lines += leaf_lines(p, lambda lit, name, weight: f"jnp.asarray({lit}, dtype=jnp.{cell.dtype})")
        args, outputs = p.args, p.outputs
        order = p.inputs + p.weights
        body = function_lines("f", order, p.fn, outputs, "jnp.tanh")
        if args["has_aux"]:
            body[-1] = f"    return {ident(outputs[0])}, ({', '.join(ident(o) for o in outputs[1:])},)"
        lines = p.lines + body
        vals = ", ".join(ident(n) for n in order)
        call = f"(f, argnums={tuple(args['argnums'])!r}, has_aux={args['has_aux']!r})({vals})"
        argnamed = [order[i] for i in args["argnums"]]
        if value_and_grad:
            lines += ["", f"value, grads = jax.value_and_grad{call}"]
            flat = "[value[0], *value[1]]" if args["has_aux"] else "[value]"
            values = f"{{n: numpy64(v) for n, v in zip({names(outputs)}, {flat})}}"
        elif args["has_aux"]:
            lines += ["", f"grads, aux = jax.grad{call}"]
            values = f"{{n: numpy64(v) for n, v in zip({names(outputs[1:])}, aux)}}"
        else:
            lines += ["", f"grads = jax.grad{call}"]
            values = "None"
        lines += derive_result_lines(_NUMPY64, f"zip({names(argnamed)}, grads)", values)
        return "\n".join(lines) + "\n"
    return write


SNIPPETS = {
    "derivation": {
        "jax.grad": _derivation(False),
        "jax.value_and_grad": _derivation(True),
    },
    "clipping": {
        "optax.clip_by_global_norm": _clipping("optax.clip_by_global_norm"),
        "optax.clip": _clipping("optax.clip"),
        "optax.clip_by_block_rms": _clipping("optax.clip_by_block_rms"),
        "optax.tree.norm": _clipping("optax.tree.norm", norm=True),
        "optax.clip_by_global_norm.via_sgd": _clipping("optax.clip_by_global_norm", via_sgd=True),
    },
}
