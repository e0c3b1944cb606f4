"""Hand checks behind the Paddle declarations of the clipping matrix (paddle.yaml).
Run with the Paddle interpreter: python docs/matrix_evidence/paddle_evidence.py"""
import numpy as np
import paddle


def params(arrs, dtypes=None):
    ps, loss = [], None
    for i, a in enumerate(arrs):
        d = (dtypes or ["float32"] * len(arrs))[i]
        p = paddle.create_parameter(list(np.shape(a)), d, default_initializer=paddle.nn.initializer.Constant(0.0))
        t = (p * paddle.to_tensor(np.asarray(a, np.float64)).astype(d)).sum().astype("float64")
        loss = t if loss is None else loss + t
        ps.append(p)
    loss.backward()
    return ps


def show(label, f):
    try:
        out = f()
        print(label, [g.numpy().tolist() for _, g in out] if isinstance(out, list) else out)
    except Exception as e:  # noqa: BLE001
        print(label, "raises", type(e).__name__, (str(e).splitlines() or [""])[0][:160])


pairs = lambda ps: [(p, p.grad) for p in ps]
show("ClipGradByGlobalNorm(inf):", lambda: paddle.nn.ClipGradByGlobalNorm(float("inf"))(pairs(params([[3.0, 4.0]]))))
show("ClipGradByNorm(inf):", lambda: paddle.nn.ClipGradByNorm(float("inf"))(pairs(params([[3.0, 4.0]]))))
show("ClipGradByNorm(0):", lambda: paddle.nn.ClipGradByNorm(0.0)(pairs(params([[3.0, 4.0]]))))
show("ClipGradByGlobalNorm float32 1e20:", lambda: paddle.nn.ClipGradByGlobalNorm(1.0)(pairs(params([[1e20, 1e20]]))))
show("ClipGradByGlobalNorm 0-d shape:", lambda: str([tuple(g.shape) for _, g in paddle.nn.ClipGradByGlobalNorm(1.0)(pairs(params([1.5, [1.0]])))]))
show("ClipGradByGlobalNorm mixed float32/float64:", lambda: paddle.nn.ClipGradByGlobalNorm(1.0)(pairs(params([[1.0, 1.0], [1.0]], ["float32", "float64"]))))
show("utils.clip_grad_norm_ mixed float32/float64:", lambda: paddle.nn.utils.clip_grad_norm_(params([[1.0, 1.0], [1.0]], ["float32", "float64"]), 1.0, norm_type=1.0))
show("utils.clip_grad_norm_ float32 1e20:", lambda: paddle.nn.utils.clip_grad_norm_(params([[1e20, 1e20]]), 1.0))
show("utils.clip_grad_norm_ empty, p=inf:", lambda: paddle.nn.utils.clip_grad_norm_(params([np.zeros(0), [1.0]]), 1.0, norm_type=float("inf")))
ps = params([[3.0, np.nan], [1.0, 1.0]])
show("utils.clip_grad_norm_(max_norm=inf) with a NaN:", lambda: (paddle.nn.utils.clip_grad_norm_(ps, float("inf"), norm_type=1.0).item(), [p.grad.numpy().tolist() for p in ps]))
show("SGD(parameters=[]).step():", lambda: paddle.optimizer.SGD(learning_rate=1.0, parameters=[], grad_clip=paddle.nn.ClipGradByGlobalNorm(1.0)).step())
show("utils.clip_grad_value_(-0.5):", lambda: paddle.nn.utils.clip_grad_value_(params([[1.0, -2.0]]), -0.5))
show("ClipGradByValue(-0.3):", lambda: paddle.nn.ClipGradByValue(-0.3))
