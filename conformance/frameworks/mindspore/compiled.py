"""MindSpore's compiled mode (worker side only; docs/modes.md): the clipping call inside
``mindspore.jit(fn, fullgraph=True)`` (graph mode, AST capture), as a user who compiles the
training step does; everything else (gradients, the SGD step of the ``.via_sgd`` forms) stays
in PyNative.

Compiled means compiled: ``fullgraph=True`` refuses the JIT Fallback that would run Python it
cannot capture in the interpreter (it raises instead), and with AST capture the whole function is
parsed into a graph or the call raises. A failed compile writes ``rank_0/om/analyze_fail.ir``
under the working directory, so the compiled call runs in a temporary folder of this worker
(not the user's working directory, which it would litter).

One jitted function per (API, arguments), kept while it is among the last ``KEEP`` used, as a
training loop keeps its compiled step: MindSpore then compiles a graph once per input signature
(structure, shapes, dtypes) and reuses it for every later cell with that signature, where a new
``jit`` per cell compiled every cell afresh (docs/modes.md has the cost). The arguments are the
graph's constants, so they are part of the key, a Tensor argument by its dtype, shape and bytes.

The gradients are the graph's variables, as in a compiled training step that computes them:
a tuple of Tensors goes in as ``ms.mutable(tuple)``. Passed as a plain tuple, MindSpore takes
its Tensors as constants (its own warning: "Constant value tensor are detected in tuple or
list, which might cause recompiling when tensor value changes"), folds the clip at compile time
and compiles again for every new value; the folded path also computes otherwise than the
graph's kernels (``clip_by_norm(norm_type=inf)`` of [0, nan, 2] comes back unclipped folded,
clipped to [0, nan, 1] as a variable and in PyNative).
"""

from __future__ import annotations

import collections
import contextlib
import tempfile

import mindspore as ms

_SCRATCH: list = []  # the folder compiled calls run in, made by the first one (_scratch)

#: how the clipping functions call a MindSpore op: ``eager`` or ``compiled`` (run() sets it per job)
MODE = ["eager"]
#: jitted functions kept (each holds its compiled graphs); the least recently used goes first
KEEP = 64
_jitted: collections.OrderedDict = collections.OrderedDict()


def _constant(value) -> tuple:
    if isinstance(value, ms.Tensor):
        return "Tensor", str(value.dtype), tuple(value.shape), value.asnumpy().tobytes()
    return type(value).__name__, repr(value)


def _key(fn, args: dict) -> tuple:
    # a function by its qualified name, a Cell (stateless here: nn.ClipByNorm) by its class
    who = fn if hasattr(fn, "__qualname__") else type(fn)
    return (who.__module__, who.__qualname__,
            tuple(sorted((k, _constant(v)) for k, v in args.items())))


def _compiled(key: tuple, fn, args: dict):
    jitted = _jitted.get(key)
    if jitted is None:
        def call(x):
            return fn(x, **args)

        jitted = _jitted[key] = ms.jit(call, fullgraph=True)
        while len(_jitted) > KEEP:
            _jitted.popitem(last=False)
    _jitted.move_to_end(key)
    return jitted


def _scratch() -> str:
    """The worker's folder for compiled calls, made at the first one: a process that imports this
    module and compiles nothing (a distributed rank, an eager worker) leaves no folder behind
    (the distributed tests' rank processes, outside a worker's own TMPDIR, left three in /tmp)."""
    if not _SCRATCH:
        _SCRATCH.append(tempfile.mkdtemp(prefix="conformance-ms-graphs-"))
    return _SCRATCH[0]


def invoke(fn, x, args: dict):
    """``fn(x, **args)``: directly in eager mode; in compiled mode inside ``ms.jit(fullgraph=True)``,
    a function of the gradients (a tuple or one Tensor) with the arguments as its constants."""
    if MODE[0] != "compiled":
        return fn(x, **args)
    if isinstance(x, (tuple, list)):
        x = ms.mutable(tuple(x))
    key = _key(fn, args)
    with contextlib.chdir(_scratch()):
        try:
            out = _compiled(key, fn, args)(x)
            # the graph runs asynchronously and its errors surface when a result is read: read
            # them here, where a failed graph can still be dropped
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, ms.Tensor):
                    t.asnumpy()
            return out
        except BaseException:
            # A graph whose run raised is not called again: MindSpore 2.10 keeps state from the
            # failed run, and the same call then raises "Invalid output number for flatten stub
            # output nodes, expect: 1, but got: 2" (3 the time after) instead of its own error
            # (nn.ClipByNorm of a shape-[0] gradient: "l2_norm_index_ size is 0"). A new jit is
            # a new graph (docs/modes.md).
            _jitted.pop(key, None)
            raise
