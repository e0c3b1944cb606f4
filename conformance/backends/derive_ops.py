"""The derivation cases' op vocabulary written once over a framework's tensors (worker side).

``evaluate`` runs a job's ``function["ops"]`` (docs/derivation.md) with Python operators
(``+ - * ** @``, which torch, MindSpore and Paddle tensors all overload) and the few
framework functions in ``prims``: ``tanh``, ``sum``, ``mean``, ``squeeze``, ``t`` (transpose of
a 2-D tensor). A ``*_derive`` backend passes its framework's functions. Standard library only.
"""

from __future__ import annotations


def evaluate(ops: list, env: dict, prims: dict) -> dict:
    """``env`` (name -> tensor) extended with every op's ``out``; numbers stay Python floats."""
    env = dict(env)

    def val(a):
        return float(a) if isinstance(a, (int, float)) else env[a]

    for op in ops:
        a = [val(x) for x in op["args"]]
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
            y = a[0] @ prims["t"](a[1])
            if len(a) > 2:
                y = y + a[2]
        elif kind in ("tanh", "sum", "mean", "squeeze"):
            y = prims[kind](a[0])
        elif kind == "mse":
            y = prims["mean"]((a[0] - a[1]) ** 2)
        else:
            raise NotImplementedError(f"unknown op {kind!r}")
        env[op["out"]] = y
    return env
