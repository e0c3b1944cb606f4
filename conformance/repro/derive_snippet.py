"""Reproduction snippets of derivation cells, for torch, MindSpore and Paddle (text only: no
framework is imported here). The case's ``function:`` is written out as a Python function over
the framework's tensors, followed by the target API call with the cell's arguments."""

from __future__ import annotations

import re

from . import _literal, number

_MODULE = {"torch": "torch", "mindspore": "ms", "paddle": "paddle"}
_TANH = {"torch": "torch.tanh", "mindspore": "ms.ops.tanh", "paddle": "paddle.tanh"}


_NUMPY64 = {  # a tensor as float64 numpy (numpy has no bfloat16: widen exactly through float32)
    "torch": ["def numpy64(t):", "    return None if t is None else t.detach().double().cpu().numpy()"],
    "paddle": ["def numpy64(t):",
               "    return None if t is None else (t.astype('float32') if t.dtype == paddle.bfloat16 else t).numpy().astype(np.float64)"],
    "mindspore": ["def numpy64(t):",
                  "    return None if t is None else (t.astype(ms.float32) if t.dtype == ms.bfloat16 else t).asnumpy().astype(np.float64)"],
}


def _result(fw: str, grads: str, values: str = "None", grad: str = "g") -> list:
    """The end of a derivation snippet: ``result``, what the suite compared (gradients and
    returned outputs by name, float64 numpy), then printed."""
    return ["", *_NUMPY64[fw],
            f"result = {{'grads': {{n: numpy64({grad}) for n, g in {grads}}},",
            f"          'values': {values}}}",
            "for name, g in result['grads'].items():",
            "    print('grad', name, g)",
            "for name, v in (result['values'] or {}).items():",
            "    print('value', name, v)"]


def _names(names) -> str:
    return "[" + ", ".join(repr(n) for n in names) + "]"


def _ident(name: str) -> str:
    """A Python identifier for a case name (``fc.weight`` -> ``fc_weight``)."""
    s = re.sub(r"\W", "_", name)
    return s if s.isidentifier() else "v_" + s


def _expr(op: dict, fw: str) -> str:
    a = [number(float(x)) if isinstance(x, (int, float)) else _ident(x) for x in op["args"]]
    kind = op["op"]
    binary = {"add": "+", "sub": "-", "mul": "*", "pow": "**", "matmul": "@"}
    if kind in binary:
        return f"{a[0]} {binary[kind]} {a[1]}"
    if kind == "linear":
        return f"{a[0]} @ {a[1]}.T" + (f" + {a[2]}" if len(a) > 2 else "")
    if kind == "tanh":
        return f"{_TANH[fw]}({a[0]})"
    if kind in ("sum", "mean", "squeeze"):
        return f"{a[0]}.{kind}()"
    if kind == "mse":
        return f"(({a[0]} - {a[1]}) ** 2).mean()"
    raise ValueError(f"unknown op {kind!r}")


def _function_lines(name: str, params: list, fn: dict, outputs: list, fw: str) -> list:
    lines = [f"def {name}({', '.join(params)}):"]
    lines += [f"    {_ident(op['out'])} = {_expr(op, fw)}" for op in fn["ops"]]
    outs = ", ".join(_ident(o) for o in outputs)
    lines.append(f"    return {outs}")
    return lines


def _tensor(fw: str, literal: str, dtype: str, grad: bool, param: bool = False, name: str = "") -> str:
    if fw == "torch":
        return f"torch.tensor({literal}, dtype=torch.{dtype}, requires_grad={grad})"
    if fw == "mindspore":
        t = f"ms.Tensor({literal}, ms.{dtype})"
        return f"ms.Parameter({t}, name={name!r})" if param else t
    t = f"paddle.to_tensor({literal}, dtype={dtype!r}, stop_gradient={not grad})"
    return t


