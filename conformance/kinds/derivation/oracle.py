"""Float64 reference semantics of gradient *derivation* APIs: one pure function per semantic.

The function being differentiated is data (a case's ``function:`` block, materialised):

    {"inputs":  [[name, array], ...],     # positional inputs, in order (grad_position indexes them)
     "weights": [[name, array], ...],     # parameters (MindSpore ``weights=``, torch leaves)
     "ops":     [{"op": OP, "args": [name | number, ...], "out": name}, ...],
     "outputs": [name, ...]}              # what the function returns, in order

Ops (forward ``y``; backward: cotangent ``g`` of ``y`` -> cotangents of the arguments):

* ``add(a, b)``  ``a + b``; ``sub(a, b)`` ``a - b``; ``mul(a, b)`` ``a * b`` (numpy
  broadcasting; a cotangent is summed back to its argument's shape). Either may be a number.
* ``pow(a, p)``  ``a ** p`` for a number ``p``; ``da = g * p * a ** (p - 1)``.
* ``matmul(a, b)`` 2-D ``a @ b``; ``da = g @ b.T``, ``db = a.T @ g``.
* ``linear(x, w[, b])`` ``x @ w.T + b`` (torch layout ``w[out, in]``); ``dx = g @ w``,
  ``dw = g.T @ x``, ``db = sum_rows g``.
* ``tanh(a)``    ``da = g * (1 - y**2)``.
* ``sum(a)``, ``mean(a)`` to a scalar; ``da = g`` (``/ a.size`` for mean) broadcast.
* ``squeeze(a)`` drops size-1 dimensions; ``da = g.reshape(a.shape)``.
* ``mse(a, b)``  ``mean((a - b)**2)`` (``nn.MSELoss``); ``da = 2 g (a - b) / n``, ``db = -da``.

Every API differentiates ``sum_k <ones, outputs[k]>`` over a chosen list of outputs (an
implicit all-ones cotangent for each), then reports the gradient of each requested name. The
variant knobs (keyword-only, registry ``variant:``) reproduce the frameworks' differences:

* ``nonscalar``  ``"ones"``: a non-scalar differentiated output gets an all-ones cotangent
  (MindSpore, Paddle); ``"raise"``: the API raises (torch: "grad can be implicitly created
  only for scalar outputs").
* ``unused``     a requested name the differentiated outputs do not depend on (in the graph,
  whatever the values): ``"zeros"`` its gradient is zeros (MindSpore), ``"none"`` it is
  ``None`` (``allow_unused=True``), ``"raise"`` the API raises.
* ``accumulation`` ``"sum"``: ``calls`` backward passes add into ``.grad`` (torch and Paddle
  ``Tensor.backward``); ``"last"``: a functional API returns one pass's gradients however
  often it is called.
* ``raises``     (generic) the API raises this exception type here.

numpy and the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...oracle.network import central_difference


@dataclass
class DeriveResult:
    """``grads``: name -> float64 array, or None (an unused name with ``unused="none"``);
    ``values``: output name -> array (value_and_grad's value, grad's aux outputs) or None;
    ``raises``: the exception type name the API raises here (then grads/values are None)."""

    grads: Optional[dict] = None
    values: Optional[dict] = None
    raises: Optional[str] = None


# --------------------------------------------------------------------------- forward / backward


def _unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a broadcast cotangent back to ``shape``."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, n in enumerate(shape):
        if n == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g


def _val(env: dict, a):
    return np.float64(a) if isinstance(a, (int, float)) else env[a]


def forward(fn: dict) -> dict:
    """Every named value of the function (inputs, weights, op outputs) in float64."""
    env = {n: np.asarray(a, dtype=np.float64) for n, a in [*fn["inputs"], *fn.get("weights", [])]}
    for op in fn["ops"]:
        a = [_val(env, x) for x in op["args"]]
        kind = op["op"]
        if kind == "add":
            y = a[0] + a[1]
        elif kind == "sub":
            y = a[0] - a[1]
        elif kind == "mul":
            y = a[0] * a[1]
        elif kind == "pow":
            y = a[0] ** a[1]
        elif kind == "matmul":
            y = a[0] @ a[1]
        elif kind == "linear":
            y = a[0] @ a[1].T + (a[2] if len(a) > 2 else 0.0)
        elif kind == "tanh":
            y = np.tanh(a[0])
        elif kind == "sum":
            y = np.sum(a[0])
        elif kind == "mean":
            y = np.mean(a[0])
        elif kind == "squeeze":
            y = np.squeeze(a[0])
        elif kind == "mse":
            y = np.mean((a[0] - a[1]) ** 2)
        else:
            raise ValueError(f"unknown op {kind!r}")
        env[op["out"]] = np.asarray(y, dtype=np.float64)
    return env


def _vjp(kind: str, a: list, y: np.ndarray, g: np.ndarray) -> list:
    """Cotangents of the op's arguments (``None`` for a number) given the output cotangent."""
    if kind == "add":
        return [g, g]
    if kind == "sub":
        return [g, -g]
    if kind == "mul":
        return [g * a[1], g * a[0]]
    if kind == "pow":
        return [g * a[1] * a[0] ** (a[1] - 1), None]
    if kind == "matmul":
        return [g @ a[1].T, a[0].T @ g]
    if kind == "linear":
        out = [g @ a[1], g.reshape(-1, a[1].shape[0]).T @ a[0].reshape(-1, a[1].shape[1])]
        if len(a) > 2:
            out.append(g.reshape(-1, a[1].shape[0]).sum(axis=0))
        return out
    if kind == "tanh":
        return [g * (1.0 - y ** 2)]
    if kind == "sum":
        return [np.broadcast_to(g, a[0].shape).copy()]
    if kind == "mean":
        return [np.broadcast_to(g / max(a[0].size, 1), a[0].shape).copy()]
    if kind == "squeeze":
        return [g.reshape(a[0].shape)]
    if kind == "mse":
        d = 2.0 * g * (a[0] - a[1]) / max(np.broadcast(a[0], a[1]).size, 1)
        return [d, -d]
    raise ValueError(f"unknown op {kind!r}")


