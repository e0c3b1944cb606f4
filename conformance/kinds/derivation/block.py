"""The block of a derivation case: ``function:``, the function a derivation API differentiates,
written as data over the op vocabulary of ``ops`` (docs/derivation.md). Nothing is evaluated."""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import Field

from ...spec.locations import suggest
from ...spec.values import Strict, TensorValue
from ..interface import Block
from .ops import OPS

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*$"


class FnOp(Strict):
    """One step of a ``function:``: ``out = op(*args)``; an arg names an input, a weight or an
    earlier ``out``, or is a number where the op takes one (add, sub, mul, pow: ``ops.OPS``)."""

    op: Literal[tuple(OPS)]
    args: Annotated[list[Union[Annotated[str, Field(pattern=NAME_PATTERN)], float]], Field(min_length=1)]
    out: Annotated[str, Field(pattern=NAME_PATTERN)]


class Function(Strict):
    """The function a derivation API differentiates: named positional ``inputs`` (in order:
    MindSpore's grad_position indexes them), named ``weights`` (parameters), ``ops`` from a
    fixed vocabulary, and the ``outputs`` it returns, in order. Nothing is evaluated."""

    inputs: dict[Annotated[str, Field(pattern=NAME_PATTERN)], TensorValue]
    weights: dict[Annotated[str, Field(pattern=NAME_PATTERN)], TensorValue] = {}
    ops: Annotated[list[FnOp], Field(min_length=1)]
    outputs: Annotated[list[Annotated[str, Field(pattern=NAME_PATTERN)]], Field(min_length=1)]


def function_problems(fn: Function) -> list[tuple[tuple, str]]:
    """(location, problem) for names used before they are defined, defined twice, wrong op
    arities, numbers where an op needs a tensor, and outputs that name nothing."""
    out = []
    defined = {}
    for group in ("inputs", "weights"):
        for name in getattr(fn, group):
            if name in defined:
                out.append(((("function", group, name)), f"{name!r} is also {defined[name]}"))
            defined[name] = f"an {group[:-1]}" if group == "inputs" else "a weight"
    for i, op in enumerate(fn.ops):
        lo, hi = OPS[op.op].low, OPS[op.op].high
        if not lo <= len(op.args) <= hi:
            want = str(lo) if lo == hi else f"{lo} or {hi}"
            out.append((("function", "ops", i, "args"), f"{op.op} takes {want} arguments, got {len(op.args)}"))
        for j, a in enumerate(op.args):
            loc = ("function", "ops", i, "args", j)
            if isinstance(a, str):
                if a not in defined:
                    out.append((loc, f"{a!r} is not an input, a weight or an earlier op's out"
                                     + suggest(a, defined)))
            elif not OPS[op.op].numbers:
                out.append((loc, f"{op.op} needs tensors, not the number {a!r}"))
        if op.op == "pow" and len(op.args) == 2 and isinstance(op.args[1], str):
            out.append((("function", "ops", i, "args", 1), "the exponent of pow must be a number"))
        if op.out in defined:
            out.append((("function", "ops", i, "out"), f"{op.out!r} is already {defined[op.out]}"))
        defined.setdefault(op.out, f"the out of ops[{i}]")
    for k, name in enumerate(fn.outputs):
        if name not in defined:
            out.append((("function", "outputs", k), f"{name!r} names nothing" + suggest(name, defined)))
    return out


def _check(case) -> list:
    return function_problems(case.function)


BLOCK = Block(fields={"function": (Optional[Function], None)}, inputs=("function",), marks=("function",),
              check=_check)
