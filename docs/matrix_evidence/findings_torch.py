"""Hand checks (torch 2.13, CPU) behind the torch declarations of the property-test findings
(docs/matrix.md, "Property-test findings"). Run: python docs/matrix_evidence/findings_torch.py"""
import math

import torch
from torch.nn import utils


def attempt(label, fn):
    try:
        print(f"{label}: -> {fn()}")
    except Exception as e:  # noqa: BLE001 - printing what the framework raises is the point
        print(f"{label}: raises {type(e).__name__}: {str(e).splitlines()[0][:110]}")


def param(values, dtype=torch.float32, grad=True):
    p = torch.zeros(torch.as_tensor(values).shape, dtype=dtype, requires_grad=True)
    if grad:
        p.grad = torch.as_tensor(values, dtype=dtype)
    return p


print("torch", torch.__version__)
# T1: +-inf norm with an empty gradient (alone or among others), both code paths
for nt in (math.inf, -math.inf):
    for foreach in (None, False):
        attempt(f"T1 clip_grad_norm_([[], [3,-4]], 1, {nt}, foreach={foreach})",
                lambda: utils.clip_grad_norm_([param([]), param([3.0, -4.0])], 1.0, nt, foreach=foreach))
    attempt(f"T1 get_total_norm([[]], {nt})", lambda: utils.get_total_norm([torch.zeros(0)], nt))
    attempt(f"T1 get_total_norm([zeros(2,0)], {nt})", lambda: utils.get_total_norm([torch.zeros(2, 0)], nt))
attempt("T1 control: clip_grad_norm_([[]], 1, 2.0)", lambda: utils.clip_grad_norm_([param([])], 1.0, 2.0))
# T2: clip_grad_value_ with no gradient at all
for foreach in (None, False):
    attempt(f"T2 clip_grad_value_([p without grad], 1, foreach={foreach})",
            lambda: utils.clip_grad_value_([param([1.0], grad=False)], 1.0, foreach=foreach))
attempt("T2 clip_grad_value_([], 1)", lambda: utils.clip_grad_value_([], 1.0))
attempt("T2 control: get_total_norm([])", lambda: utils.get_total_norm([]))
attempt("T2 control: clip_grad_norm_([p without grad], 1)", lambda: utils.clip_grad_norm_([param([1.0], grad=False)], 1.0))
# T3: a finite bound beyond the dtype's largest value
for dt, v in ((torch.float16, 1e5), (torch.float16, 65504.0), (torch.float16, math.inf),
              (torch.bfloat16, 1e39), (torch.float32, 1e39), (torch.float64, 1e39)):
    p = param([0.5, -3.0, math.nan], dt)
    attempt(f"T3 clip_grad_value_({dt}, {v})", lambda: (utils.clip_grad_value_([p], v), p.grad.tolist())[1])
    attempt(f"T3 clamp_({dt}, min=None, max={v})", lambda: torch.tensor([0.5, -3.0], dtype=dt).clamp_(max=v).tolist())
    attempt(f"T3 clamp_({dt}, min={-v}, max=1)", lambda: torch.tensor([0.5, -3.0], dtype=dt).clamp_(min=-v, max=1.0).tolist())
# T4 on the reverse mappings: float16 coefficient max_norm * (1 / (norm + 1e-6)) near the subnormals
p = param([400.0], torch.float16)
attempt("T4 clip_grad_norm_([400.0 float16], 1.25e-5)", lambda: (utils.clip_grad_norm_([p], 1.25e-5), p.grad.tolist())[1])
# T6: clip_grads_with_norm_ takes total_norm as a tensor (get_total_norm's, the gradients' dtype)
p = param([1.0], torch.float16)
attempt("T6 clip_grads_with_norm_([1.0 float16], 10, tensor(1e5, float16))",
        lambda: (utils.clip_grads_with_norm_([p], 10.0, torch.tensor(1e5, dtype=torch.float16)), p.grad.tolist())[1])
p = param([1.0], torch.float16)
attempt("T6 clip_grads_with_norm_([1.0 float16], 10, tensor(1e5, float32))",
        lambda: (utils.clip_grads_with_norm_([p], 10.0, torch.tensor(1e5)), p.grad.tolist())[1])
