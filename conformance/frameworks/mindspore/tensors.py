"""What every MindSpore kind shares (worker side): mindspore itself, set up once, the dtype
table, the device, tensors in and out, and how a failure becomes a ``raised`` record.

PyNative mode. The kind modules import ``ms``, ``nn``, ``ops`` and ``amp`` from here, so the
environment below is set before mindspore is first imported. Imports only the standard library,
numpy (<2) and mindspore.
"""

from __future__ import annotations

import os
import tempfile
from typing import Optional

import numpy as np

# MindSpore dumps compile-failure IR (rank_0/om/analyze_fail.ir) into the current directory,
# i.e. the user's project; send it to a temporary directory unless the user chose a place.
os.environ.setdefault("MS_OM_PATH", os.path.join(tempfile.gettempdir(), "gradclip-mindspore-om"))

import mindspore as ms  # noqa: E402
from mindspore import amp, nn, ops  # noqa: E402,F401 - re-exported to the kind modules
from mindspore.common.api import _pynative_executor  # noqa: E402 - drain(): no public reset

from ...tensors import is_tensor_arg  # noqa: E402

DTYPES = {"float64": ms.float64, "float32": ms.float32,
          "float16": ms.float16, "bfloat16": ms.bfloat16}

ms.set_context(mode=ms.PYNATIVE_MODE)
# PyNative launches kernels asynchronously: without this, an op that fails inside a tuple API
# (hyper_map over the gradients) can report its error at the *next* cell's first tensor access.
if hasattr(ms, "runtime") and hasattr(ms.runtime, "launch_blocking"):
    ms.runtime.launch_blocking()
_GPU_REASON = None


def gpu_reason() -> Optional[str]:
    """None if this MindSpore build can use a GPU, else why not (checked once, lazily)."""
    global _GPU_REASON
    if _GPU_REASON is None:
        try:
            ok = bool(ms.hal.is_available("GPU"))
            _GPU_REASON = "" if ok else ("mindspore.hal.is_available('GPU') is False "
                                         "(a CPU-only MindSpore build or no CUDA device)")
        except Exception as e:  # noqa: BLE001 - any failure means: no GPU here
            _GPU_REASON = f"cannot query MindSpore GPU support: {type(e).__name__}: {e}"
    return _GPU_REASON or None


def _set_device(name: str) -> None:
    target = "GPU" if name == "gpu" else "CPU"
    try:
        ms.set_device(target)
    except (AttributeError, TypeError):  # older MindSpore: device_target in the context
        ms.set_context(device_target=target)
    except RuntimeError:  # already set to this target in this process
        pass


_DEVICE_SET = None


def use_device(name: str) -> None:
    """Run on ``name`` (cpu | gpu) from now on; set only when it changes."""
    global _DEVICE_SET
    if _DEVICE_SET != name:
        _set_device(name)
        _DEVICE_SET = name


def tensor(arr, dtype) -> ms.Tensor:
    a = np.asarray(arr)
    if a.dtype.kind in "iu":
        return ms.Tensor(a.astype(np.int32))
    a = np.array(a, dtype=np.float64, order="C")  # not ascontiguousarray: it makes 0-d arrays 1-d
    if dtype == ms.float64:
        return ms.Tensor(a, ms.float64)
    # float32 holds every float16/bfloat16 value exactly: cast once, in MindSpore
    t = ms.Tensor(a.astype(np.float32), ms.float32)
    return t if dtype == ms.float32 else t.astype(dtype)


def numpy(t) -> Optional[np.ndarray]:
    if t is None:
        return None
    if t.dtype == ms.bfloat16:  # numpy has no bfloat16: widen exactly first
        t = t.astype(ms.float32)
    return np.asarray(t.asnumpy(), dtype=np.float64)


#: every function this worker has differentiated, with the network it closes over: kept alive
#: for the worker's life so that no later function can get a dead one's address. Measured: in a
#: full MindSpore run (about 12,000 cells in one worker) train-scaler-overflow-skipped got
#: another network's gradients, the same wrong numbers in two runs, and matched when run alone;
#: with these references kept it matches in the full run too. Our reading: MindSpore's PyNative
#: executor keeps what it built for a differentiated function under an id of the function object
#: (its C++ side holds no reference), so a new function at a reused address ran with a stale
#: graph (the same way a StaticLossScaler's scale once changed after ~6,000 cells: training.py).
#: A few kilobytes per model or derivation cell.
_DIFFERENTIATED: list = []


def keep_alive(*objects) -> None:
    """Hold ``objects`` (a function handed to ``ms.grad`` and what it closes over) for the life
    of the worker."""
    _DIFFERENTIATED.append(objects)


def drain() -> None:
    """After a failed call: reset the PyNative executor and consume errors still queued, so that
    neither can surface in the next job.

    The reset: MindSpore 2.10 (CPU, PyNative) leaves its grad executor broken after ``ms.grad``
    raises inside the forward twice (a float64 CrossEntropyLoss, which has no CPU kernel): from
    then on, in the whole process, integer indexing of any Tensor (``x[0]``, which
    ``ops.clip_by_global_norm`` does on a bare Tensor) raises ``TypeError: Only support integers,
    ... but got 0 with type <class 'int'>``. A bare-Tensor cell was `error` or `match` depending on
    which cells its worker had run before (docs/matrix_evidence/ms_grad_executor_state.py).
    ``_pynative_executor.clear_res()``, MindSpore's own reset of that executor (there is no
    public one), restores it."""
    _pynative_executor.clear_res()
    for _ in range(8):  # (ms.runtime.synchronize() is a logged no-op on CPU: sync by a read)
        try:
            (ms.Tensor(np.zeros(1, np.float32)) + 1).asnumpy()
            return
        except Exception:  # noqa: BLE001 - an already-reported failure of this cell
            continue


def raised(e: Exception) -> dict:
    msg = str(e).strip()
    if len(msg) > 2000:
        msg = msg[:2000] + " ..."
    return {"type": type(e).__name__, "message": msg}


def tensor_args(args: dict) -> dict:
    """A job's arguments with each tensor argument (``{"tensor": 0.4, "dtype": "float64"}``,
    conformance.tensors) made a MindSpore tensor of its dtype and shape."""
    return {k: tensor(np.asarray(v["tensor"], dtype=np.float64), DTYPES[v["dtype"]]) if is_tensor_arg(v) else v
            for k, v in args.items()}
