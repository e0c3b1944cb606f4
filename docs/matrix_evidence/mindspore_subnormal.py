"""Subnormal numbers on MindSpore 2.10 CPU (PyNative). float32: subnormal numbers are flushed to
zero on some kernel threads and not on others, so the same call on the same numbers gives
different results within one process (the cause of the flickering cells of issue 12: `conformance
run --repeat 3` found 21 unstable MindSpore cells, every one with such numbers; declared
`undefined` where `grads.tiny`). float16: flushed every time (the knob `flush`). Also the last-bit
variation of float64 vector_norm (a `varies:` declaration). Run in MindSpore's interpreter:
python docs/matrix_evidence/mindspore_subnormal.py

Measured here (2026-12-02), two runs of this script: the square 1e-40 and the sum of squares
3e-40 were kept for two calls, then the sum (one run) or both (after a Dense gradient or a
Conv2d) came back 0.0; in the other run a first call gave 3e-40 and the second, the same call,
0.0 (flushed)."""
import numpy as np
import mindspore as ms
from mindspore import nn, ops

ms.set_context(mode=ms.PYNATIVE_MODE)
g = ms.Tensor(np.full((3,), 1e-20, np.float32))


def probe(tag):
    square = float((g * g).asnumpy()[0])
    total = float(ops.ReduceSum()(g * g).asnumpy())
    print(f"{tag}: square {square!r}, sum of squares {total!r}")


for k in range(3):
    probe(f"call {k}")
net = nn.Dense(4, 3)
ms.grad(lambda x: net(x).sum(), grad_position=None, weights=net.trainable_params())(
    ms.Tensor(np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)))
probe("after a Dense gradient")
nn.Conv2d(2, 2, 3)(ms.Tensor(np.random.default_rng(1).normal(size=(1, 2, 5, 5)).astype(np.float32)))
for k in range(3):
    probe(f"after a Conv2d, call {k}")

# The float64 vector_norm of a stacked tensor varies in its last bit from call to call (the
# same numbers in a tensor made directly do not): the `varies:` declaration of
# mindspore.ops.vector_norm in conformance/frameworks/mindspore/registry/clipping.yaml.
a, b = ms.Tensor(np.float64(3.0494171851541845)), ms.Tensor(np.float64(3.166312158615149))
print("vector_norm(stack) over 200 calls:", sorted({float(ops.vector_norm(ops.stack([a, b]), 3.0).asnumpy())
                                                    for _ in range(200)}))
print("vector_norm(tensor) over 200 calls:", sorted({float(ops.vector_norm(ms.Tensor(np.array(
    [3.0494171851541845, 3.166312158615149])), 3.0).asnumpy()) for _ in range(200)}))

# float16 flushes deterministically: ops.clip_by_norm's clip_coef = max_norm / (total_norm + 1e-6)
# of gradients around 1e-6 is inf (the denominator flushed to 0), so nothing is clipped; the
# same in float32 is clipped (the knob `flush: float16` of ms-clip-by-norm-fp16-flush).
x = np.array([1e-6, 2e-6, 3e-6], np.float32)
for dtype in (ms.float16, ms.float32):
    for p in (1.0, 2.0, float("inf")):
        out = ops.clip_by_norm((ms.Tensor(x).astype(dtype),), 1e-7, norm_type=p)[0]
        print(f"{dtype} p={p}: clip_by_norm(x, 1e-7) ->", out.astype(ms.float32).asnumpy())