def backward(fn: dict, env: dict, seeds: dict) -> tuple[dict, set]:
    """Reverse mode from ``seeds`` (output name -> cotangent): the cotangent of every name
    reached, and the set of names the seeded outputs depend on (structurally: ``x * 0``
    still depends on ``x``, as every framework's graph does)."""
    cot = {n: np.asarray(s, dtype=np.float64) for n, s in seeds.items()}
    used = set(seeds)
    for op in reversed(fn["ops"]):
        if op["out"] not in cot:
            continue
        args = [_val(env, x) for x in op["args"]]
        parts = _vjp(op["op"], args, env[op["out"]], cot[op["out"]])
        for x, arg, d in zip(op["args"], args, parts):
            if isinstance(x, (int, float)) or d is None:
                continue
            d = _unbroadcast(np.asarray(d, dtype=np.float64), arg.shape)
            cot[x] = cot[x] + d if x in cot else d
            used.add(x)
    return cot, used


def gradients(fn: dict, outputs: list, wrt: list, *, nonscalar: str = "ones",
              unused: str = "zeros", error: str = "RuntimeError"):
    """``d/d(name) sum_k sum(outputs[k])`` for each name of ``wrt``.

    Returns ``(grads, env, raises)``: ``raises`` is ``error`` when a differentiated output is
    not a scalar and ``nonscalar="raise"``, or a name is unused and ``unused="raise"``.
    """
    env = forward(fn)
    if nonscalar == "raise" and any(env[o].size != 1 or env[o].ndim for o in outputs):
        return None, env, error
    cot, used = backward(fn, env, {o: np.ones_like(env[o]) for o in outputs})
    grads = {}
    for name in wrt:
        if name in used:
            grads[name] = cot[name]
        elif unused == "raise":
            return None, env, error
        else:
            grads[name] = np.zeros_like(env[name]) if unused == "zeros" else None
    return grads, env, None


def finite_difference(fn: dict, outputs: list, name: str, h: float = 1e-6) -> np.ndarray:
    """Central differences of ``sum_k sum(outputs[k])`` w.r.t. the input or weight ``name``."""
    import copy

    fn = copy.deepcopy(fn)
    slot = next(pair for pair in [*fn["inputs"], *fn.get("weights", [])] if pair[0] == name)
    p = np.array(slot[1], dtype=np.float64)
    slot[1] = p

    def total() -> float:
        env = forward(fn)
        return float(sum(env[o].sum() for o in outputs))

    return central_difference(p, total, h)


# --------------------------------------------------------------------------- API semantics


def _names(fn: dict, key: str) -> list:
    return [n for n, _ in fn.get(key, [])]


