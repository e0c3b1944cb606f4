"""What every framework's derivation snippets share (text only): the case's ``function:``
written out as a Python function over the framework's tensors, through the one op vocabulary
(``ops.OPS``, evaluated over text), and the ``result`` lines every snippet ends with. The
framework writers (``conformance/frameworks/<name>/snippets.py``) add the tensors, the call and
the unpacking of its result."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...snippets import header, literal, number
from .ops import evaluate


class Text(str):
    """Python source of a value, with Python's operators building the source of an expression
    (``Text("x") + Text("w")`` is ``Text("x + w")``), so ``ops.OPS`` writes the function out.
    ``prec`` is the precedence of its outermost operator (an operand of a tighter one is put in
    parentheses); names, numbers, calls and attributes bind tightest."""

    prec = 9

    def _op(self, other, sign: str) -> "Text":
        prec = _PREC[sign]
        left = _paren(self, prec if sign != "**" else prec + 1)
        right = _paren(other, prec + 1 if sign in ("-", "@", "**") or sign == "*" else prec)
        t = Text(f"{left} {sign} {right}")
        t.prec = prec
        return t

    def __add__(self, other):
        return self._op(other, "+")

    def __sub__(self, other):
        return self._op(other, "-")

    def __mul__(self, other):
        return self._op(other, "*")

    def __pow__(self, other):
        return self._op(other, "**")

    def __matmul__(self, other):
        return self._op(other, "@")


_PREC = {"+": 1, "-": 1, "*": 2, "@": 2, "**": 3}


def _paren(t, at_least: int) -> str:
    """``t`` as an operand that needs precedence ``at_least``."""
    return f"({t})" if getattr(t, "prec", 9) < at_least else str(t)


def _wrap(t) -> str:
    """``t`` as the object of an attribute or method (``(a + b).sum()``)."""
    return _paren(t, 9)


def text_prims(tanh: str) -> dict:
    """``ops.PRIMS`` written as source: ``tanh`` is the framework's function (``torch.tanh``);
    the rest are tensor methods every framework has."""
    return {"t": lambda a: Text(f"{_wrap(a)}.T"), "tanh": lambda a: Text(f"{tanh}({a})"),
            "sum": lambda a: Text(f"{_wrap(a)}.sum()"), "mean": lambda a: Text(f"{_wrap(a)}.mean()"),
            "squeeze": lambda a: Text(f"{_wrap(a)}.squeeze()")}


def ident(name: str) -> str:
    """A Python identifier for a case name (``fc.weight`` -> ``fc_weight``)."""
    s = re.sub(r"\W", "_", name)
    return s if s.isidentifier() else "v_" + s


def names(items) -> str:
    """A Python list of the case names (strings)."""
    return "[" + ", ".join(repr(n) for n in items) + "]"


def function_lines(name: str, params: list, fn: dict, outputs: list, tanh: str) -> list:
    """``def name(params): ...; return outputs`` computing ``fn``'s ops over case names."""
    env = {n: Text(ident(n)) for n, _ in [*fn["inputs"], *fn["weights"]]}
    lines = [f"def {name}({', '.join(ident(p) for p in params)}):"]
    prims = text_prims(tanh)
    for op in fn["ops"]:
        value = evaluate([op], env, prims, number=lambda x: Text(number(float(x))))[op["out"]]
        lines.append(f"    {ident(op['out'])} = {value}")
        env[op["out"]] = Text(ident(op["out"]))
    lines.append(f"    return {', '.join(ident(o) for o in outputs)}")
    return lines


def result_lines(numpy64: list, grads: str, values: str = "None", grad: str = "g") -> list:
    """The end of a derivation snippet: ``numpy64`` (the framework's ``def numpy64(t)``: a
    tensor as float64 numpy), ``result`` (gradients and returned outputs by name, what the
    suite compared), then printed. ``grads`` iterates ``(name, g)`` pairs; ``grad`` is the
    gradient's expression in ``g``."""
    return ["", *numpy64,
            f"result = {{'grads': {{n: numpy64({grad}) for n, g in {grads}}},",
            f"          'values': {values}}}",
            "for name, g in result['grads'].items():",
            "    print('grad', name, g)",
            "for name, v in (result['values'] or {}).items():",
            "    print('value', name, v)"]


@dataclass
class Parts:
    """What a framework's derivation writer starts from: the first lines (header, numpy and
    ``imports``), the materialised function ``fn``, its ``inputs`` and ``weights`` names, the
    ``outputs`` in the order the target's function returns them, how often the call is made
    (``repeat``) and the target's arguments."""

    lines: list
    fn: dict
    inputs: list
    weights: list
    outputs: list
    repeat: int
    args: dict


def parts(cell, function, imports: list) -> Parts:
    """The start of a writer's snippet for ``cell``, from what the derivation kind hands a
    writer (``cell.Function``: the materialised function, output order, repeat)."""
    fn = function.fn
    return Parts([*header(cell), "import numpy as np", *imports, ""], fn,
                 [n for n, _ in fn["inputs"]], [n for n, _ in fn["weights"]],
                 list(function.outputs), function.repeat, dict(cell.target_args))


def leaf_lines(p: Parts, tensor) -> list:
    """One assignment per input and weight: ``tensor(literal, name, is_weight)`` is the
    framework's constructor of a differentiable tensor."""
    out = [f"{ident(n)} = {tensor(literal(a), n, False)}" for n, a in p.fn["inputs"]]
    out += [f"{ident(n)} = {tensor(literal(a), n, True)}" for n, a in p.fn["weights"]]
    return out + [""]
