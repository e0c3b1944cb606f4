"""torch's compiled mode (worker side only; docs/modes.md): a target API called through
``torch.compile(fullgraph=True)`` with the default inductor backend, as a user who compiles their
training step does.

Compiled means compiled. ``fullgraph=True`` makes a graph break raise (the framework's own
``Unsupported`` error, declared per API in the registry where it is a gap), and two silent
ways back to eager are closed here:
- dynamo's recompile limit: past it dynamo would run the function eagerly; it is told to raise
  instead (``fail_on_recompile_limit_hit``), and this module resets dynamo before a ninth
  distinct call (shapes, dtypes, arguments) could reach the limit, so the cache stays bounded;
- a call that captures no graph (nothing for dynamo to trace) is an error of the cell, not a
  pass: the backend below counts the graphs it is given.
"""

from __future__ import annotations

import torch
import torch._dynamo
from torch._inductor.compile_fx import compile_fx  # the inductor backend torch.compile uses by default

#: distinct calls kept compiled before dynamo is reset (below its recompile limit of 8)
KEEP = 7
torch._dynamo.config.fail_on_recompile_limit_hit = True

_graphs = [0]  # graphs handed to the backend since the worker started
_seen: dict = {}  # call key -> the compiled function


def _inductor(gm, example_inputs):
    _graphs[0] += 1
    return compile_fx(gm, example_inputs)


class NotCompiled(RuntimeError):
    """The compiled call ran without a captured graph: it would have been eager."""


def _key(api: str, given, args: dict) -> tuple:
    each = [given] if isinstance(given, torch.Tensor) else given
    grads = tuple(None if p.grad is None else (tuple(p.grad.shape), p.grad.dtype) for p in each)
    return api, isinstance(given, torch.Tensor), grads, tuple(sorted((k, repr(v)) for k, v in args.items()))


def call(api: str, fn, given, args: dict):
    """``fn(given, args)`` compiled: the first call of a new key must hand a graph to inductor."""
    key = _key(api, given, args)
    compiled = _seen.get(key)
    first = compiled is None
    if first:
        if len(_seen) >= KEEP:
            torch._dynamo.reset()
            _seen.clear()
        # dynamic=False: one graph per shape, so a new key always compiles a graph of its own
        # (with automatic dynamic shapes a later shape could reuse an earlier dynamic graph, and
        # the check below could not tell that from an eager run)
        compiled = _seen[key] = torch.compile(lambda g: fn(g, args), fullgraph=True, dynamic=False,
                                              backend=_inductor)
    before = _graphs[0]
    out = compiled(given)
    if first and _graphs[0] == before:
        raise NotCompiled(f"torch.compile(fullgraph=True) of {api} captured no graph: the call ran eagerly")
    return out
