"""MindSpore 2.10 (CPU): where graph mode (mindspore.jit(fullgraph=True)) and PyNative disagree
on the same clipping call. Run with the mindspore env: .tox/mindspore/bin/python THIS_FILE

Printed on 2026-12-03, each call three ways: jit of the gradients as a plain tuple (MindSpore
folds them as constants), jit of ``ms.mutable(tuple)`` (variables, what the suite runs), PyNative
(docs/modes.md quotes it):
  clip_by_norm inf, 0-d [0, nan, 2]: jit(constant tuple) [[0.0], [0.4999997615814209], [0.9999995231628418]]  jit(mutable) [[0.0], [nan], [0.9999995231628418]]  eager [[0.0], [nan], [0.9999995231628418]]
  clip_by_norm inf, 1-d [0],[nan],[2]: jit(constant tuple) [[0.0], [nan], [0.9999995231628418]]  jit(mutable) [[0.0], [nan], [0.9999995231628418]]  eager [[0.0], [nan], [0.9999995231628418]]
  clip_by_norm inf, [2, nan, -3]: jit(constant tuple) [[2.0, nan, -3.0]]  jit(mutable) [[0.6666664481163025, nan, -0.9999996423721313]]  eager [[0.6666664481163025, nan, -0.9999996423721313]]
  clip_by_value(-inf, inf) [nan, 3]: jit(constant tuple) [[nan, 3.0]]  jit(mutable) [[nan, 3.0]]  eager [[-inf, 3.0]]
  clip_by_value(-1.0, inf) [nan, 3]: jit(constant tuple) [[-1.0, 3.0]]  jit(mutable) [[-1.0, 3.0]]  eager [[-1.0, 3.0]]
  clip_by_value(-inf, 1.0) [nan, 3]: jit(constant tuple) [[1.0, 1.0]]  jit(mutable) [[1.0, 1.0]]  eager [[-inf, 1.0]]
  clip_by_value(-1.0, 1.0) [nan, 3]: jit(constant tuple) [[-1.0, 1.0]]  jit(mutable) [[-1.0, 1.0]]  eager [[-1.0, 1.0]]
  clip_by_global_norm(clip_norm=1e-50), float64: jit(constant tuple) ValueError: For 'clip_by_global_norm', the argument 'clip_norm' must > 0.0, but got 0.0.  jit(mutable) ValueError: For 'clip_by_global_norm', the argument 'clip_norm' must > 0.0, but got 0.0.  eager [[0.0, 0.0]]
  clip_by_norm p=3, float16 [300, 250]: jit(constant tuple) [[0.861328125, 0.7177734375]]  jit(mutable) [[0.861328125, 0.7177734375]]  eager [[0.0, 0.0]]
  clip_by_norm p=3, float16 [300], [-250]: jit(constant tuple) [[300.0], [-250.0]]  jit(mutable) [[300.0], [-250.0]]  eager [[0.0], [-0.0]]
  clip_by_global_norm(clip_norm=1e-21), float64 [1e-20, -2e-20]: jit(constant tuple) [[1e-20, -2e-20]]  jit(mutable) [[1e-20, -2e-20]]  eager [[4.472135295946878e-22, -8.944270591893756e-22]]
  clip_by_norm -inf, 0-d [0, nan]: jit(constant tuple) [[0.0], [0.9999990463256836]]  jit(mutable) [[0.0], [nan]]  eager [[0.0], [nan]]
  clip_by_norm -inf, 0-d [nan]: jit(constant tuple) [[0.9999990463256836]]  jit(mutable) [[nan]]  eager [[nan]]
"""

import contextlib
import tempfile

import numpy as np
import mindspore as ms
from mindspore import Tensor, ops


def calling(op, **kwargs):
    """``op(gradients, **kwargs)`` as a def (graph mode's AST capture cannot parse a lambda
    written inside a call)."""
    def fn(g):
        return op(g, **kwargs)
    return fn


def show(label, fn, x):
    """The call three ways: jitted with the gradients as a plain tuple (MindSpore takes its
    Tensors as constants and folds the call at compile time: "Constant value tensor are detected
    in tuple or list"), jitted with ``ms.mutable(tuple)`` (variables, as in a compiled training
    step; what the suite runs), and eagerly (PyNative)."""
    def values(out):
        return [np.asarray(t.asnumpy()).ravel().tolist() for t in (out if isinstance(out, tuple) else (out,))]

    def jitted(arg):
        try:
            with contextlib.chdir(tempfile.mkdtemp()):  # a failed compile writes rank_0/ here
                return values(ms.jit(fn, fullgraph=True)(arg))
        except Exception as e:  # noqa: BLE001 - graph mode's own error is the result
            return f"{type(e).__name__}: {str(e).splitlines()[0]}"

    variable = ms.mutable(x) if isinstance(x, tuple) else x
    print(f"{label}: jit(constant tuple) {jitted(x)}  jit(mutable) {jitted(variable)}  eager {values(fn(x))}")


f32 = np.float32
inf_norm = calling(ops.clip_by_norm, max_norm=1.0, norm_type=float("inf"))
show("clip_by_norm inf, 0-d [0, nan, 2]", inf_norm, (Tensor(f32(0.0)), Tensor(f32(np.nan)), Tensor(f32(2.0))))
show("clip_by_norm inf, 1-d [0],[nan],[2]", inf_norm, tuple(Tensor(np.array([v], f32)) for v in (0.0, np.nan, 2.0)))
show("clip_by_norm inf, [2, nan, -3]", inf_norm, (Tensor(np.array([2.0, np.nan, -3.0], f32)),))
for lo, hi in ((-np.inf, np.inf), (-1.0, np.inf), (-np.inf, 1.0), (-1.0, 1.0)):
    show(f"clip_by_value({lo}, {hi}) [nan, 3]", calling(ops.clip_by_value, clip_value_min=lo, clip_value_max=hi),
         (Tensor(np.array([np.nan, 3.0], f32)),))
show("clip_by_global_norm(clip_norm=1e-50), float64", calling(ops.clip_by_global_norm, clip_norm=1e-50),
     (Tensor(np.array([1e-40, 3.0])),))

# Declared since as compiled numerics (conformance/frameworks/mindspore/registry/clipping.yaml):
# ms-graph-mode-float16-sums-in-float32 and ms-graph-mode-float32-sum-flushed.
show("clip_by_norm p=3, float16 [300, 250]", calling(ops.clip_by_norm, max_norm=1.0, norm_type=3.0),
     (Tensor(np.array([300.0, 250.0], np.float16)),))
show("clip_by_norm p=3, float16 [300], [-250]", calling(ops.clip_by_norm, max_norm=1.0, norm_type=3.0),
     (Tensor(np.array([300.0], np.float16)), Tensor(np.array([-250.0], np.float16))))
show("clip_by_global_norm(clip_norm=1e-21), float64 [1e-20, -2e-20]", calling(ops.clip_by_global_norm, clip_norm=1e-21),
     (Tensor(np.array([1e-20, -2e-20])),))
# Folding only (a constant tuple): a 0-d NaN gradient came back finite; as variables it stays NaN.
show("clip_by_norm -inf, 0-d [0, nan]", calling(ops.clip_by_norm, max_norm=1.0, norm_type=-float("inf")),
     (Tensor(f32(0.0)), Tensor(f32(np.nan))))
show("clip_by_norm -inf, 0-d [nan]", calling(ops.clip_by_norm, max_norm=1.0, norm_type=-float("inf")),
     (Tensor(f32(np.nan)),))
