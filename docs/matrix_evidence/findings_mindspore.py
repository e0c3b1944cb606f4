"""Hand checks (MindSpore 2.10, CPU, PyNative) behind the MindSpore declarations of the
property-test findings (docs/matrix.md). Run in MindSpore's interpreter:
python docs/matrix_evidence/findings_mindspore.py"""
import math

import numpy as np
import mindspore as ms
from mindspore import Tensor, nn, ops

ms.set_context(mode=ms.PYNATIVE_MODE)


def attempt(label, fn):
    try:
        r = fn()
        r = [t.asnumpy().tolist() if hasattr(t, "asnumpy") else t for t in r] if isinstance(r, (tuple, list)) else (
            r.asnumpy().tolist() if hasattr(r, "asnumpy") else r)
        print(f"{label}: -> {r}")
    except Exception as e:  # noqa: BLE001 - printing what the framework raises is the point
        print(f"{label}: raises {type(e).__name__}: {str(e).strip().splitlines()[0][:110]}")


def t(values, dtype=np.float32):
    return Tensor(np.array(values, dtype))


print("mindspore", ms.__version__)
# ReduceSum of an empty tensor: uninitialised memory (ms-empty-reduce-sum-undefined)
for i in range(4):
    attempt(f"ReduceSum(square(empty)) #{i}", lambda: ops.sum(ops.square(t([]))))
    attempt(f"clip_by_norm((1.0, empty), 1) #{i}", lambda: ops.clip_by_norm((t(1.0), t([])), 1.0))
    attempt(f"clip_by_global_norm((1.0, empty), 1) #{i}", lambda: ops.clip_by_global_norm((t(1.0), t([])), 1.0))
    attempt(f"vector_norm(empty) #{i}", lambda: ops.vector_norm(t([])))
    _ = (t(np.random.rand(64)) * 3).asnumpy()  # other work in between
# bounds become tensors of the input dtype (ms-clip-by-value-bounds-in-dtype, ms-clamp-bounds-in-dtype)
x16 = t([math.nan, 2.0, -3.0, 35008.0], np.float16)
for lo, hi in ((-1e5, 1e5), (None, 1e5), (-70000.0, 1.0), (-65504.0, 65504.0)):
    kw = {k: v for k, v in (("clip_value_min", lo), ("clip_value_max", hi)) if v is not None}
    attempt(f"clip_by_value(float16, {kw})", lambda: ops.clip_by_value((x16,), **kw))
    kw = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
    attempt(f"clamp(float16, {kw})", lambda: ops.clamp(x16, **kw))
# no gradients / empty gradients / 0-d gradients
attempt("vector_norm composite of no gradients: stack([])", lambda: ops.vector_norm(ops.stack([]), 2))
attempt("clip_by_global_norm(())", lambda: ops.clip_by_global_norm((), 1.0))
attempt("clip_by_norm((), 1)", lambda: ops.clip_by_norm((), 1.0))
for nt in (math.inf, -math.inf, 2.0):
    attempt(f"vector_norm(0-d 0.0, {nt})", lambda: ops.vector_norm(t(0.0), nt))
    attempt(f"vector_norm(empty, {nt})", lambda: ops.vector_norm(t([]), nt))
attempt("clip_by_norm(0-d 0.0, 1, norm_type=0)", lambda: ops.clip_by_norm(t(0.0), 1.0, norm_type=0.0))
attempt("nn.ClipByNorm()(empty, 1)", lambda: nn.ClipByNorm()(t([]), Tensor(np.float32(1.0))))
attempt("clip_by_global_norm((0-d 0.5,), 1) shapes", lambda: [o.shape for o in ops.clip_by_global_norm((t(0.5),), 1.0)])
# nn.ClipByNorm's CPU kernel floors each sum of squares at 1e-6 (NaN included) and picks per
# element the smaller of x and clip_norm * x / L2(x) (threshold: select, square_sum_floor: 1e-6)
for x in ([math.nan, 1.0], [math.nan, 5.0], [math.inf, 1.0], [1.0, 0.0, 2.0], [1e-5, 0.0]):
    for c in (1e-4, 5e-4, 2e-3, math.inf):
        attempt(f"nn.ClipByNorm()({x}, {c})", lambda: nn.ClipByNorm()(t(x), Tensor(np.float32(c))))
# identity precision: float16 clip_by_norm of [300] overflows (300**2 > 65504); float64
# clip_by_global_norm holds clip_norm in float32 (2.6e-109 -> 0)
attempt("clip_by_norm(float16 300.0, 300.0)", lambda: ops.clip_by_norm(t(300.0, np.float16), 300.0))
attempt("clip_by_global_norm((float64 2.6e-109,), 2.6e-109)",
        lambda: ops.clip_by_global_norm((t(2.5855359276592865e-109, np.float64),), 2.5855359276592865e-109))
# ops.clip_by_norm holds max_norm as a float32 scalar: float64 [inf] with 2.55e-132 (-> 0) gives NaN
f64 = lambda v: t(v, np.float64)
attempt("clip_by_norm(float64 inf, 2.55e-132, -inf)", lambda: ops.clip_by_norm(f64(math.inf), 2.55e-132, norm_type=-math.inf))
attempt("clip_by_norm(float64 inf, 0.5, -inf)", lambda: ops.clip_by_norm(f64(math.inf), 0.5, norm_type=-math.inf))
attempt("clip_by_norm((float64 2, 1), 0.5, -inf)", lambda: ops.clip_by_norm((f64(2.0), f64(1.0)), 0.5, norm_type=-math.inf))
# an empty gradient among others: the undefined sum can be non-finite, then error_if_nonfinite raises
for i in range(3):
    attempt(f"clip_by_norm((empty(0,3,2), 0.2, 9, 0), 9.0022, error_if_nonfinite=True) #{i}",
            lambda: ops.clip_by_norm((t(np.zeros((0, 3, 2))), t(0.2), t(9.0), t(0.0)), 9.0022, error_if_nonfinite=True))