def snippet(cell) -> str:
    from ..derive_args import job_extras
    from ..derive_runner import materialise

    fw = cell.backend
    fn = materialise(cell.case, cell.dtype)
    extras = job_extras(cell.source_api, cell.api, cell.args, cell.case.function)
    args = dict(cell.target_args)
    imports = {"torch": ["import torch"], "mindspore": ["import mindspore as ms"],
               "paddle": ["import paddle"]}[fw]
    lines = [f"# {cell.id}", f"# case file: {cell.source.path}:{cell.source.line}",
             "import numpy as np", *imports, ""]
    inputs = [n for n, _ in fn["inputs"]]
    weights = [n for n, _ in fn["weights"]]
    for n, a in fn["inputs"]:
        lines.append(f"{_ident(n)} = {_tensor(fw, _literal(a), cell.dtype, True, name=n)}")
    for n, a in fn["weights"]:
        lines.append(f"{_ident(n)} = {_tensor(fw, _literal(a), cell.dtype, True, param=True, name=n)}")
    lines.append("")
    api, repeat = cell.api, extras["repeat"]
    outputs = extras["fn_outputs"]
    if api in ("torch.autograd.grad", "paddle.grad", "torch.Tensor.backward", "paddle.Tensor.backward"):
        lines += _function_lines("f", [_ident(n) for n in inputs + weights], fn, outputs, fw)
        lines += ["", f"{', '.join(_ident(o) for o in outputs)} = "
                      f"f({', '.join(_ident(n) for n in inputs + weights)})"]
        if api.endswith(".backward"):
            retain = "retain_graph=True"
            lines += [f"for _ in range({repeat}):", f"    {_ident(args['output'])}.backward({retain})"]
            leaves = ", ".join(_ident(n) for n in inputs + weights)
            lines += _result(fw, f"zip({_names(inputs + weights)}, [{leaves}])", grad="g.grad")
        else:
            outs = ", ".join(_ident(o) for o in args["outputs"])
            ins = ", ".join(_ident(n) for n in args["inputs"])
            lines += [f"grads = {api}([{outs}], [{ins}], allow_unused={args['allow_unused']!r})",
                      *_result(fw, f"zip({_names(args['inputs'])}, grads)")]
    elif api == "torch.func.grad_and_value":
        names = inputs + weights
        body = _function_lines("f", [_ident(n) for n in names], fn, outputs, fw)
        if args["has_aux"]:
            body[-1] = f"    return {_ident(outputs[0])}, ({', '.join(_ident(o) for o in outputs[1:])},)"
        lines += body
        vals = ", ".join(f"{_ident(n)}.detach()" for n in names)
        lines += ["", f"grads, value = torch.func.grad_and_value(f, argnums={tuple(args['argnums'])!r}, "
                      f"has_aux={args['has_aux']!r})({vals})"]
        if args["has_aux"]:
            flat = "[value[0], *value[1]]"
        else:
            flat = "[value]" if len(outputs) == 1 else "list(value)"
        argnamed = [names[i] for i in args["argnums"]]
        lines += _result(fw, f"zip({_names(argnamed)}, grads)",
                         f"{{n: numpy64(v) for n, v in zip({_names(outputs)}, {flat})}}")
    elif api in ("mindspore.grad", "mindspore.value_and_grad"):
        lines += ["ms.set_context(mode=ms.PYNATIVE_MODE)", ""]
        lines += _function_lines("net", [_ident(n) for n in inputs], fn, outputs, fw)
        gp = args["grad_position"]
        gp = tuple(gp) if isinstance(gp, list) else gp
        w = None if args["weights"] is None else "[" + ", ".join(_ident(n) for n in args["weights"]) + "]"
        call = (f"ms.{api.split('.', 1)[1]}(net, grad_position={gp!r}, weights={w}, has_aux={args['has_aux']!r})"
                f"({', '.join(_ident(n) for n in inputs)})")
        lines += _ms_unpack(api, call, gp, args, inputs, outputs, fw)
    else:
        return f"# no reproduction snippet for {api} yet\n"
    return "\n".join(lines) + "\n"


def _ms_unpack(api, call, gp, args, inputs, outputs, fw) -> list:
    """The call, then its nested result taken apart into names: value_and_grad returns
    (value, gradients), grad with has_aux (gradients, aux outputs); the gradients are
    (input gradients, weight gradients) when both are asked for, else one of them (a bare
    tensor for an int grad_position)."""
    wnames = list(args["weights"] or [])
    picked = [inputs[i] for i in ((gp,) if isinstance(gp, int) else (gp or ()))]
    lines = [""]
    if api == "mindspore.value_and_grad":
        lines.append(f"value, grads = {call}")
        values = f"{{n: numpy64(v) for n, v in zip({_names(outputs)}, {'value' if len(outputs) > 1 else '[value]'})}}"
    elif args["has_aux"]:
        lines.append(f"grads, aux = {call}")
        values = f"{{n: numpy64(v) for n, v in zip({_names(outputs[1:])}, aux)}}"
    else:
        lines.append(f"grads = {call}")
        values = "None"
    if gp is not None and wnames:
        lines.append("input_grads, weight_grads = grads")
        if isinstance(gp, int):
            lines.append("input_grads = (input_grads,)")
        flat = "[*input_grads, *weight_grads]"
    elif gp is not None:
        flat = "[grads]" if isinstance(gp, int) else "list(grads)"  # an int position: a bare tensor
    else:
        flat = "list(grads)"
    return lines + _result(fw, f"zip({_names(picked + wnames)}, {flat})", values)
