"""Hand checks behind the MindSpore declarations of the clipping matrix (mindspore.yaml).
Run with the MindSpore interpreter: python docs/matrix_evidence/mindspore_evidence.py"""
import numpy as np
import mindspore as ms
from mindspore import nn, ops

ms.set_context(mode=ms.PYNATIVE_MODE)
f32 = lambda a: ms.Tensor(np.asarray(a, np.float32))
f64 = lambda a: ms.Tensor(np.asarray(a, np.float64), ms.float64)


def show(label, f):
    try:
        out = f()
        out = [o.asnumpy().tolist() for o in out] if isinstance(out, (tuple, list)) else out
        print(label, out)
    except Exception as e:  # noqa: BLE001
        print(label, "raises", type(e).__name__, (str(e).splitlines() or [""])[0][:160])


a = np.random.default_rng(121).normal(size=(3, 4)); a[1, 2] = np.nan
b = np.random.default_rng(122).normal(size=5)
# ms-clip-by-norm-inf-norm-ignores-nan: inf-norm of a tensor with a NaN (not first) is finite
show("clip_by_norm p=inf, a NaN inside, error_if_nonfinite=True:",
     lambda: ops.clip_by_norm((f32(a), f32(b)), 1.0, norm_type=float("inf"), error_if_nonfinite=True)[1])
show("vector_norm p=inf of a:", lambda: ops.vector_norm(f32(a), float("inf")))                 # 2.37
show("vector_norm p=-inf of [nan, 1, 0.07]:", lambda: ops.vector_norm(f32([np.nan, 1.0, 0.07]), float("-inf")))  # nan (first)
# skip_nan: an inf norm zeroes the gradients (inf elements NaN), a NaN norm leaves them
a2 = a.copy(); a2[1, 2] = np.inf
show("clip_by_norm p=2 with an inf:", lambda: ops.clip_by_norm((f32(a2), f32(b)), 1.0)[1])      # zeros
show("clip_by_global_norm with an inf:", lambda: ops.clip_by_global_norm((f32(a2), f32(b)), 1.0)[1])  # zeros
show("clip_by_global_norm with a NaN:", lambda: ops.clip_by_global_norm((f32(a), f32(b)), 1.0)[1])    # unchanged
# max_div: clip_norm / max(global_norm, clip_norm) is NaN for clip_norm = inf
show("clip_by_global_norm clip_norm=inf:", lambda: ops.clip_by_global_norm((f32([3.0, 4.0]),), float("inf")))
show("clip_by_global_norm clip_norm=0:", lambda: ops.clip_by_global_norm((f32([3.0, 4.0]),), 0.0))
# input-dtype overflow; float32 clip_norm tensor (1e-311 -> 0: 0/0)
show("clip_by_global_norm float64 2e200:", lambda: ops.clip_by_global_norm((f64([2e200, 2e200]),), 1.0))
show("clip_by_global_norm float64 1e-310, clip 1e-311:", lambda: ops.clip_by_global_norm((f64([1e-310, -1e-310]),), 1e-311))
show("clip_by_norm float32 1e20:", lambda: ops.clip_by_norm((f32([1e20, 1e20]),), 1.0))
# zero_dim: a 0-d gradient comes back [1]-shaped
show("clip_by_global_norm 0-d shape:", lambda: str(ops.clip_by_global_norm((f32(1.5), f32([1.0, 2.0])), 1.0)[0].shape))
# nan: bound
for lo, hi in [(0.5, 0.1), (None, 0.7), (-0.2, None)]:
    show(f"clip_by_value NaN into [{lo}, {hi}]:", lambda: ops.clip_by_value(f32([np.nan, 0.3, -3.0]), lo, hi))
# vector_norm float16 accumulation
h = np.random.default_rng(181).normal(size=(4, 5)); h[0, 0] = 0
h16 = h.astype(np.float16)
show("vector_norm float16 p=1.5 (exact %.4f):" % ((np.abs(h16.astype(np.float64)) ** 1.5).sum() ** (1 / 1.5)),
     lambda: ops.vector_norm(ms.Tensor(h16), 1.5))
# unsupported: empty inputs, mixed dtypes
show("clip_by_norm of ():", lambda: ops.clip_by_norm((), 1.0))
show("clip_by_global_norm of ():", lambda: ops.clip_by_global_norm((), 1.0))
show("clip_by_norm mixed float32/float64:", lambda: ops.clip_by_norm((f32([1.0]), f64([1.0])), 1.0))
show("nn.ClipByNorm of an empty tensor:", lambda: nn.ClipByNorm()(f32(np.zeros((0,))), f32(1.0)))
# findings without a knob (docs/matrix.md): empty ReduceSum, ClipByNorm(clip_norm=inf)
e = f64(np.zeros((0, 10)))
sums = []
for i in range(5):  # interleaved with other allocations: the empty sum reads whatever memory holds
    _ = ops.square(f64(np.random.default_rng(i).normal(size=(3, 3))))
    sums.append(float(ops.ReduceSum(False)(ops.square(e), ())))
print("ReduceSum of an empty float64 tensor, five times (exact: 0):", sums)
w = np.random.default_rng(158).normal(size=(3, 3))
show("clip_by_global_norm((empty, w)) vs w/|w| = %s:" % (w / np.linalg.norm(w))[0].round(4).tolist(),
     lambda: ops.clip_by_global_norm((f64(np.zeros((0,))), f64(np.zeros((0, 10))), f64(w)), 1.0)[2][0])
show("nn.ClipByNorm [1, 0, 2], clip_norm=inf:", lambda: nn.ClipByNorm()(f32([1.0, 0.0, 2.0]), f32(np.inf)))
