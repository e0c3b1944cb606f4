"""MindSpore's compiled mode (worker side only; docs/modes.md): the clipping call inside
``mindspore.jit(fn, fullgraph=True)`` (graph mode, AST capture), as a user who compiles the
training step does; everything else (gradients, the SGD step of the ``.via_sgd`` forms) stays
in PyNative.

Compiled means compiled: ``fullgraph=True`` refuses the JIT Fallback that would run Python it
cannot capture in the interpreter (it raises instead), and with AST capture the whole function is
parsed into a graph or the call raises. A failed compile writes ``rank_0/om/analyze_fail.ir``
under the working directory, so the compiled call runs in a temporary folder of this worker
(not the user's working directory, which it would litter).
"""

from __future__ import annotations

import contextlib
import tempfile

import mindspore as ms

_SCRATCH = tempfile.mkdtemp(prefix="conformance-ms-graphs-")

#: how the clipping functions call a MindSpore op: ``eager`` or ``compiled`` (run() sets it per job)
MODE = ["eager"]


def invoke(fn, x, args: dict):
    """``fn(x, **args)``: directly in eager mode; in compiled mode inside ``ms.jit(fullgraph=True)``,
    a function of the gradients (a tuple or one Tensor) with the arguments as its constants."""
    if MODE[0] != "compiled":
        return fn(x, **args)

    def call(x):
        return fn(x, **args)

    with contextlib.chdir(_SCRATCH):
        return ms.jit(call, fullgraph=True)(x)