def autograd_grad(fn: dict, outputs=None, inputs=(), allow_unused=False, *, nonscalar="raise",
                  unused=None, accumulation="last", raises=None, empty="raise") -> DeriveResult:
    """``torch.autograd.grad(outputs, inputs, allow_unused)`` (also ``paddle.grad``).

    ``grads[n] = d/dn sum_k outputs[k]`` for each name ``n`` of ``inputs`` (inputs and weights
    alike); ``outputs`` defaults to the function's first output; several outputs are summed.
    Raises (``RuntimeError``) when ``inputs`` is empty, an output is not a scalar
    (``nonscalar="raise"``), or a name is unused and ``allow_unused`` is false; an unused name
    gives ``None`` with ``allow_unused`` (``unused`` overrides both rules). ``empty="grads"``: an
    empty ``inputs`` returns no gradients instead of raising (TensorFlow's ``tape.gradient(t, [])``
    is ``[]``).
    """
    return _grad_of_outputs(fn, outputs, inputs, allow_unused, nonscalar, unused, raises,
                            empty_error="RuntimeError", unused_error="RuntimeError", empty=empty)


def paddle_grad(fn: dict, outputs=None, inputs=(), allow_unused=False, *, nonscalar="ones",
                unused=None, accumulation="last", raises=None, empty="raise") -> DeriveResult:
    """``paddle.grad(outputs, inputs, allow_unused)``: as ``autograd_grad``, but a non-scalar
    output gets all-ones ``grad_outputs`` (the gradient of its sum), an empty ``inputs``
    raises ``AssertionError`` and an unused input without ``allow_unused`` ``ValueError``."""
    return _grad_of_outputs(fn, outputs, inputs, allow_unused, nonscalar, unused, raises,
                            empty_error="AssertionError", unused_error="ValueError", empty=empty)


def _grad_of_outputs(fn, outputs, inputs, allow_unused, nonscalar, unused, raises, *,
                     empty_error: str, unused_error: str, empty: str = "raise") -> DeriveResult:
    """The body of ``autograd_grad`` and ``paddle_grad``, which differ only in what they raise."""
    if raises:
        return DeriveResult(raises=raises)
    outs = list(outputs) if outputs else _names_out(fn)[:1]
    if empty not in ("raise", "grads"):
        raise ValueError(f"empty must be 'raise' or 'grads', got {empty!r}")
    if not inputs:
        return DeriveResult(raises=empty_error) if empty == "raise" else DeriveResult(grads={})
    rule = unused or ("none" if allow_unused else "raise")
    grads, _, err = gradients(fn, outs, list(inputs), nonscalar=nonscalar, unused=rule, error=unused_error)
    return DeriveResult(grads=grads, raises=err)


def _names_out(fn: dict) -> list:
    return list(fn["outputs"])


def _ms_wrt(fn: dict, grad_position, weights) -> Optional[list]:
    """Names selected by MindSpore's ``grad_position`` (int, list or None) and ``weights``
    (None, ``true`` = every weight of the function, or a list of weight names)."""
    if grad_position is None and weights in (None, False):
        return None
    names = _names(fn, "inputs")
    pos = [] if grad_position is None else (
        [grad_position] if isinstance(grad_position, int) else list(grad_position))
    wts = [] if weights in (None, False) else (_names(fn, "weights") if weights is True else list(weights))
    return [names[i] for i in pos] + wts


def mindspore_grad(fn: dict, grad_position=0, weights=None, has_aux=False, *, nonscalar="ones",
                   unused="zeros", accumulation="last", raises=None, empty="raise") -> DeriveResult:
    """``mindspore.grad(fn, grad_position, weights, has_aux)(*inputs)``.

    Without ``has_aux``: ``d/dn sum_k sum(outputs[k])``, the gradient of the *sum of all
    outputs* (seed 003, "grads 7": [[6, 9, 12]] = loss's [[4, 6, 8]] + logits' [[2, 3, 4]]).
    With ``has_aux``: only the first output is differentiated and the others come back
    unchanged as ``values`` (aux). Names: the inputs at ``grad_position``, then ``weights``.
    Raises ``ValueError`` when grad_position and weights are both None, or when has_aux is
    set on a one-output function. Unused names get zeros; non-scalar outputs an all-ones
    cotangent. ``empty="grads"``: nothing selected returns no gradients instead of raising (a
    target that takes the selection as a list, TensorFlow's ``tape.gradient(t, [])``).
    """
    if raises:
        return DeriveResult(raises=raises)
    wrt = _ms_wrt(fn, grad_position, weights)
    outs = _names_out(fn)
    if wrt is None and empty == "grads":
        return DeriveResult(grads={})
    if wrt is None or (has_aux and len(outs) < 2):
        return DeriveResult(raises="ValueError")
    diff = outs[:1] if has_aux else outs
    grads, env, err = gradients(fn, diff, wrt, nonscalar=nonscalar, unused=unused)
    values = {o: env[o] for o in outs[1:]} if has_aux and not err else None
    return DeriveResult(grads=grads, values=values, raises=err)


