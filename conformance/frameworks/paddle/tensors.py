"""What every Paddle kind shares about tensors (worker side only, dygraph): the dtype table,
the device, tensors in (float64 carriers cast exactly to the cell's dtype) and out (float64
numpy), and zero-initialised parameters. stdlib + numpy + paddle only.
"""

from __future__ import annotations

import numpy as np
import paddle
from paddle.base.framework import EagerParamBase

DTYPES = ("float64", "float32", "float16", "bfloat16")


def gpu_reason():
    """Why the ``gpu`` device is unavailable, or None."""
    if not paddle.is_compiled_with_cuda():
        return "paddle.is_compiled_with_cuda() is False (a CPU-only build)"
    try:
        n = paddle.device.cuda.device_count()
    except Exception as e:  # pragma: no cover - depends on the driver
        return f"paddle.device.cuda.device_count() failed: {type(e).__name__}: {e}"
    return None if n > 0 else "no CUDA device visible (paddle.device.cuda.device_count() == 0)"


def check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}")


def set_device(name: str) -> None:
    paddle.set_device("gpu:0" if name == "gpu" else "cpu")


def tensor(arr, dtype: str):
    a = np.asarray(arr)
    if a.dtype.kind in "iu":
        return paddle.to_tensor(a.astype(np.int64))
    if a.dtype.name == dtype:  # the job's carrier already holds dtype (float32, float16): no
        return paddle.to_tensor(np.array(a, order="C"))  # float64 round trip (6 us of 16 a tensor)
    # float64 -> dtype: exact, the values are already representable in dtype
    t = paddle.to_tensor(np.array(a, dtype=np.float64, order="C"))  # keeps 0-d (ascontiguousarray does not)
    return t if dtype == "float64" else t.astype(dtype)


def numpy(t):
    if t is None:
        return None
    t = t.detach()
    if t.dtype == paddle.bfloat16:
        t = t.astype("float32")  # exact
    return np.asarray(t.numpy(), dtype=np.float64)


def torch_layout(a, transpose: bool):
    """``a`` (float64 numpy or None) in torch's layout: a Linear weight's [in, out] transposed."""
    return a.T.copy() if (a is not None and transpose) else a


def parameter(shape, dtype: str):
    """A zero parameter: what ``paddle.create_parameter(shape, dtype,
    default_initializer=Constant(0.0))`` returns (an ``EagerParamBase``, trainable, need_clip,
    do_model_average; tests/test_backend_paddle.py compares every attribute but the generated
    name), made from ``paddle.zeros`` without the LayerHelper and initializer machinery: 18 us
    against 41 us, which was the largest part of the worker's time on injected-gradient cells."""
    return EagerParamBase.from_tensor(paddle.zeros(list(shape), dtype=dtype), do_model_average=True)
