"""What the TensorFlow kinds share (worker side only): the dtype table, the device, and tensors in
(from the job's numpy arrays) and out (float64 numpy for the result)."""

from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

from ...tensors import is_tensor_arg

DTYPES = {"float64": tf.float64, "float32": tf.float32,
          "float16": tf.float16, "bfloat16": tf.bfloat16}


def gpu_reason() -> Optional[str]:
    """None when TensorFlow sees a GPU here, else TF's own account of why not."""
    if tf.config.list_physical_devices("GPU"):
        return None
    built = tf.test.is_built_with_cuda()
    return (f"tf.config.list_physical_devices('GPU') is empty "
            f"(tf.test.is_built_with_cuda() is {built}: {'no visible CUDA device' if built else 'a CPU-only build'})")


def device(name: str) -> str:
    return "/GPU:0" if name == "gpu" else "/CPU:0"


def tensor(arr, dtype) -> tf.Tensor:
    """A tf tensor of ``dtype`` from a job's numpy array (integers stay int64; a 0-d array stays 0-d)."""
    a = np.asarray(arr)
    if a.dtype.kind in "iu":
        return tf.constant(a.astype(np.int64))
    # through float64 then tf.cast: the job's values are already representable in ``dtype``
    return tf.cast(tf.constant(np.array(a, dtype=np.float64)), dtype)


def numpy(t) -> Optional[np.ndarray]:
    """float64 numpy of a tensor, variable or IndexedSlices (bfloat16 widened exactly through float32)."""
    if t is None:
        return None
    if isinstance(t, tf.IndexedSlices):
        t = tf.convert_to_tensor(t)
    if t.dtype == tf.bfloat16:
        t = tf.cast(t, tf.float32)
    return np.array(t.numpy(), dtype=np.float64)


def tensor_args(args: dict) -> dict:
    """A job's arguments with each tensor argument (``{"tensor": 0.4, "dtype": "float64"}``,
    conformance.tensors) made a tf tensor of its dtype."""
    return {k: tensor(np.asarray(v["tensor"], dtype=np.float64), DTYPES[v["dtype"]])
            if is_tensor_arg(v) else v for k, v in args.items()}
