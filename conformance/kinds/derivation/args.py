"""Argument translation between gradient-derivation APIs (docs/derivation.md).

The registry's declarative rules (rename, negate, constant) cannot say "grad_position 0 of this
function is the input named x", so derivation calls are translated through a neutral
*request*: which inputs and weights are differentiated, which outputs are differentiated and
which are returned alongside (aux), and how often the call is made. ``request`` reads a
source call in its own terms; ``target_args`` writes the request in a target API's terms;
``job_extras`` says how the target's worker writes the function (output order) and how often
it calls. Pure data: nothing is evaluated. The main process only.

An API's *style* (its registry entry's ``style:``) says how its call names what it
differentiates; every derivation API of every framework is one of ``STYLES``:

- ``autograd``: ``grad(outputs, inputs, allow_unused)`` (torch.autograd.grad, paddle.grad);
- ``grad_position``: ``grad(fn, grad_position, weights, has_aux)`` (mindspore.grad,
  mindspore.value_and_grad);
- ``backward``: ``output.backward()`` then every leaf's ``.grad`` (torch/paddle Tensor.backward);
- ``argnums``: ``grad(f, argnums, has_aux)`` over inputs then weights (torch.func.grad_and_value,
  jax.grad, jax.value_and_grad; a source too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

STYLES = ("autograd", "grad_position", "backward", "argnums")


@dataclass
class Request:
    inputs: list = field(default_factory=list)  # differentiated inputs, in the order asked
    weights: list = field(default_factory=list)  # differentiated weights
    outputs: list = field(default_factory=list)  # differentiated outputs (their sum)
    aux: list = field(default_factory=list)  # outputs returned alongside, not differentiated
    leaves: bool = False  # Tensor.backward: the .grad of every leaf is read
    allow_unused: bool = False
    repeat: int = 1


def _inputs(fn) -> list:
    return list(fn.inputs)


def _weights(fn) -> list:
    return list(fn.weights)


def request(style: str, args: dict, fn) -> Request:
    """The neutral request of a source call (an API of that ``style``) with ``args`` on the
    case's ``function:``."""
    outs = list(fn.outputs)
    if style == "autograd":
        chosen = list(args.get("outputs") or outs[:1])
        names = list(args.get("inputs") or [])
        unknown = [n for n in names if n not in fn.inputs and n not in fn.weights]
        if unknown:
            raise ValueError(f"inputs: {unknown} are not inputs or weights of the function")
        bad = [o for o in chosen if o not in outs]
        if bad:
            raise ValueError(f"outputs: {bad} are not outputs of the function {outs}")
        return Request(inputs=[n for n in names if n in fn.inputs],
                       weights=[n for n in names if n in fn.weights],
                       outputs=chosen, aux=[o for o in outs if o not in chosen],
                       allow_unused=bool(args.get("allow_unused")))
    if style == "grad_position":
        gp, w = args.get("grad_position"), args.get("weights")
        pos = [] if gp is None else ([gp] if isinstance(gp, int) else list(gp))
        names = _inputs(fn)
        if any(not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(names) for i in pos):
            raise ValueError(f"grad_position: {gp!r} is not a position of the inputs {names}")
        if w is True:
            wts = _weights(fn)
        elif w in (None, False):
            wts = []
        else:
            wts = list(w)
            bad = [n for n in wts if n not in fn.weights]
            if bad:
                raise ValueError(f"weights: {bad} are not weights of the function")
        has_aux = bool(args.get("has_aux"))
        return Request(inputs=[names[i] for i in pos], weights=wts,
                       outputs=outs[:1] if has_aux else outs, aux=outs[1:] if has_aux else [],
                       allow_unused=True)  # MindSpore never raises for an unused input
    if style == "backward":
        out = args.get("output") or outs[0]
        if out not in outs:
            raise ValueError(f"output: {out!r} is not an output of the function {outs}")
        return Request(inputs=_inputs(fn), weights=_weights(fn), outputs=[out],
                       aux=[o for o in outs if o != out], leaves=True, allow_unused=True,
                       repeat=int(args.get("repeat") or 1))
    if style == "argnums":
        order = _inputs(fn) + _weights(fn)
        an = args.get("argnums", 0)
        pos = [an] if isinstance(an, int) and not isinstance(an, bool) else list(an or [])
        if any(not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(order) for i in pos):
            raise ValueError(f"argnums: {an!r} is not a position of the inputs and weights {order}")
        names = [order[i] for i in pos]
        has_aux = bool(args.get("has_aux"))
        return Request(inputs=[n for n in names if n in fn.inputs], weights=[n for n in names if n in fn.weights],
                       outputs=outs[:1] if has_aux else outs, aux=outs[1:] if has_aux else [],
                       allow_unused=True)  # jax gives zeros for an argument f does not use
    raise ValueError(f"no source style {style!r} (known: {', '.join(STYLES)})")


def target_args(style: str, req: Request, fn, api: str = "the target") -> dict:
    """The request in the arguments of ``api`` (of that ``style``): what the record and the
    snippet show."""
    if style == "autograd":
        return {"outputs": list(req.outputs), "inputs": req.inputs + req.weights,
                "allow_unused": req.allow_unused}
    if style == "grad_position":
        if len(req.outputs) > 1 and req.aux:
            raise ValueError(f"{api} differentiates either the first output (has_aux) or all of "
                             f"them; not {req.outputs} with {req.aux} aside")
        names = _inputs(fn)
        pos = [names.index(n) for n in req.inputs]
        return {"grad_position": None if not pos else (pos[0] if len(pos) == 1 else pos),
                "weights": list(req.weights) or None, "has_aux": bool(req.aux)}
    if style == "backward":
        if len(req.outputs) != 1:
            raise ValueError(f"{api} differentiates one output, not {req.outputs}")
        return {"output": req.outputs[0], "repeat": req.repeat}
    if style == "argnums":
        if len(req.outputs) > 1 and req.aux:
            raise ValueError(f"{api} differentiates the first output (has_aux) or a single one")
        order = _inputs(fn) + _weights(fn)
        return {"argnums": [order.index(n) for n in req.inputs + req.weights],
                "has_aux": bool(req.aux)}
    raise ValueError(f"no target style {style!r} (known: {', '.join(STYLES)})")


def translate(source: str, target: str, args: dict, fn, api: str = "the target") -> dict:
    """Source call's arguments -> target call's arguments (by the two APIs' styles), through
    the neutral request."""
    return target_args(target, request(source, args, fn), fn, api)


def job_extras(source: str, target: str, args: dict, fn) -> dict:
    """(``source`` and ``target``: the two APIs' styles.) What the target's worker needs beyond its API arguments: the order in which the
    function returns its outputs (differentiated first, then aux: MindSpore's has_aux and
    torch.func's take the first output), and how often the call is made (``repeat``; a
    functional API called twice returns the same gradients, ``Tensor.backward`` accumulates)."""
    req = request(source, args, fn)
    order = list(fn.outputs) if target in ("autograd", "backward") else req.outputs + req.aux
    return {"fn_outputs": order, "repeat": req.repeat}
