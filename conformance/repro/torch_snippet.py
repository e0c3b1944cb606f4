"""torch reproduction snippets (text only: torch is not imported here)."""

from __future__ import annotations

from ..spec import tensor_data
from ..tensors import param_dtype
from . import _kwargs, _literal, array_expr, data_and_loss_lines, number, result_lines


def snippet(cell, inputs) -> str:
    case = cell.case
    dt = f"torch.{cell.dtype}"
    dev = "'cuda'" if cell.device == "gpu" else "'cpu'"
    lines = [
        f"# {cell.id}",
        f"# case file: {cell.source.path}:{cell.source.line}",
        "import numpy as np",
        "import torch",
        "",
    ]
    if case.grads is not None:
        lines.append("params = []")
        for name, value in case.grads.items():
            g = inputs.grads[name]
            if g is None:
                lines.append(f"params.append(torch.zeros(1, dtype={dt}, device={dev}, requires_grad=True))  # {name}: no grad")
                continue
            pdt = f"torch.{param_dtype(tensor_data(value), cell.dtype)}"  # mixed dtypes
            lines += [f"p = torch.zeros({tuple(g.shape)}, dtype={pdt}, device={dev}, requires_grad=True)  # {name}",
                      f"p.grad = torch.tensor({array_expr(value, g)}, dtype={pdt}, device={dev})",
                      "params.append(p)"]
        lines.append(f"names = {list(case.grads)!r}")
    else:
        lines += _torch_model_lines(cell, inputs, dt, dev)
    api = cell.api
    args = dict(cell.target_args)
    if api.endswith("get_total_norm"):
        call = f"{api}([p.grad for p in params if p.grad is not None], {_kwargs(args)})"
    elif api.endswith("clip_grads_with_norm_"):
        total = args.pop("total_norm")
        call = f"{api}(params, {_kwargs(args)}, total_norm=torch.tensor({number(total)}, dtype={dt}))"
    elif api == "torch.nn.utils.clip_grad_norm_.per_parameter":
        call = f"[torch.nn.utils.clip_grad_norm_([p], {_kwargs(args)}) for p in params if p.grad is not None]"
    elif api == "torch.clamp":
        call = f"[p.grad.clamp_({_kwargs(args)}) for p in params if p.grad is not None]"
    else:
        call = f"{api}(params, {_kwargs(args)})"
    lines += ["", f"out = {call}", *result_lines(
        "float(out) if isinstance(out, torch.Tensor) else None",
        "{n: None if p.grad is None else p.grad.double().cpu().numpy() for n, p in zip(names, params)}")]
    return "\n".join(lines) + "\n"


def _torch_model_lines(cell, inputs, dt, dev) -> list[str]:
    model = cell.case.model
    mods = []
    setup = []
    for i, layer in enumerate(model.layers):
        name = layer.name or str(i)
        if layer.type == "linear":
            has_bias = not ("bias" in layer.model_fields_set and layer.bias is None)
            mods.append(f"('{name}', torch.nn.Linear({layer.in_}, {layer.out}, bias={has_bias}))")
        elif layer.type == "conv2d":
            mods.append(f"('{name}', torch.nn.Conv2d({layer.in_}, {layer.out}, {layer.kernel!r}, "
                        f"stride={layer.stride!r}, padding={layer.padding!r}))")
        elif layer.type == "embedding":
            mods.append(f"('{name}', torch.nn.Embedding({layer.num}, {layer.dim}))")
        else:
            cls = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "flatten": "Flatten"}[layer.type]
            mods.append(f"('{name}', torch.nn.{cls}())")
    lines = ["from collections import OrderedDict",
             "net = torch.nn.Sequential(OrderedDict([" + ", ".join(mods) + f"])).to({dev}, {dt})",
             "with torch.no_grad():"]
    from ..runner import _layer_arrays  # the exact weights the cell used

    for layer in _layer_arrays(cell.case, cell.dtype):
        for key in ("weight", "bias"):
            if layer.get(key) is not None:
                setup.append(f"    net.get_submodule('{layer['name']}').{key}.copy_(torch.tensor({_literal(layer[key])}))")
    lines += setup or ["    pass"]
    lines += data_and_loss_lines(
        inputs, model.loss,
        lambda lit, integer: f"torch.tensor({lit}, dtype={'torch.long' if integer else dt}, device={dev})",
        "torch.nn.functional")
    lines += ["loss.backward()", "names, params = zip(*net.named_parameters())"]
    return lines
