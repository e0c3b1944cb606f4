"""The order each framework sums |x|**p in, on CPU, at model sizes (the oracle knob `summation`).

Run it in one framework's interpreter, from the repository root:
    .tox/torch/bin/python docs/matrix_evidence/accumulation.py torch
    .tox/paddle/bin/python docs/matrix_evidence/accumulation.py paddle
    .tox/mindspore/bin/python docs/matrix_evidence/accumulation.py mindspore

It computes norms of float32 normal(0, 1) vectors of 1e3 to 4e6 elements with the framework and
compares them with the exact norm and with the oracle's emulations (`_sum` in
conformance/kinds/clipping/oracle.py). "==" marks a bit-identical emulation.

Measured here (2026-12-02, 2 cores, AVX-512):
- torch 2.13, one intra-op thread: L2 == lanes8 at 90,300, 1e6 and 4e6 (1 ulp off at 1e3);
  p = 1, 1.5, 3 == sequential at every size. With two threads p != 2 differs: each of
  min(threads, ceil(n / 32768)) equal chunks is summed sequentially and the chunk sums added
  (bit-identical emulation at 1e3 to 4e6), so those numbers depend on the core count. L2 does
  not depend on it.
- Paddle 3.3.1: paddle.linalg.norm / clip_grad_norm_'s p_norm (p = 1, 2) == sequential, with
  OMP_NUM_THREADS 1, 2 or 4; squared_l2_norm (ClipGradByGlobalNorm) == numpy's pairwise sum.
- MindSpore 2.10: nn.ClipByNorm's norm, read back from the value it clips to, agrees with
  sequential to the rounding of that factor (1e-7; 1.8e-3 off the exact norm at 4e6), with
  runtime_num_threads 1, 2 or 4; ops.vector_norm within 3e-8 of the exact norm.
- Paddle at 4e6: p_norm 1.8e-3 off the exact norm; torch (one thread) p = 1.5 and 3: 1.8e-3.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from conformance.kinds.clipping import oracle  # noqa: E402

SIZES = (1000, 90300, 1000000, 4000000)


def data(n: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(n).astype(np.float32)


def emulations(x: np.ndarray, p: float) -> dict:
    a = np.abs(x.astype(np.float64))
    exact = float(np.sum(a**p)) ** (1.0 / p)
    out = {"exact": exact}
    for order in ("sequential", "lanes8"):
        s = oracle._sum(np.asarray(np.float32(a**p) if p != 1 else a, np.float64), "float32", order)
        out[order] = float(np.float32(np.float32(s) ** np.float32(1.0 / p)))
    return out


def show(name: str, n: int, p: float, got: float, x: np.ndarray) -> None:
    em = emulations(x, p)
    marks = ", ".join(f"{k} {v!r}{' ==' if v == got else ''}" for k, v in em.items() if k != "exact")
    print(f"{name} p={p} n={n}: {got!r} (rel to exact {abs(got - em['exact']) / em['exact']:.2e}); {marks}")


def torch_norms():
    import torch

    for threads in (1, 2):
        torch.set_num_threads(threads)
        for n in SIZES:
            x = data(n)
            for p in (1.0, 1.5, 2.0, 3.0):
                show(f"torch[{threads} threads] vector_norm", n, p, float(torch.linalg.vector_norm(torch.from_numpy(x), p)), x)


def paddle_norms():
    import paddle
    from paddle import _C_ops

    for n in SIZES:
        x = data(n)
        t = paddle.to_tensor(x)
        for p in (1.0, 2.0):
            show("paddle p_norm", n, p, float(paddle.linalg.norm(t, p)), x)
        show("paddle squared_l2_norm", n, 2.0, float(np.sqrt(np.float32(_C_ops.squared_l2_norm(t).numpy().ravel()[0]))), x)


def mindspore_norms():
    import mindspore as ms
    from mindspore import nn, ops

    for n in SIZES:
        x = data(n)
        t = ms.Tensor(x)
        clipped = nn.ClipByNorm()(t, ms.Tensor(1e-9, ms.float32)).asnumpy()
        show("mindspore nn.ClipByNorm (norm from its factor)", n, 2.0, float(1e-9 * x[0] / clipped[0]), x)
        show("mindspore ops.vector_norm", n, 2.0, float(ops.vector_norm(t).asnumpy()), x)


if __name__ == "__main__":
    {"torch": torch_norms, "paddle": paddle_norms, "mindspore": mindspore_norms}[sys.argv[1]]()
