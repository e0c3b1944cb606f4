"""Hand checks behind the torch declarations of the clipping matrix (torch.yaml identity mappings).
Run: python docs/matrix_evidence/torch_evidence.py (torch only; prints what it measures)."""
import numpy as np
import torch
from torch.nn import utils


def clip(grads, max_norm, p, dtype):
    ps = []
    for g in grads:
        t = torch.zeros(np.shape(g), dtype=dtype, requires_grad=True)
        t.grad = torch.tensor(np.asarray(g, np.float64), dtype=dtype)
        ps.append(t)
    n = utils.clip_grad_norm_(ps, max_norm, norm_type=p)
    return n.item(), [t.grad.double().numpy() for t in ps]


# torch-clip-grad-norm-float32-naive / -float64-naive: the p-th powers overflow in the input dtype
print("float32 1e20, p=2:", clip([[1e20, 1e20]], 1.0, 2.0, torch.float32))          # inf, zeros
print("float64 2e200, p=2:", clip([[2e200, 2e200]], 1.0, 2.0, torch.float64))       # inf, zeros
x = np.random.default_rng(131).uniform(0.5, 1.0, 12) * 1e20
n32 = torch.linalg.vector_norm(torch.tensor(x, dtype=torch.float32), 1.5).item()
exact = (np.abs(x.astype(np.float32).astype(np.float64)) ** 1.5).sum() ** (1 / 1.5)
print("float32 p=1.5 norm of 1e20s, relative error:", n32 / exact - 1)             # ~1.4e-6 (float32 root exponent)
# torch-clip-grad-norm-half-opmath: float32 sums, half-rounded norms and coefficient
print("float16 17 x 300, p=2 norm:", torch.linalg.vector_norm(torch.full((17,), 300.0, dtype=torch.float16)))  # 1237 (no fp16 overflow)
print("float16 norm above 65504:", clip([[300.0] * 20, [300.0] * 40], 1.0, 0.5, torch.float16)[0])          # inf
# torch-clip-grads-with-norm-half-reciprocal: max_norm / (total + 1e-6) is max_norm * (1 / ...)
for dt in (torch.float16, torch.bfloat16, torch.float32):
    p = torch.zeros(2, dtype=dt, requires_grad=True)
    p.grad = torch.tensor([0.5, -1.0], dtype=dt)
    utils.clip_grads_with_norm_([p], 0.0, torch.tensor(0.0, dtype=dt))
    print("clip_grads_with_norm_(max 0, total 0)", dt, p.grad.tolist())                # fp16: nan
print("fp16 0.0 / (0 + 1e-6):", 0.0 / (torch.tensor(0.0, dtype=torch.float16) + 1e-6))  # nan
# torch-clip-grad-norm-empty-inf-norm-raises
try:
    clip([np.zeros(0), np.zeros((0, 10)), [1.0, 2.0]], 1.0, float("inf"), torch.float32)
except RuntimeError as e:
    print("empty + inf norm:", e)
