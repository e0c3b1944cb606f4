"""The op vocabulary of derivation cases, written once (docs/derivation.md).

A case's ``function:`` is a list of ops ``{op, args, out}``. ``OPS`` says, per op, how many
arguments it takes, whether an argument may be a number, and what it computes, written with
Python operators (``+ - * ** @``, which every framework's tensors overload) and the few
framework functions a caller passes as ``prims``: ``t`` (transpose of a 2-D tensor), ``tanh``,
``sum``, ``mean``, ``squeeze``. The same table checks case files, runs the function in every
framework's worker, and writes it out in reproduction snippets (``prims`` that build text). The
float64 oracle computes the same ops with its own forward and hand-written backward
(``oracle.py``), so it shares no arithmetic with the backends.

Standard library only: workers import this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Op:
    low: int  # fewest arguments
    high: int  # most arguments
    numbers: bool  # an argument may be a number (a constant) instead of a name
    apply: Callable  # (arguments, prims) -> the op's value


def _linear(a, p):
    y = a[0] @ p["t"](a[1])  # torch layout: w[out, in]
    return y + a[2] if len(a) > 2 else y


OPS = {
    "add": Op(2, 2, True, lambda a, p: a[0] + a[1]),
    "sub": Op(2, 2, True, lambda a, p: a[0] - a[1]),
    "mul": Op(2, 2, True, lambda a, p: a[0] * a[1]),
    "pow": Op(2, 2, True, lambda a, p: a[0] ** a[1]),  # the exponent must be a number
    "matmul": Op(2, 2, False, lambda a, p: a[0] @ a[1]),
    "linear": Op(2, 3, False, _linear),  # x @ w.T (+ b)
    "tanh": Op(1, 1, False, lambda a, p: p["tanh"](a[0])),
    "sum": Op(1, 1, False, lambda a, p: p["sum"](a[0])),
    "mean": Op(1, 1, False, lambda a, p: p["mean"](a[0])),
    "squeeze": Op(1, 1, False, lambda a, p: p["squeeze"](a[0])),
    "mse": Op(2, 2, False, lambda a, p: p["mean"]((a[0] - a[1]) ** 2)),  # nn.MSELoss, mean
}

#: the primitives a caller of ``evaluate`` provides
PRIMS = ("t", "tanh", "sum", "mean", "squeeze")


def evaluate(ops: list, env: dict, prims: dict, number: Callable = float) -> dict:
    """``env`` (name -> value) extended with every op's ``out``; a number argument becomes
    ``number(x)`` (a Python float for tensors; text for a snippet)."""
    env = dict(env)
    for op in ops:
        args = [number(x) if isinstance(x, (int, float)) else env[x] for x in op["args"]]
        env[op["out"]] = OPS[op["op"]].apply(args, prims)
    return env
