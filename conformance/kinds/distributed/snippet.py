"""What every framework's distributed reproduction snippet states first (text only): the world
size, how each gradient is split, the whole gradients as numpy expressions and each one's dtype.
Each framework's ``snippets.py`` writes the rest (its launcher and its ranks' calls)."""

from __future__ import annotations

from ...snippets import array_expr
from ...spec.values import tensor_data
from ...tensors import param_dtype


def constants(cell, inputs, dtype_expr) -> list:
    """``WORLD``, ``SPLIT`` ({name: dim}; empty when replicated), ``GRADS`` ({name: numpy array or
    None}) and ``DTYPES`` ({name: ``dtype_expr(dtype name)``}) as lines of Python."""
    case, d = cell.case, cell.case.distributed
    split = {n: (d.split or {}).get(n, 0) for n in case.grads} if d.strategy == "sharded" else {}
    grads = ", ".join(f"{n!r}: {'None' if inputs.grads[n] is None else array_expr(v, inputs.grads[n])}"
                      for n, v in case.grads.items())
    dtypes = ", ".join(f"{n!r}: {dtype_expr(param_dtype(tensor_data(v), cell.dtype) if v is not None else cell.dtype)}"
                       for n, v in case.grads.items())
    return [f"WORLD = {d.world_size}",
            f"SPLIT = {split!r}  # parameter -> the dim its shards are cut along ({d.strategy})",
            f"GRADS = {{{grads}}}",
            f"DTYPES = {{{dtypes}}}"]
