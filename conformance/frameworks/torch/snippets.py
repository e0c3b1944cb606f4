"""torch reproduction snippets, one writer per kind and API (text only: torch is not imported
here). ``SNIPPETS[kind][api]`` is ``writer(cell, inputs) -> str``: the whole snippet, which runs
standalone and leaves what the suite compared in ``result`` (and prints it)."""

from __future__ import annotations

from functools import partial

from ...kinds.derivation.snippet import function_lines, ident, leaf_lines, names, parts
from ...kinds.derivation.snippet import result_lines as derive_result_lines
from ...kinds.training.snippet import ACTIVATIONS, groups, loss_expr, param_names, start
from ...kinds.distributed.snippet import constants as distributed_constants
from ...snippets import array_expr, data_and_loss_lines, header, kwargs, layer_sources, literal, number, result_lines
from ...spec.values import tensor_data
from ...tensors import param_dtype


# --- clipping ---------------------------------------------------------------------------------

def _clipping(call, cell, inputs) -> str:
    """A clipping snippet: the parameters (injected gradients, or the network's after
    ``loss.backward()``), then ``out = call(cell, args, dt)``."""
    case = cell.case
    dt = f"torch.{cell.dtype}"
    dev = "'cuda'" if cell.device == "gpu" else "'cpu'"
    lines = [
        *header(cell),
        "import numpy as np",
        "import torch",
        "",
        "torch.set_num_threads(1)  # as the suite's worker: float32 norms other than L2 depend on the thread count",
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
    lines += ["", f"out = {call(cell, cell.call_args, dt)}", *result_lines(
        "float(out) if isinstance(out, torch.Tensor) else None",
        "{n: None if p.grad is None else p.grad.double().cpu().numpy() for n, p in zip(names, params)}")]
    return "\n".join(lines) + "\n"


def _torch_model_lines(cell, inputs, dt, dev) -> list:
    lines = _torch_net_lines(cell, dt, dev)
    lines += data_and_loss_lines(
        cell.case.model, inputs,
        lambda lit, integer: f"torch.tensor({lit}, dtype={'torch.long' if integer else dt}, device={dev})",
        "torch.nn.functional")
    lines += ["loss.backward()", "names, params = zip(*net.named_parameters())"]
    return lines


def _torch_net_lines(cell, dt, dev) -> list:
    """``net``: the case's network with the exact weights the cell used."""
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
    for layer in layer_sources(model, cell.dtype):  # the exact weights the cell used
        for key in ("weight", "bias"):
            if layer.get(key) is not None:
                setup.append(f"    net.get_submodule('{layer['name']}').{key}.copy_(torch.tensor({layer[key]}))")
    lines += setup or ["    pass"]
    return lines


# the call of each clipping API: (cell, target args, dtype source) -> the expression of `out`

def _given(cell) -> str:
    """The first argument: the list, or the one parameter as a bare Tensor (``clip.form: tensor``)."""
    return "params[0]" if cell.form == "tensor" else "params"


def _call_params(cell, args: dict, dt: str) -> str:
    return f"{cell.api}({_given(cell)}, {kwargs(args)})"


def _call_get_total_norm(cell, args: dict, dt: str) -> str:
    if cell.form == "tensor":
        return f"{cell.api}(params[0].grad, {kwargs(args)})"
    return f"{cell.api}([p.grad for p in params if p.grad is not None], {kwargs(args)})"


def _call_clip_grads_with_norm(cell, args: dict, dt: str) -> str:
    total = args.pop("total_norm")
    return f"{cell.api}({_given(cell)}, {kwargs(args)}, total_norm=torch.tensor({number(total)}, dtype={dt}))"


def _call_per_parameter(cell, args: dict, dt: str) -> str:
    return f"[torch.nn.utils.clip_grad_norm_([p], {kwargs(args)}) for p in params if p.grad is not None]"


def _tensor(value, dtype: str) -> str:
    """A tensor argument (a bound given as a Tensor of its own dtype)."""
    return f"torch.tensor({value!r}, dtype=torch.{dtype}, device=params[0].device)"


def _call_clamp(cell, args: dict, dt: str) -> str:
    return f"[p.grad.clamp_({kwargs(args, _tensor)}) for p in params if p.grad is not None]"


CLIPPING = {
    "torch.nn.utils.clip_grad_norm_": partial(_clipping, _call_params),
    "torch.nn.utils.clip_grad_value_": partial(_clipping, _call_params),
    "torch.nn.utils.clip_grad_norm_.per_parameter": partial(_clipping, _call_per_parameter),
    "torch.clamp": partial(_clipping, _call_clamp),
    "torch.nn.utils.get_total_norm": partial(_clipping, _call_get_total_norm),
    "torch.nn.utils.clip_grads_with_norm_": partial(_clipping, _call_clip_grads_with_norm),
}


# --- distributed ------------------------------------------------------------------------------

def _distributed(cell, inputs) -> str:
    """A standalone script: ``world_size`` ranks (torch.multiprocessing, gloo on CPU) each make
    the clipping call on its shard (``distributed.py`` in this folder), and print what each rank
    returned and holds afterwards (the suite compares each rank's shard with the oracle's slice)."""
    call = cell.api.removesuffix(".distributed")
    if cell.case.model is not None:
        constants, params = ["WORLD = " + str(cell.case.distributed.world_size)], _distributed_model(cell, inputs)
    else:
        constants = distributed_constants(cell, inputs, lambda name: f"torch.{name}")
        params = [
            "    params = []",
            "    for name, g in GRADS.items():",
            "        p = torch.zeros(g.shape if g is not None else (1,), dtype=DTYPES[name])",
            "        grad = None if g is None else torch.tensor(g, dtype=DTYPES[name])",
            "        if name in SPLIT:",
            "            p = distribute_tensor(p, mesh, [Shard(SPLIT[name])])",
            "            grad = None if grad is None else distribute_tensor(grad, mesh, [Shard(SPLIT[name])])",
            "        p = torch.nn.Parameter(p)",
            "        p.grad = grad",
            "        params.append(p)",
            "    names = list(GRADS)"]
    lines = [
        *header(cell),
        "import datetime, os, tempfile",
        "",
        "import numpy as np",
        "import torch",
        "import torch.distributed as dist",
        "import torch.multiprocessing as mp",
        "from torch.distributed.device_mesh import init_device_mesh",
        "from torch.distributed.tensor import DTensor, Shard, distribute_tensor",
        "",
        *constants,
        "",
        "",
        "def rank_main(rank, store):",
        "    torch.set_num_threads(1)  # as the suite's worker",
        "    dist.init_process_group('gloo', init_method=f'file://{store}', rank=rank, world_size=WORLD,",
        "                            timeout=datetime.timedelta(seconds=30))",
        "    mesh = init_device_mesh('cpu', (WORLD,))",
        *params,
        f"    out = {call}(params, {kwargs(cell.call_args)})",
        "    if isinstance(out, DTensor):",
        "        out = out.full_tensor()",
        "    lines = [f'rank {rank}: returned {float(out)!r}']",
        "    for name, p in zip(names, params):",
        "        g = p.grad.to_local() if isinstance(p.grad, DTensor) else p.grad",
        "        lines.append(f'rank {rank}: {name} {None if g is None else g.double().numpy()}')",
        "    for r in range(WORLD):  # the ranks' printouts one after the other, not interleaved",
        "        if r == rank:",
        "            print('\\n'.join(lines), flush=True)",
        "        dist.barrier()",
        "    dist.destroy_process_group()",
        "",
        "",
        "if __name__ == '__main__':",
        "    with tempfile.TemporaryDirectory() as scratch:  # the ranks' file store, removed after",
        "        mp.spawn(rank_main, args=(os.path.join(scratch, 'store'),), nprocs=WORLD)",
    ]
    return "\n".join(lines) + "\n"


def _distributed_model(cell, inputs) -> list:
    """A rank's lines for a model case (``distributed.py``): the whole network on every rank,
    wrapped in DistributedDataParallel (replicated) or ``fully_shard`` on each weighted layer
    and the network (sharded, FSDP2), forward and backward of the rank's contiguous chunk of
    the batch; ``names`` and ``params`` are the network's, as the cell compared them."""
    dt = f"torch.{cell.dtype}"
    if cell.case.distributed.strategy == "sharded":
        wrap = ["    from torch.distributed.fsdp import fully_shard",
                "    for layer in net.children():",
                "        if any(True for _ in layer.parameters()):",
                "            fully_shard(layer, mesh=mesh)",
                "    module = net = fully_shard(net, mesh=mesh)"]
    else:
        wrap = ["    module, net = net, torch.nn.parallel.DistributedDataParallel(net)"]
    data = data_and_loss_lines(
        cell.case.model, inputs,
        lambda lit, integer: f"torch.tensor(np.array_split(np.asarray({lit}), WORLD)[rank], "
                             f"dtype={'torch.long' if integer else dt})",
        "torch.nn.functional")
    return [*("    " + line for line in _torch_net_lines(cell, dt, "'cpu'")), *wrap,
            *("    " + line for line in data),  # net(x): the wrapped network's forward
            "    loss.backward()",
            "    names, params = map(list, zip(*module.named_parameters()))"]


DISTRIBUTED = {"torch.nn.utils.clip_grad_norm_.distributed": _distributed}


# --- derivation -------------------------------------------------------------------------------

#: a tensor as float64 numpy
_NUMPY64 = ["def numpy64(t):", "    return None if t is None else t.detach().double().cpu().numpy()"]


def _derivation_start(cell, function):
    """The leaves (every input and weight a ``requires_grad`` tensor) and, for the calls that
    take the outputs themselves, the function ``f`` and its outputs computed."""
    p = parts(cell, function, ["import torch"])
    p.lines += leaf_lines(
        p, lambda lit, name, weight: f"torch.tensor({lit}, dtype=torch.{cell.dtype}, requires_grad=True)")
    return p


def _eager_lines(p) -> list:
    return [*function_lines("f", p.inputs + p.weights, p.fn, p.outputs, "torch.tanh"),
            "", f"{', '.join(ident(o) for o in p.outputs)} = "
                f"f({', '.join(ident(n) for n in p.inputs + p.weights)})"]


def _autograd_grad(cell, function) -> str:
    p = _derivation_start(cell, function)
    args = p.args
    outs = ", ".join(ident(o) for o in args["outputs"])
    ins = ", ".join(ident(n) for n in args["inputs"])
    lines = p.lines + _eager_lines(p)
    lines += [f"grads = {cell.api}([{outs}], [{ins}], allow_unused={args['allow_unused']!r})",
              *derive_result_lines(_NUMPY64, f"zip({names(args['inputs'])}, grads)")]
    return "\n".join(lines) + "\n"


def _backward(cell, function) -> str:
    p = _derivation_start(cell, function)
    lines = p.lines + _eager_lines(p)
    retain = "retain_graph=True"
    lines += [f"for _ in range({p.repeat}):", f"    {ident(p.args['output'])}.backward({retain})"]
    leaves = ", ".join(ident(n) for n in p.inputs + p.weights)
    lines += derive_result_lines(_NUMPY64, f"zip({names(p.inputs + p.weights)}, [{leaves}])", grad="g.grad")
    return "\n".join(lines) + "\n"


def _grad_and_value(cell, function) -> str:
    p = _derivation_start(cell, function)
    args, outputs = p.args, p.outputs
    order = p.inputs + p.weights
    body = function_lines("f", order, p.fn, outputs, "torch.tanh")
    if args["has_aux"]:
        body[-1] = f"    return {ident(outputs[0])}, ({', '.join(ident(o) for o in outputs[1:])},)"
    lines = p.lines + body
    vals = ", ".join(f"{ident(n)}.detach()" for n in order)
    lines += ["", f"grads, value = torch.func.grad_and_value(f, argnums={tuple(args['argnums'])!r}, "
                  f"has_aux={args['has_aux']!r})({vals})"]
    if args["has_aux"]:
        flat = "[value[0], *value[1]]"
    else:
        flat = "[value]" if len(outputs) == 1 else "list(value)"
    argnamed = [order[i] for i in args["argnums"]]
    lines += derive_result_lines(_NUMPY64, f"zip({names(argnamed)}, grads)",
                                 f"{{n: numpy64(v) for n, v in zip({names(outputs)}, {flat})}}")
    return "\n".join(lines) + "\n"


DERIVATION = {
    "torch.autograd.grad": _autograd_grad,
    "torch.Tensor.backward": _backward,
    "torch.func.grad_and_value": _grad_and_value,
}


# --- training ---------------------------------------------------------------------------------

def _training(scaler: bool, cell, model) -> str:
    """torch's training loop (``training.py`` in this folder) written out; ``scaler``: with a
    ``torch.amp.GradScaler`` around an SGD of the step's lr, else the target SGD itself."""
    layers, st = model.layers, model.step
    head = start(cell, model)
    dt = f"torch.{cell.dtype}"
    mods = []
    for lay in layers:
        if lay["type"] == "linear":
            mods.append(f"('{lay['name']}', torch.nn.Linear({lay['in']}, {lay['out']}, bias={lay['bias'] is not None}))")
        else:
            mods.append(f"('{lay['name']}', torch.nn.{ACTIVATIONS[lay['type']]}())")
    lines = ["import torch", "from collections import OrderedDict",
             "net = torch.nn.Sequential(OrderedDict([" + ", ".join(mods) + f"])).to({dt})",
             "with torch.no_grad():"]
    for lay in layers:
        for k in ("weight", "bias"):
            if lay.get(k) is not None:
                lines.append(f"    net.get_submodule('{lay['name']}').{k}.copy_(torch.tensor({literal(lay[k])}))")
    pnames = param_names(layers)
    integer = cell.case.model.loss.type == "cross_entropy"
    lines += ["named = dict(net.named_parameters())",
              f"y = None if y_all is None else torch.tensor(y_all, dtype={'torch.long' if integer else dt})"]
    if scaler:
        lines += [f"opt = torch.optim.SGD({groups(st, pnames, 'lr')}, lr={st['lr']!r})",
                  f"scaler = torch.amp.GradScaler('cpu', {kwargs(cell.target_args)})"]
    else:
        lines.append(f"opt = torch.optim.SGD({groups(st, pnames, 'lr')}, {kwargs(cell.target_args)})")
    clip = st["clip_params"] or pnames
    lines += ["for k, s in enumerate(input_scales):",
              "    opt.zero_grad(set_to_none=True)",
              f"    x = torch.tensor(x_all * s, dtype={dt})",
              "    for xb, yb in zip(torch.chunk(x, n), torch.chunk(y, n) if y is not None else [None] * n):",
              f"        loss = {loss_expr(cell, 'torch.nn.functional')} / n",
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
    return "\n".join(head + lines) + "\n"


TRAINING = {
    "torch.amp.GradScaler": partial(_training, True),
    "torch.optim.SGD": partial(_training, False),
}


SNIPPETS = {"clipping": CLIPPING, "derivation": DERIVATION, "distributed": DISTRIBUTED, "training": TRAINING}