def value_and_grad(fn: dict, grad_position=0, weights=None, has_aux=False, *, nonscalar="ones",
                   unused="zeros", accumulation="last", raises=None) -> DeriveResult:
    """``mindspore.value_and_grad``: ``(value, grads)`` where ``value`` is every output of the
    function (the aux outputs included) and ``grads`` are ``mindspore.grad``'s."""
    r = mindspore_grad(fn, grad_position, weights, has_aux, nonscalar=nonscalar, unused=unused,
                       raises=raises)
    if r.raises:
        return r
    env = forward(fn)
    return DeriveResult(grads=r.grads, values={o: env[o] for o in _names_out(fn)})


def jax_grad(fn: dict, argnums=0, has_aux=False, *, nonscalar="raise", unused="zeros",
             accumulation="last", raises=None, empty="raise") -> DeriveResult:
    """``jax.grad(f, argnums, has_aux)(*inputs, *weights)``: f takes the function's inputs, then
    its weights, positionally; ``argnums`` (an int or a list) picks the differentiated ones.

    Without ``has_aux`` f must return one scalar: several outputs, or a non-scalar one
    (``nonscalar="raise"``), raise ``TypeError`` ("Gradient only defined for scalar-output
    functions"). With ``has_aux`` the first output is differentiated and the others come back
    as ``values`` (aux). An argument f does not use gets zeros. An empty ``argnums`` raises
    ``ValueError`` (jax takes ``max(argnums)``; ``empty="grads"``: no gradients instead).
    """
    if raises:
        return DeriveResult(raises=raises)
    order = _names(fn, "inputs") + _names(fn, "weights")
    pos = [argnums] if isinstance(argnums, int) else list(argnums or [])
    if not pos:
        return DeriveResult(grads={}) if empty == "grads" else DeriveResult(raises="ValueError")
    outs = _names_out(fn)
    diff = outs[:1] if has_aux else outs
    if len(diff) > 1 and nonscalar == "raise":
        return DeriveResult(raises="TypeError")
    grads, env, err = gradients(fn, diff, [order[i] for i in pos], nonscalar=nonscalar, unused=unused,
                                error="TypeError")
    values = {o: env[o] for o in outs[1:]} if has_aux and not err else None
    return DeriveResult(grads=grads, values=values, raises=err)


def jax_value_and_grad(fn: dict, argnums=0, has_aux=False, *, nonscalar="raise", unused="zeros",
                       accumulation="last", raises=None, empty="raise") -> DeriveResult:
    """``jax.value_and_grad``: ``jax_grad``'s gradients with every output of the function as
    ``values`` (the value, and the aux outputs with ``has_aux``)."""
    r = jax_grad(fn, argnums, has_aux, nonscalar=nonscalar, unused=unused, raises=raises, empty=empty)
    if r.raises:
        return r
    env = forward(fn)
    return DeriveResult(grads=r.grads, values={o: env[o] for o in _names_out(fn)})


def tensor_backward(fn: dict, output=None, repeat=1, *, nonscalar="raise", unused="none",
                    accumulation="sum", raises=None) -> DeriveResult:
    """``output.backward()`` called ``repeat`` times (``retain_graph=True``), then the ``.grad``
    of every leaf (inputs and weights): ``repeat * d/dn sum(output)`` (``.grad`` accumulates;
    ``accumulation="last"``: one pass's gradients), ``None`` for a leaf the output does not
    depend on. ``output`` defaults to the first output. Raises ``RuntimeError`` on a
    non-scalar output (torch; Paddle uses an all-ones cotangent: ``nonscalar="ones"``).
    """
    if raises:
        return DeriveResult(raises=raises)
    outs = [output] if output else _names_out(fn)[:1]
    leaves = _names(fn, "inputs") + _names(fn, "weights")
    grads, _, err = gradients(fn, outs, leaves, nonscalar=nonscalar, unused=unused)
    if err:
        return DeriveResult(raises=err)
    times = int(repeat) if accumulation == "sum" else 1
    return DeriveResult(grads={n: None if g is None else np.asarray(g * times) for n, g in grads.items()})
